"""Write decided scores into nbgrader's gradebook, so formgrader and `nbgrader export` show lorakit's verdicts."""

from __future__ import annotations

from nbgrader.api import Gradebook


def record(db_url: str, assignment: str, student: str, scores: dict[str, dict[str, float | None]]) -> None:
    """Set each grade cell's auto_score (notebook name → grade_id → score; None = not decided: a failed run).

    A None clears a stale score from an earlier grading and flags the cell for manual grading, so a failed
    re-grade never leaves the old score standing.
    """
    with Gradebook(db_url) as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(assignment, student)
        for notebook, cells in scores.items():
            for cell, score in cells.items():
                grade = gradebook.find_grade(cell, notebook, assignment, student)
                grade.auto_score = score
                grade.manual_score = None
                grade.needs_manual_grade = score is None
        gradebook.db.commit()


def cells_and_points(db_url: str, assignment: str) -> dict[str, dict[str, float]]:
    """notebook name → grade_id → points of every grade cell of `assignment`."""
    with Gradebook(db_url) as gradebook:
        found = gradebook.find_assignment(assignment)
        return {notebook.name: {cell.name: float(cell.max_score) for cell in notebook.grade_cells}
                for notebook in found.notebooks}
