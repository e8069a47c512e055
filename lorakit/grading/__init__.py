"""Classroom-safe grading: student notebooks run sandboxed, verdicts are decided outside their kernel.

`grade_class` grades a class folder into nbgrader's gradebook and a CSV; `generate_release` makes the student
version; `generate_feedback` writes feedback HTML without hidden checks. Hidden test cells only `collect` results
(see `lorakit.grading.collect`); the grader compares them with the instructor's solution run on inputs derived from
a per-course secret. See docs/grading.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Grade", "generate_feedback", "generate_release", "grade_class"]

# Imported on first use: a student's hidden-test cell imports lorakit.grading.collect, which imports this package,
# and the instructor side (nbgrader, nbformat) would cost every graded kernel about 2.4 s.
_EXPORTS = {"Grade": "report", "generate_feedback": "instructor", "generate_release": "instructor",
            "grade_class": "instructor"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
