"""The class report: one row per student, with per-exercise scores, a status and a detail naming the real problem."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("ok", "timeout", "tampered", "empty", "error", "needs-manual-grade")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Grade:
    """One student's result on one assignment.

    status: "ok"; "timeout" (an exercise ran past its time and scored 0); "tampered" (a locked cell was edited or
    deleted: the instructor's version ran instead); "empty" (no code in any solution cell, nothing run, 0);
    "error": either nothing was graded (a missing, unreadable or linked notebook or folder, a folder name that is no
    student id: every exercise None) or the run failed part way (a dead kernel, a stopped runner: the exercises
    decided before the failure keep their points, the rest score 0); "needs-manual-grade" (some points are not
    decided automatically). `exercises`: grade_id → score (None: not decided). `timestamp`: when it was submitted
    (timestamp.txt, UTC, ISO; '' when unknown); `seconds_late` and `late_penalty` as nbgrader computed them from the
    assignment's duedate and the course's LateSubmissionPlugin (`score` is before the penalty: nbgrader export's raw_score).
    `seed_fingerprint`: which secret's inputs decided the scores (`settings.fingerprint`; '' when nothing ran).
    """

    student: str
    assignment: str
    score: float
    max_score: float
    status: str
    detail: str = ""
    exercises: dict[str, float | None] = field(default_factory=dict)
    timestamp: str = ""
    seconds_late: float = 0.0
    late_penalty: float = 0.0
    seed_fingerprint: str = ""


def cell(value: object) -> str:
    """A CSV cell no spreadsheet reads as a formula: text starting with = + - @ tab or CR gets a leading quote
    (OWASP's rule for CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


COLUMNS = ["student", "assignment", "score", "max_score", "status", "detail", "timestamp", "seconds_late",
           "late_penalty", "seed_fingerprint"]  # then one column per exercise


def write_csv(path: str | Path, grades: list[Grade], exercise_ids: list[str]) -> None:
    """CSV: student, assignment, score, max_score, status, detail, timestamp, seconds_late, late_penalty,
    seed_fingerprint, then one column per exercise; every cell neutralised (`cell`)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([cell(v) for v in [*COLUMNS, *exercise_ids]])
        for g in grades:
            row = [g.student, g.assignment, g.score, g.max_score, g.status, g.detail, g.timestamp, g.seconds_late,
                   g.late_penalty, g.seed_fingerprint, *map(g.exercises.get, exercise_ids)]
            writer.writerow(map(cell, row))
