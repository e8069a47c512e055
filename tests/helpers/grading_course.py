"""The tiny course the grading tests grade: build it, and write the notebooks students hand in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from lorakit import grading
from lorakit.authoring.build import build
from lorakit.grading import sandbox
from tests.helpers import REPO

ASSIGNMENT = "tiny"
NOTEBOOK = "tiny.ipynb"
SECRET = "red-team-course-secret-0042"
MAX_SCORE = 5.0
RIGHT = {
    "tiny-scale": "def lora_scale(r, alpha):\n    return alpha / r",
    "tiny-count": "def lora_params(d_in, d_out, r):\n    return r * (d_in + d_out)",
    "tiny-targets": "def attention_targets(names):\n    return [n for n in names if n in ('q_proj', 'v_proj')]",
}
WRONG = {
    "tiny-scale": "def lora_scale(r, alpha):\n    return -1.0",
    "tiny-count": "def lora_params(d_in, d_out, r):\n    return -1",
    "tiny-targets": "def attention_targets(names):\n    return None",
}


def require_sandbox() -> None:
    """Skip when bubblewrap can't run here, unless LORAKIT_REQUIRE_SANDBOX is set (CI): then fail."""
    try:
        sandbox.check(Path(os.environ.get("TMPDIR", "/tmp")) / "lorakit-test-probe")
    except sandbox.SandboxUnavailable as err:
        if os.environ.get("LORAKIT_REQUIRE_SANDBOX"):
            pytest.fail(f"LORAKIT_REQUIRE_SANDBOX is set but the sandbox can't run: {err}")
        pytest.skip(f"no sandbox here: {err}")


def make_course(root: Path, repo: Path) -> Path:
    """An nbgrader course folder holding the tiny assignment, its release and gradebook."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "notebooks/nbgrader_config.py", root)
    build(REPO / "tests" / "fixtures" / "tiny.py", root)
    grading.generate_release(root, ASSIGNMENT)
    return root


def student_notebook(root: Path, answers: dict[str, str] | None = None, extra: tuple[str, ...] = (),
                     extra_at: str = "end") -> nbformat.NotebookNode:
    """The release with the given answer cells filled in and extra code cells ("end", or "start": after the setup)."""
    notebook = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
    cells = [nbformat.v4.new_code_cell(code) for code in extra]
    if extra_at == "end":
        notebook.cells += cells
    else:
        first_answer = next(i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("solution"))
        notebook.cells[first_answer:first_answer] = cells
    return notebook


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, byte for byte."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


WRITTEN_ID = "tiny-why"
MODEL_ANSWER = "MODEL ANSWER: doubling alpha doubles the update, so lower the learning rate."


def add_written_answer(root: Path) -> None:
    """Put a manually graded written answer (nbgrader's markdown solution cell with points) after exercise 1 of the
    course's source, with the instructor's model answer in it, and release again."""
    path = root / "source" / ASSIGNMENT / NOTEBOOK
    notebook = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_markdown_cell(f"**Why** lower the learning rate when alpha doubles?\n\n{MODEL_ANSWER}")
    cell.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "points": 1.0,
                                 "grade_id": WRITTEN_ID, "schema_version": 3, "task": False}
    where = next(i for i, c in enumerate(notebook.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "tiny-scale-tests")
    notebook.cells.insert(where + 1, cell)
    nbformat.write(notebook, path)
    grading.generate_release(root, ASSIGNMENT)
