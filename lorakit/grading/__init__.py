"""Grading: feedback a learner can act on in the notebooks, and nbgrader automation for instructors.

Learners see `check_close` / `check_equal` failures as plain sentences saying what was expected, what they got and
a hint. Instructors use `generate_release` (student versions) and `grade_class` (autograde a class folder → CSV)
through nbgrader's Python API, since `nbgrader validate` and friends exit 0 even when something fails.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


def _config(course_root: Path, timeout: int | None = None) -> Any:
    from traitlets.config import Config

    config_file = course_root / "nbgrader_config.py"
    if not config_file.is_file():
        raise ValueError(f"course_root {str(course_root)!r} has no nbgrader_config.py (is it an nbgrader course folder?)")
    config = Config()
    namespace = {"get_config": lambda: config, "__file__": str(config_file.resolve())}
    exec(compile(config_file.read_text(), str(config_file), "exec"), namespace)
    config.CourseDirectory.root = str(course_root.resolve())
    config.CourseDirectory.db_url = f"sqlite:///{(course_root / 'gradebook.db').resolve()}"
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a whole number of seconds ≥ 1, got {timeout!r}")
        config.ExecutePreprocessor.timeout = config.Execute.timeout = timeout
    return config


def _api(config: Any) -> Any:
    from nbgrader.apps import NbGraderAPI

    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")  # nbgrader shells out to alembic
    return NbGraderAPI(config=config)


def _raise_on_failure(result: dict, action: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {action} failed: {result.get('error')}\n{result.get('log', '')[-2000:]}")


def generate_release(course_root: str | Path, assignment: str) -> Path:
    """Generate the student version of `assignment` into `<course_root>/release/<assignment>`."""
    course_root = Path(course_root)
    if not (course_root / "source" / assignment).is_dir():
        raise ValueError(f"assignment {assignment!r} has no folder source/{assignment} under {str(course_root)!r}")
    result = _api(_config(course_root)).generate_assignment(assignment, force=True)
    _raise_on_failure(result, f"generate {assignment}")
    return course_root / "release" / assignment


@dataclass
class Grade:
    """One student's score on one assignment.

    status: "ok"; "timeout" (a cell ran past the execute timeout and was interrupted); "tampered" (a locked cell,
    e.g. a test cell, was edited or deleted: nbgrader graded the instructor's version of edited cells, deleted test
    cells score 0); "empty" (no code at all); "error" (nbgrader could not grade it, e.g. unreadable JSON or a kernel
    that died). `detail` says why.
    """

    student: str
    assignment: str
    score: float
    max_score: float
    status: str
    detail: str = ""


def _readable_cells(path: Path) -> list[Any]:
    import nbformat

    return list(nbformat.read(path, as_version=4).cells)


def _locked_cells(notebook: Path) -> dict[str, str]:
    """grade_id → nbgrader checksum of every locked cell (test and read-only cells) of the instructor's release."""
    from nbgrader.utils import compute_checksum, is_locked

    return {cell.metadata.nbgrader["grade_id"]: compute_checksum(cell)
            for cell in _readable_cells(notebook) if is_locked(cell)}


def _tampering(cells: list[Any], locked: dict[str, str]) -> list[str]:
    """What the student changed in locked cells: 'edited <id>' / 'deleted <id>' (checked against the release)."""
    from nbgrader.utils import compute_checksum

    found: dict[str, str] = {}
    for cell in cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in locked:
            try:
                found[grade_id] = compute_checksum(cell)
            except (KeyError, AttributeError, TypeError, ValueError):  # nbgrader metadata edited beyond checksumming
                found[grade_id] = ""
    return [f"{'edited' if grade_id in found else 'deleted'} locked cell {grade_id!r}"
            for grade_id, checksum in locked.items() if found.get(grade_id) != checksum]


def _is_empty(cells: list[Any]) -> bool:
    return not any(cell.cell_type == "code" and cell.source.strip() for cell in cells)


def _timed_out(autograded: Path) -> list[str]:
    """Cells of the autograded notebook that hit the execute timeout (nbclient's CellTimeoutError output)."""
    return [f"cell {index} ran past the execute timeout" for index, cell in enumerate(_readable_cells(autograded))
            if any(out.get("ename") == "CellTimeoutError" for out in cell.get("outputs", []))]


