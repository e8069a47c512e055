"""Learner self-checks: plain sentences saying what was expected, what came out and a hint.

They run in the visible test cells so learners can act on a mistake; they never decide a grade (hidden checks
collect results for the grader instead, see `lorakit.grading.collector`).

A release notebook must run top to bottom before its exercises are answered (the issue's "Run All"): every answer
stub raises `NotImplementedError()` (nbgrader's code stub), and two context managers turn that one error into one
line: `self_check` around a visible-tests cell, `uses_answer` around a lesson cell that needs an answer.
"""

from __future__ import annotations

import math
import traceback
from contextlib import contextmanager
from typing import Any, Iterator


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


def is_unanswered_stub(error: BaseException) -> bool:
    """True for the bare `raise NotImplementedError()` of an answer stub written in a notebook cell.

    A NotImplementedError with a message, or one raised inside a library module, is a real error and not a stub.
    """
    if type(error) is not NotImplementedError or error.args:
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and ("ipykernel" in frames[-1].filename or frames[-1].filename.startswith("<"))


@contextmanager
def self_check(exercise: str) -> Iterator[None]:
    """Run a visible-tests block: the success line when every check holds; one line when the answer is still a stub.

    A failed check (AssertionError) or any other error propagates, so a wrong answer shows as an error.
    """
    try:
        yield
    except NotImplementedError as error:
        if not is_unanswered_stub(error):
            raise
        print(f"○ {exercise}: not answered yet (the stub above still raises NotImplementedError); "
              "the rest of the notebook still runs.")
        return
    passed(exercise)


@contextmanager
def uses_answer(exercise: str) -> Iterator[None]:
    """Run a lesson block that needs a learner's answer; while it is still a stub, skip the block with one line."""
    try:
        yield
    except NotImplementedError as error:
        if not is_unanswered_stub(error):
            raise
        print(f"○ skipped: this cell uses your answer to {exercise}, which is not written yet.")
