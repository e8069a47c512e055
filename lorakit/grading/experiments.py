"""Graded experiments, decided by rerunning them: an exercise's test cell can name one
(`# %% [tests] id="ch3-budget-tests" experiment="budget-run"`, stored as `metadata.lorakit.experiment`). Its hidden
block collects the student's settings (plain data); the grader, outside the student's kernel, runs the named
experiment (`lorakit.lessons.experiments`, trusted code) on those settings with a seed derived from the course
secret and this exercise, and the exercise scores full points when the run meets its target, else 0.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from ..lessons.experiments import Outcome, budget_run
from .untrusted import printable
from .verdicts import Verdict, parse_results

EXPERIMENTS: dict[str, Callable[[Any, int], Outcome]] = {"budget-run": budget_run}


def experiment_of(cell: Any) -> str | None:
    """The experiment a test cell names (from the trusted source notebook), or None."""
    lorakit_meta = cell.get("metadata", {}).get("lorakit", {})
    name = lorakit_meta.get("experiment") if isinstance(lorakit_meta, dict) else None
    return name if isinstance(name, str) else None


def experiment_seed(course_seed: str, exercise: str) -> int:
    """The seed an exercise's experiment runs on: fixed by the course secret's seed, unknown to the students."""
    return int(hashlib.sha256(f"{course_seed}:experiment:{exercise}".encode()).hexdigest()[:8], 16)


def rerun_experiments(source: Any, student_results: str, verdicts: dict[str, Verdict],
                      course_seed: str) -> tuple[dict[str, Verdict], list[str]]:
    """`verdicts` with each experiment exercise decided by rerunning it on the student's collected settings, and
    one detail line per rerun. An exercise without collected settings keeps its verdict (no points)."""
    from nbgrader.utils import is_grade

    named = {c.metadata.nbgrader["grade_id"]: experiment_of(c) for c in source.cells if is_grade(c)}
    collected = parse_results(student_results)
    decided, details = dict(verdicts), []
    for exercise, name in named.items():
        if name is None or exercise not in verdicts:
            continue
        results = collected.get(exercise, {}).get("results", [])
        if not results or type(results[0]) is not dict or "value" not in results[0]:
            continue
        outcome = EXPERIMENTS[name](results[0]["value"], experiment_seed(course_seed, exercise))
        decided[exercise] = Verdict(exercise, cases=1, matched=int(outcome.passed),
                                    points=verdicts[exercise].points)
        details.append(f"{exercise}: rerun by the grader: {printable(outcome.line)}")
    return decided, details