def _failure_line(log: str) -> str:
    """The line of an nbgrader log that names the exception (e.g. "DeadKernelError: Kernel died")."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    return (named or lines or ["nbgrader autograde failed"])[-1][:500]


def _scores(course_root: Path, assignment: str, student: str | None) -> tuple[float, float]:
    """(score, max_score) of a student's submission, or (0, the assignment's max score) when student is None."""
    from nbgrader.api import Gradebook

    with Gradebook(_config(course_root).CourseDirectory.db_url) as gradebook:
        if student is None:
            return 0.0, gradebook.find_assignment(assignment).max_score
        submission = gradebook.find_submission(assignment, student)
        return submission.score, submission.max_score


def _in_gradebook(course_root: Path, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_config(course_root).CourseDirectory.db_url) as gradebook:
        try:
            gradebook.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def _grade_one(api: Any, course_root: Path, assignment: str, student: str, locked: dict[str, dict[str, str]]) -> Grade:
    """Autograde one submitted folder and classify it; any failure becomes status "error", never an exception."""
    submitted = course_root / "submitted" / student / assignment
    missing, tampered, empty = [], [], True
    try:
        for name, cells in locked.items():
            if not (submitted / name).is_file():
                missing.append(f"no notebook named {name}")
                continue
            notebook = _readable_cells(submitted / name)
            tampered += _tampering(notebook, cells)
            empty = empty and _is_empty(notebook)
    except Exception as err:  # noqa: BLE001 - an unreadable notebook is the student's, the batch goes on
        return Grade(student, assignment, *_scores(course_root, assignment, None), "error",
                     f"unreadable notebook: {type(err).__name__}: {err}"[:1500])
    try:
        result = api.autograde(assignment, student, force=True, create=True)
    except Exception as err:  # noqa: BLE001
        result = {"success": False, "log": f"{type(err).__name__}: {err}"}
    if not result.get("success"):
        return Grade(student, assignment, *_scores(course_root, assignment, None), "error",
                     _failure_line(str(result.get("log"))))
    score, max_score = _scores(course_root, assignment, student)
    timeouts = [f"{name}: {what}" for name in locked
                for what in _timed_out(course_root / "autograded" / student / assignment / name)
                if (course_root / "autograded" / student / assignment / name).is_file()]
    status = "empty" if empty else "tampered" if tampered else "timeout" if timeouts else "ok"
    return Grade(student, assignment, score, max_score, status, "; ".join(missing + tampered + timeouts))


def grade_class(course_root: str | Path, assignment: str, submissions: str | Path | None = None,
                csv_path: str | Path | None = None, timeout: int | None = None) -> list[Grade]:
    """Autograde a class and optionally write a CSV (student, assignment, score, max_score, status, detail).

    submissions: a folder of `<student>/<notebook>.ipynb`, copied into `<course_root>/submitted`; None grades the
    course's own `submitted/<student>/<assignment>/` folders (nbgrader's layout). timeout: seconds a cell may run
    (default: the course config's). Each student is graded on its own: a notebook that raises, loops, is tampered
    with or can't be read gets its status (see `Grade`) and never stops the batch.
    """
    course_root = Path(course_root)
    api = _api(_config(course_root, timeout))
    if not _in_gradebook(course_root, assignment) or not (course_root / "release" / assignment).is_dir():
        generate_release(course_root, assignment)  # autograding needs the source's cells in the gradebook
    release = course_root / "release" / assignment
    locked = {path.name: _locked_cells(path) for path in sorted(release.glob("*.ipynb"))}
    if submissions is None:
        students = sorted(p.parent.name for p in (course_root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    else:
        submissions = Path(submissions)
        if not submissions.is_dir():
            raise ValueError(f"submissions {str(submissions)!r} is not a folder of <student>/<notebook>.ipynb")
        students = sorted(p.name for p in submissions.iterdir() if p.is_dir())
        for student in students:
            target = course_root / "submitted" / student / assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(submissions / student, target)
    grades = [_grade_one(api, course_root, assignment, student, locked) for student in students]
    if csv_path is not None:
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(Grade)])
            writer.writeheader()
            writer.writerows(asdict(g) for g in grades)
    return grades


def redact_hidden_tests(cell: Any) -> None:
    """Remove a graded cell's hidden tests and any traceback (which would quote them) from a feedback notebook."""
    if "BEGIN HIDDEN TESTS" not in cell.source:
        return
    kept, hidden = [], False
    for line in cell.source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            kept.append(line)
    cell.source = "\n".join(kept)
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}",
                                   "(no traceback: this cell runs hidden tests)"]


def feedback_preprocessors() -> list[type]:
    """nbgrader's feedback preprocessors plus one that removes hidden tests and their tracebacks (nbgrader 0.9 shows
    them). The course's nbgrader_config.py installs these, so `nbgrader generate_feedback` is safe as well."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor

    class RedactHiddenTests(NbGraderPreprocessor):
        def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
            redact_hidden_tests(cell)
            return cell, resources

    return [GetGrades, RedactHiddenTests, CSSHTMLHeaderPreprocessor]


def generate_feedback(course_root: str | Path, assignment: str, student: str | None = None) -> list[Path]:
    """Feedback HTML for autograded submissions (one student or all) in `<course_root>/feedback`, without the
    hidden tests."""
    course_root = Path(course_root)
    config = _config(course_root)
    config.GenerateFeedback.preprocessors = feedback_preprocessors()
    _raise_on_failure(_api(config).generate_feedback(assignment, student), f"generate_feedback {assignment}")
    return sorted((course_root / "feedback").glob(f"{student or '*'}/{assignment}/*.html"))
