"""Helpers for the notebook tests: a student's solved notebook, the text a reader of a file sees, and the lines of
instructor notebooks that must never reach students (solutions and hidden tests)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Iterable

import nbformat

SECRET_BLOCKS = {"### BEGIN SOLUTION": "### END SOLUTION", "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS"}


def _normal(text: str) -> str:
    return " ".join(text.split())


def secret_lines(sources: Iterable[Path]) -> set[str]:
    """Lines inside solution / hidden-test blocks of the instructor notebooks that appear nowhere outside such a
    block in any of them (so they can only come from a leak), at least 8 characters long and not comments."""
    secret, visible = set(), set()
    for source in sources:
        for cell in nbformat.read(source, as_version=4).cells:
            end = None
            for line in cell.source.splitlines():
                text = _normal(line)
                if end is None and text in SECRET_BLOCKS:
                    end = SECRET_BLOCKS[text]
                elif end is not None and text == end:
                    end = None
                else:
                    (secret if end else visible).add(text)
    return {line for line in secret - visible if len(line) >= 8 and not line.startswith("#")}


def readable_text(path: Path) -> str:
    """What a reader of `path` sees: every string of a notebook's JSON, an HTML page's text, or the file's text."""
    raw = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        strings: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, str):
                strings.append(node)
            elif isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(json.loads(raw))
        raw = "\n".join(strings)
    elif path.suffix == ".html":
        raw = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return _normal(raw)


def leaks(files: Iterable[Path], secrets: set[str]) -> dict[str, list[str]]:
    """{file: secret lines found in it}, for the files that contain any."""
    found = {}
    for path in files:
        text = readable_text(path)
        hits = sorted(line for line in secrets if line in text)
        if hits:
            found[str(path)] = hits
    return found


def solved_release(release: Path, source: Path) -> nbformat.NotebookNode:
    """The student version with every solution cell filled in from the instructor's notebook (what a student who
    solved everything submits; the source notebook itself is not, since its test cells hold the hidden tests)."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(source, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebook
