"""Grading: feedback a learner can act on in the notebooks, and nbgrader automation for instructors.

Learners see `check_close` / `check_equal` failures as plain sentences saying what was expected, what they got and
a hint. Instructors use `generate_release` (student versions) and `grade_class` (autograde a class folder → CSV)
through nbgrader's Python API, since `nbgrader validate` and friends exit 0 even when something fails.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
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


def _config(course_root: Path) -> Any:
    from traitlets.config import Config

    config = Config()
    config_file = course_root / "nbgrader_config.py"
    namespace = {"get_config": lambda: config, "__file__": str(config_file.resolve())}
    exec(compile(config_file.read_text(), str(config_file), "exec"), namespace)
    config.CourseDirectory.root = str(course_root.resolve())
    config.CourseDirectory.db_url = f"sqlite:///{(course_root / 'gradebook.db').resolve()}"
    return config


def _api(course_root: Path) -> Any:
    from nbgrader.apps import NbGraderAPI

    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")  # nbgrader shells out to alembic
    return NbGraderAPI(config=_config(course_root))


def _raise_on_failure(result: dict, action: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {action} failed: {result.get('error')}\n{result.get('log', '')[-2000:]}")


def generate_release(course_root: str | Path, assignment: str) -> Path:
    """Generate the student version of `assignment` into `<course_root>/release/<assignment>`."""
    course_root = Path(course_root)
    _raise_on_failure(_api(course_root).generate_assignment(assignment, force=True), f"generate {assignment}")
    return course_root / "release" / assignment


@dataclass
class Grade:
    """One student's score on one assignment."""

    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # "graded", or "failed" when nbgrader could not grade the notebook
    detail: str = ""


def _read_grade(course_root: Path, assignment: str, student: str) -> Grade:
    from nbgrader.api import Gradebook

    with Gradebook(_config(course_root).CourseDirectory.db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return Grade(student, assignment, submission.score, submission.max_score, "graded")


def _in_gradebook(course_root: Path, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_config(course_root).CourseDirectory.db_url) as gradebook:
        try:
            gradebook.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def grade_class(course_root: str | Path, assignment: str, submissions: str | Path,
                csv_path: str | Path | None = None) -> list[Grade]:
    """Autograde every student folder in `submissions` (`<student>/<notebook>.ipynb`) and optionally write a CSV.

    Each student is graded on its own: one crashing, looping or tampered notebook never stops the batch.
    """
    course_root, submissions = Path(course_root), Path(submissions)
    api = _api(course_root)
    if not _in_gradebook(course_root, assignment):  # autograding needs the source's cell checksums in the gradebook
        generate_release(course_root, assignment)
    grades: list[Grade] = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        student = student_dir.name
        target = course_root / "submitted" / student / assignment
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(student_dir, target)
        result = api.autograde(assignment, student, force=True, create=True)
        if result.get("success"):
            grades.append(_read_grade(course_root, assignment, student))
        else:
            grades.append(Grade(student, assignment, 0.0, 0.0, "failed", str(result.get("log"))[-1500:]))
    if csv_path is not None:
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(asdict(grades[0]) if grades else Grade.__annotations__))
            writer.writeheader()
            writer.writerows(asdict(g) for g in grades)
    return grades
