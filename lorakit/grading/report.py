"""The class report: one row per student, with per-exercise scores, a status and a detail naming the real problem."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("ok", "timeout", "tampered", "empty", "error", "needs-manual-grade")


@dataclass
class Grade:
    """One student's result on one assignment.

    status: "ok"; "timeout" (an exercise ran past its time and scored 0); "tampered" (a locked cell was edited or
    deleted: the instructor's version ran instead); "empty" (no code at all); "error" (not graded: missing or
    unreadable notebook, or the run failed; no score is kept); "needs-manual-grade" (some points are not decided
    automatically). `exercises`: grade_id → score.
    """

    student: str
    assignment: str
    score: float
    max_score: float
    status: str
    detail: str = ""
    exercises: dict[str, float | None] = field(default_factory=dict)


def write_csv(path: str | Path, grades: list[Grade], exercise_ids: list[str]) -> None:
    """CSV: student, assignment, score, max_score, status, detail, then one column per exercise."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "score", "max_score", "status", "detail", *exercise_ids])
        for g in grades:
            cells = ["" if g.exercises.get(e) is None else g.exercises[e] for e in exercise_ids]
            writer.writerow([g.student, g.assignment, g.score, g.max_score, g.status, g.detail, *cells])
