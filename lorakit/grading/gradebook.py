"""Write decided scores into nbgrader's gradebook, so formgrader and `nbgrader export` show lorakit's verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nbgrader.api import Gradebook


def record(db_url: str, assignment: str, student: str, scores: dict[str, dict[str, float | None]],
           timestamp: datetime | None = None, config: Any = None,
           unanswered: dict[str, list[str]] | None = None) -> tuple[float, float]:
    """Set each grade cell's auto_score (notebook name → grade_id → score; None = not decided: a failed run), the
    submission's timestamp and, as nbgrader's autograde does, the auto comment "No response." on each answer cell
    left as released (`unanswered`: notebook name → grade_ids; every other answer's auto comment is cleared); then
    let nbgrader's AssignLatePenalties (the course's LateSubmissionPlugin, the assignment's duedate) set each
    notebook's late penalty. Returns (seconds late, total late penalty).

    A None clears a stale score from an earlier grading and flags the cell for manual grading, so a failed
    re-grade never leaves the old score standing.
    """
    with Gradebook(db_url) as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(assignment, student, timestamp=timestamp)
        for notebook, cells in scores.items():
            for cell, score in cells.items():
                grade = gradebook.find_grade(cell, notebook, assignment, student)
                grade.auto_score = score
                grade.manual_score = None
                grade.needs_manual_grade = score is None
            for comment in gradebook.find_submission_notebook(notebook, assignment, student).comments:
                comment.auto_comment = "No response." if comment.name in (unanswered or {}).get(notebook, []) else None
        gradebook.db.commit()
    late_penalties(db_url, assignment, student, list(scores), config)
    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return float(submission.total_seconds_late), float(submission.late_submission_penalty or 0.0)


def late_penalties(db_url: str, assignment: str, student: str, notebooks: list[str], config: Any) -> None:
    """Run nbgrader's own AssignLatePenalties on each notebook of the submission (as its autograde does)."""
    import nbformat
    from nbgrader.preprocessors import AssignLatePenalties

    for notebook in notebooks:
        resources = {"nbgrader": {"notebook": notebook, "assignment": assignment, "student": student,
                                  "db_url": db_url}}
        AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)


def cells_and_points(db_url: str, assignment: str) -> dict[str, dict[str, float]]:
    """notebook name → grade_id → points of every grade cell of `assignment`."""
    with Gradebook(db_url) as gradebook:
        found = gradebook.find_assignment(assignment)
        return {notebook.name: {cell.name: float(cell.max_score) for cell in notebook.grade_cells}
                for notebook in found.notebooks}
