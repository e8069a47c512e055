"""Calls an exercise forbids: a policy check of the student's answer cells, outside the kernel.

An exercise declares them on its test cell (`# %% [tests] id="ch2-count-tests" points=2 forbid=["count_lora_params"]`,
stored in the trusted source notebook as `metadata.lorakit.forbid`; the build prints the list under the exercise's
statement). The grader parses the student's cells of that exercise (answers and the student's own extra cells,
after the previous test cell) and scores the exercise 0 when one names a forbidden function: called, imported
(under any alias), or reached as an attribute (`lorakit.count_lora_params`, or `lk.count_lora_params` after
`import lorakit as lk`).

It reads names, not behaviour: a determined student can reach a function through `getattr` and a built string.
It keeps honest learners from solving an exercise with the one-line library call the exercise is about; the
secret-input checks and the sandbox remain the security boundary.
"""

from __future__ import annotations

import ast
from typing import Any


def forbidden_calls(cell: Any) -> list[str]:
    """The names a (trusted, instructor's) test cell forbids; [] when it declares none."""
    meta = cell.get("metadata", {}).get("lorakit")
    names = meta.get("forbid", []) if isinstance(meta, dict) else []
    return [name for name in names if isinstance(name, str)]


def names_used(source: str) -> set[str]:
    """Every outside name an answer mentions: attributes, imported names and modules (aliases resolved to the
    imported name) and global names it reads; its own variables, arguments and functions are not outside names
    (`scale = alpha / r` does not use a function called `scale`). Source that does not parse mentions nothing (it
    fails on its own)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    read, own, reached = set(), set(), set()  # global names read; the answer's own names; attributes and imports
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else own).add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute):
            reached.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            reached.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            reached.update(part for alias in node.names for part in alias.name.split("."))
    return (read - own) | reached


def violations(source: Any, assembled: Any, test_cells: dict[str, int],
               student_cells: set[int]) -> dict[str, list[str]]:
    """test cell grade_id → the forbidden names its exercise's student cells use (only exercises that use one).

    `source`: the instructor's notebook (declares what is forbidden); `assembled`: the notebook the grader ran;
    `test_cells`: grade_id → index in `assembled`; `student_cells`: the indices whose source is the student's.
    """
    from nbgrader.utils import is_grade

    forbidden = {c.metadata.nbgrader["grade_id"]: forbidden_calls(c) for c in source.cells if is_grade(c)}
    found: dict[str, list[str]] = {}
    start = 0
    for exercise, index in sorted(test_cells.items(), key=lambda item: item[1]):
        if forbidden.get(exercise):
            answers = [assembled.cells[i].source for i in range(start, index) if i in student_cells]
            used = set().union(*(names_used(text) for text in answers)) if answers else set()
            hits = [name for name in forbidden[exercise] if name in used]
            if hits:
                found[exercise] = hits
        start = index + 1
    return found
