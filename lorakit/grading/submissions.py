"""A class's submitted files, found and read as hostile input: no link is followed, no read is uncapped.

A student folder, an assignment folder or a notebook that is a symbolic link is refused by name (it could point at
the instructor's source); folders whose name starts with "." (.ipynb_checkpoints, .git) are not student folders.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from .runner import MAX_NOTEBOOK_BYTES, read_untrusted

LINK = "is a symbolic link; links are not graded"
MAX_STAMP_BYTES = 256
TIMESTAMP_TEXT = re.compile(r"[0-9A-Za-z :.,+-]{1,64}")  # no '/': dateutil would read a named time-zone file
SECRET_TEXT = re.compile(r"[0-9a-f]{1,256}")


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


@dataclass
class Stamp:
    """What nbgrader's collect leaves beside a submission: its time (naive UTC, as the gradebook stores it) and the
    file's text, the exchange's submission secret (release_feedback needs it), and what was wrong with them."""

    timestamp: datetime | None = None
    text: str = ""
    secret: str = ""
    problem: str = ""


def stamp_text(folder: Path, assignment: str, name: str) -> tuple[str | None, str]:
    """(the stripped ASCII text of `name` beside the notebooks, or None if there is none; why it can't be read)."""
    nested = folder / assignment
    for path in (folder / name, *([nested / name] if nested.is_dir() and not nested.is_symlink() else [])):
        if os.path.lexists(path):
            raw = read_untrusted(path, MAX_STAMP_BYTES)
            try:
                return (raw.decode("ascii").strip(), "") if raw is not None else \
                    (None, f"{name} is not a regular file of at most {MAX_STAMP_BYTES} bytes")
            except UnicodeDecodeError:
                return None, f"{name} is not ASCII text"
    return None, ""


def read_stamp(folder: Path, assignment: str) -> Stamp:
    """timestamp.txt and submission_secret.txt of a student's folder, read as hostile input (capped, no link, a
    strict pattern); a bad one is a problem named in the detail (then the submission counts as on time)."""
    from nbgrader.utils import parse_utc

    found = Stamp()
    text, problem = stamp_text(folder, assignment, "timestamp.txt")
    if text == "":
        problem = "timestamp.txt is empty"
    elif text is not None and not TIMESTAMP_TEXT.fullmatch(text):
        problem = "timestamp.txt holds no timestamp (expected e.g. '2026-12-06 20:37:22.123456 UTC')"
    elif text is not None:
        try:
            found.timestamp, found.text = parse_utc(text), text
        except (ValueError, OverflowError):
            problem = "timestamp.txt holds no valid date and time (expected e.g. '2026-12-06 20:37:22.123456 UTC')"
    secret, secret_problem = stamp_text(folder, assignment, "submission_secret.txt")
    if secret is not None and not SECRET_TEXT.fullmatch(secret):
        secret_problem = "submission_secret.txt is not nbgrader's hexadecimal secret"
    found.secret = secret if secret is not None and not secret_problem else ""
    problems = ([f"{problem}; lateness not computed"] if problem else []) + ([secret_problem] if secret_problem else [])
    found.problem = "; ".join(problems)
    return found
