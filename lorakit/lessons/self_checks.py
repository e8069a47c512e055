"""Learner self-checks: plain sentences saying what was expected, what came out and a hint.

They run in the visible test cells so learners can act on a mistake; they never decide a grade (hidden checks
collect results for the grader instead, see `lorakit.grading.collector`).
"""

from __future__ import annotations

import math
from typing import Any


def check_close(actual: Any, expected: float, what: str, rel: float = 1e-6, hint: str = "") -> None:
    """Assert `actual` ≈ `expected` (relative tolerance), with a message a learner can act on."""
    try:
        value = float(actual)
    except (TypeError, ValueError):
        raise AssertionError(f"{what}: expected a number, got {type(actual).__name__} {actual!r}. {hint}") from None
    if not math.isclose(value, expected, rel_tol=rel, abs_tol=rel * 1e-3):
        raise AssertionError(f"{what}: expected {expected:.6g}, got {value:.6g}. {hint}".rstrip())


def check_equal(actual: Any, expected: Any, what: str, hint: str = "") -> None:
    """Assert `actual == expected`, with a message a learner can act on."""
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}. {hint}".rstrip())


def passed(exercise: str) -> None:
    """Print the self-check success line shown under a visible-tests cell."""
    print(f"✔ {exercise}: visible tests passed (hidden tests run when your instructor grades).")
