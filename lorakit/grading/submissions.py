"""A class's submitted files, found and read as hostile input: no link is followed, no read is uncapped.

A student folder, an assignment folder or a notebook that is a symbolic link is refused by name (it could point at
the instructor's source); folders whose name starts with "." (.ipynb_checkpoints, .git) are not student folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat

from .runner import MAX_NOTEBOOK_BYTES, read_untrusted

LINK = "is a symbolic link; links are not graded"


def student_folders(root: Path, assignment: str, submissions: Path | None) -> dict[str, tuple[Path, str]]:
    """folder name → (the folder holding that student's notebooks, why it can't be graded or ''): nbgrader's
    submitted/<student>/<assignment>, or --submissions' <student>. Hidden folders are skipped."""
    if submissions is None:
        base = root / "submitted"
        entries = sorted(base.iterdir()) if base.is_dir() else []
        return {p.name: (p / assignment, folder_problem(p / assignment, 2)) for p in entries
                if not p.name.startswith(".") and os.path.lexists(p / assignment)}
    if not submissions.is_dir():
        raise ValueError(f"submissions {str(submissions)!r} is not a folder of <student>/<notebook>.ipynb")
    return {p.name: (p, folder_problem(p, 1)) for p in sorted(submissions.iterdir())
            if not p.name.startswith(".") and (p.is_symlink() or p.is_dir())}


def folder_problem(folder: Path, levels: int) -> str:
    """Why `folder` can't be graded ('' if it can): it, or one of its `levels - 1` parents, is a link, or it is no
    folder. Paths are named from the submissions folder down."""
    top = folder.parents[levels - 1]
    for part in [*reversed(folder.parents[:levels - 1]), folder]:
        if part.is_symlink():
            return f"{part.relative_to(top)} {LINK}"
    return "" if folder.is_dir() else f"{folder.relative_to(top)} is not a folder"


def notebooks_in(folder: Path) -> list[Path]:
    """Every *.ipynb file under `folder`, relative to it; linked folders are not entered, checkpoints are skipped."""
    found = []
    for where, dirs, files in os.walk(folder):  # os.walk never descends into a linked folder
        dirs[:] = [d for d in dirs if d != ".ipynb_checkpoints"]
        found += [Path(where, name).relative_to(folder) for name in files if name.endswith(".ipynb")]
    return sorted(found)


def find_notebook(folder: Path, name: str, assignment: str) -> tuple[Path | None, str]:
    """The student's copy of notebook `name` in `folder` (or nested: <assignment>/name first), or why not."""
    found = notebooks_in(folder)
    for candidate in (Path(name), Path(assignment, name), *(p for p in found if p.name == name)):
        if candidate in found:
            if (folder / candidate).is_symlink():
                return None, f"{candidate} {LINK}"
            return folder / candidate, ""
    listed = ", ".join(map(str, found))
    return None, f"no notebook named {name}" + (f"; found {listed}" if found else "; the folder has no notebook")


def read_notebook(path: Path) -> tuple[Any, str]:
    """(the notebook, '') or (None, why it can't be read): never through a link, never more than the size cap."""
    raw = read_untrusted(path, MAX_NOTEBOOK_BYTES)
    if raw is None:
        return None, f"unreadable notebook {path.name}: not a regular file, or over {MAX_NOTEBOOK_BYTES // 2**20} MB"
    try:
        return nbformat.reads(raw.decode("utf-8"), as_version=4), ""
    except Exception as err:  # noqa: BLE001 - a broken file is the student's; the batch goes on
        return None, f"unreadable notebook {path.name}: {type(err).__name__}"
