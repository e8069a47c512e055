"""nbgrader's own view of a graded submission: `autograded/<student>/<assignment>/`, so formgrader opens it.

The notebook is the one the grader ran, built from the trusted assembly (the instructor's cells with their nbgrader
metadata, so formgrader lists the graded cells for manual grading and comments) and the student's answers and extra
cells; hidden-test lines are cut. Outputs come from the sandbox's executed notebook (untrusted) only when it has the
cells that were run, and only their plain fields (feedback.clean_outputs). formgrader renders markdown unsanitised,
so a student's markdown (a written answer, an extra cell) is shown as literal text, never as HTML. Beside it go the
submission's validated timestamp.txt and submission_secret.txt, as nbgrader's autograde copies them (its
generate_feedback copies them on, and release_feedback needs both).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat

from .assemble import Assembled
from .feedback import clean_outputs, hidden_lines
from .submissions import Stamp


def literal_markdown(text: str) -> str:
    """Markdown that shows `text` verbatim: an indented code block (no HTML, link or image is ever rendered)."""
    return "\n".join("    " + line for line in text.split("\n"))


def autograded_notebook(built: Assembled, executed: Any | None) -> Any:
    """The notebook formgrader shows: the assembled cells with nbgrader metadata, hidden tests cut, plain outputs."""
    given = executed.get("cells") if executed is not None else None
    runs = given if isinstance(given, list) and len(given) == len(built.notebook.cells) else None
    secrets = [line for cell in built.notebook.cells if cell.cell_type == "code"
               for line in hidden_lines(cell.source)[1]]
    notebook = nbformat.from_dict(built.notebook)  # a copy: the assembly stays as it was run
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.source = hidden_lines(cell.source)[0]
            ran = runs[index] if runs is not None and isinstance(runs[index], dict) else {}
            cell.outputs = clean_outputs(ran.get("outputs"), secrets)
        elif index in built.from_student:
            cell.source = literal_markdown(cell.source)
    return notebook


def write_stamps(folder: Path, stamp: Stamp) -> None:
    """timestamp.txt and submission_secret.txt (what was valid of them) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if stamp.text:
        (folder / "timestamp.txt").write_text(stamp.text)
    if stamp.secret:
        (folder / "submission_secret.txt").write_text(stamp.secret)


def autograded_folder(config: Any, student: str, assignment: str) -> Path:
    """Where nbgrader (formgrader, generate_feedback) looks for a student's autograded notebooks."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    return Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))


def reset(folder: Path, stamp: Stamp) -> None:
    """An empty `folder` holding only the stamps: nothing of an earlier grading survives a re-grade."""
    shutil.rmtree(folder, ignore_errors=True)
    write_stamps(folder, stamp)
