"""Decide each exercise outside the student's kernel: the student's collected results against the reference's.

Both come as JSON lines written by `collect`. Only plain JSON data is compared, with exact types (1 ≠ 1.0 ≠ True);
floats within the relative tolerance the REFERENCE run declared. The last line per exercise counts. A student's line
can only be right by holding the right results for the secret inputs: nothing in it is trusted beyond that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One exercise: how many secret cases were checked and matched, and the points that earns (none when its
    answer uses a name the exercise forbids, see `lorakit.grading.forbidden`)."""

    exercise: str
    cases: int
    matched: int
    points: float
    forbidden_used: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        if self.forbidden_used:
            return 0.0
        return round(self.points * self.matched / self.cases, 6) if self.cases else 0.0


def parse_results(text: str) -> dict[str, dict[str, Any]]:
    """exercise → its last well-formed line (malformed lines are ignored)."""
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if type(entry) is dict and type(entry.get("exercise")) is str and type(entry.get("results")) is list:
            found[entry["exercise"]] = entry
    return found


def same(student: Any, reference: Any, rel: float) -> bool:
    """Exact-type equality of plain data; floats within `rel` of the reference (NaN matches only NaN)."""
    if type(student) is not type(reference):
        return False
    if type(reference) is float:
        if math.isnan(reference) or math.isnan(student):
            return math.isnan(reference) and math.isnan(student)
        return student == reference or math.isclose(student, reference, rel_tol=rel, abs_tol=0.0)
    if type(reference) is list:
        return len(student) == len(reference) and all(same(s, r, rel) for s, r in zip(student, reference))
    if type(reference) is dict:
        return student.keys() == reference.keys() and all(same(student[k], reference[k], rel) for k in reference)
    return student == reference


def matched_cases(student: dict[str, Any] | None, reference: dict[str, Any]) -> int:
    """How many of the reference's cases the student's line got right."""
    if student is None:
        return 0
    rel = reference.get("rel", 0.0)
    rel = rel if type(rel) is float and 0 <= rel < 1 else 0.0
    return sum(1 for s, r in zip(student["results"], reference["results"])
               if type(s) is dict and "value" in s and "value" in r and same(s["value"], r["value"], rel))


def decide(student_text: str, reference: dict[str, dict[str, Any]], points: dict[str, float]) -> dict[str, Verdict]:
    """grade_id → Verdict for every exercise the reference collected results for."""
    student = parse_results(student_text)
    return {exercise: Verdict(exercise, len(reference[exercise]["results"]),
                              matched_cases(student.get(exercise), reference[exercise]), points[exercise])
            for exercise in points if exercise in reference}
