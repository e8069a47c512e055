"""Classroom-safe grading: student notebooks run sandboxed, verdicts are decided outside their kernel.

`grade_class` grades a class folder into nbgrader's gradebook and a CSV; `generate_release` makes the student
version; `generate_feedback` writes feedback HTML without hidden checks. Hidden test cells only `collect` results
(`lorakit.grading.collector`; `random_shape` and `random_task` make model-shape and task inputs); the grader
compares them with the instructor's solution run on inputs derived from a per-course secret. See docs/grading.md.

Names are imported on first use: a hidden-test cell imports this package, and the instructor side (nbgrader,
nbformat) would cost every graded kernel about 2.4 s.
"""

from __future__ import annotations

from ..compat import lazy_exports

EXPORTS = {
    "Grade": "report", "generate_feedback": "instructor", "generate_release": "instructor",
    "grade_class": "instructor", "collect": "collector", "random_shape": "cases", "random_task": "cases",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
