"""Grade a class: find each student's notebooks (never changing them), run them sandboxed, decide, record, report."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.utils import is_grade

from . import collector, gradebook, sandbox
from .assemble import assemble
from .autograded import autograded_folder, autograded_notebook, reset, write_stamps
from .experiments import rerun_experiments
from .feedback import feedback_notebook, write_html
from .forbidden import violations
from .report import Grade
from .runner import run_notebook
from .settings import fingerprint
from .submissions import Stamp, find_notebook, read_notebook, read_stamp
from .untrusted import id_problem, printable
from .verdicts import Verdict, decide, parse_results

GRADEBOOK_TURN = threading.Lock()
BUDGET_FACTOR = 3.0  # a student's run may take this many times the instructor's (see student_budget)
BUDGET_SLACK_S = 60.0


@dataclass
class Course:
    """Everything fixed for one assignment's grading run."""

    root: Path
    assignment: str
    db_url: str
    seed: str
    timeout: int
    mode: str
    limits: sandbox.Limits
    sources: dict[str, Any] = field(default_factory=dict)
    releases: dict[str, Any] = field(default_factory=dict)
    points: dict[str, dict[str, float]] = field(default_factory=dict)
    references: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    config: Any = None

    @property
    def max_score(self) -> float:
        return sum(sum(points.values()) for points in self.points.values())


def reference_folder(course: Course) -> Path:
    return course.root / ".lorakit-grading" / course.assignment


def other_fingerprints(course: Course) -> set[str]:
    """Seed fingerprints of reference results cached for this assignment by gradings with another secret."""
    stems = {Path(name).stem for name in course.sources}
    found = {path.name[len(stem) + 1:].split("-")[0] for stem in stems
             for path in reference_folder(course).glob(f"{stem}-*-*.json")}
    return {name for name in found if re.fullmatch("[0-9a-f]{12}", name)} - {fingerprint(course.seed)}


def reference_results(course: Course, name: str) -> tuple[dict[str, dict[str, Any]], float]:
    """(results, wall seconds) of the instructor's solution run on the secret inputs (demo cells skipped), cached per
    source hash and seed in the course folder, which no student sandbox sees."""
    source_bytes = (course.root / "source" / course.assignment / name).read_bytes()
    key = hashlib.sha256(source_bytes + course.seed.encode() + Path(collector.__file__).read_bytes()).hexdigest()[:24]
    cache = reference_folder(course) / f"{Path(name).stem}-{fingerprint(course.seed)}-{key}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        return cached["results"], cached["seconds"]
    source = course.sources[name]
    started = time.monotonic()
    run = run_notebook(assemble(source, course.releases[name], source).notebook, course.timeout, course.seed,
                       course.mode, course.limits)
    seconds = time.monotonic() - started
    if run.executed is None:
        raise RuntimeError(f"the instructor's source notebook {name} did not run: {run.problem}")
    results = {exercise: entry for exercise, entry in parse_results(run.results).items()
               if all("value" in case for case in entry["results"])}
    cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache.write_text(json.dumps({"results": results, "seconds": seconds}))
    return results, seconds


def student_budget(reference_seconds: float, timeout: int) -> int:
    """Wall seconds one student's run of a notebook may take: BUDGET_FACTOR × the instructor's run plus
    BUDGET_SLACK_S for a kernel start, and never less than two cell timeouts. Cells a student adds do not raise it."""
    return int(max(2 * timeout, BUDGET_FACTOR * reference_seconds + BUDGET_SLACK_S))


def exercise_at(index: int, test_cells: dict[str, int]) -> str:
    """The exercise a cell belongs to: the first test cell at or after it."""
    after = sorted((where, exercise) for exercise, where in test_cells.items() if where >= index)
    return after[0][1] if after else "after the last exercise"


def run_problems(executed: Any, test_cells: dict[str, int], timeout: int) -> tuple[list[str], list[str]]:
    """(timeouts, kernel deaths) named by exercise, from the executed notebook's cell outcomes."""
    timeouts, deaths = [], []
    for index, cell in enumerate(executed.cells if executed is not None else []):
        outcome = cell.get("metadata", {}).get("lorakit", {}).get("outcome") if isinstance(
            cell.get("metadata", {}).get("lorakit"), dict) else None
        if outcome == "timeout":
            timeouts.append(f"{exercise_at(index, test_cells)}: a cell ran past {timeout} s")
        elif outcome in ("died", "not run"):
            deaths.append(f"{exercise_at(index, test_cells)}: the kernel {'died' if outcome == 'died' else 'could not restart'}"
                          " (restarted; later exercises graded)")
    return timeouts, deaths


def grade_notebook(course: Course, name: str, path: Path, feedback_dir: Path | None, autograded_dir: Path,
                   unanswered: list[str]) -> tuple[dict[str, float | None], list[str], set[str]]:
    """(grade_id → score, details, problem kinds) for one notebook of one student; formgrader's copy of the graded
    notebook goes to `autograded_dir`; the answer cells the student left as released are added to `unanswered`."""
    points = course.points[name]
    student, problem = read_notebook(path)
    if student is None:
        return dict.fromkeys(points), [problem], {"error"}
    built = assemble(course.sources[name], course.releases[name], student)
    unanswered += built.unanswered
    if built.empty:  # nothing run; the feedback still says so per exercise
        nbformat.write(autograded_notebook(built, None), autograded_dir / name)
        if feedback_dir is not None:
            unanswered = {cell: Verdict(cell, cases=0, matched=0, points=points[cell]) for cell in points}
            write_html(feedback_notebook(built.notebook, built.test_cells, unanswered),
                       feedback_dir / f"{Path(name).stem}.html")
        return {cell: 0.0 for cell in points}, [f"{name} has no code in any solution cell"], {"empty"}
    run = run_notebook(built.notebook, course.timeout, course.seed, course.mode, course.limits,
                       budget_s=course.budgets.get(name))
    nbformat.write(autograded_notebook(built, run.executed), autograded_dir / name)
    reference = course.references[name]
    verdicts, reruns = rerun_experiments(course.sources[name], run.results, decide(run.results, reference, points),
                                         course.seed)
    kinds, details = set(), list(built.tampering) + reruns
    forbidden = violations(course.sources[name], built.notebook, built.test_cells, built.from_student)
    for exercise, names in forbidden.items():
        if exercise in verdicts:
            verdicts[exercise] = replace(verdicts[exercise], forbidden_used=tuple(names))
        details.append(f"{exercise}: the answer uses {', '.join(names)}, which the exercise forbids (0 points)")
    kinds |= {"tampered"} if built.tampering else set()
    timeouts, deaths = run_problems(run.executed, built.test_cells, course.timeout)
    kinds |= ({"timeout"} if timeouts else set()) | ({"error"} if deaths or run.problem else set())
    details += timeouts + deaths + ([run.problem] if run.problem else [])
    manual = [cell for cell in points if cell not in reference]
    if manual:
        kinds.add("needs-manual-grade")
        details.append(f"not graded automatically: {', '.join(manual)}")
    if feedback_dir is not None and run.executed is not None:
        write_html(feedback_notebook(run.executed, built.test_cells, verdicts), feedback_dir / f"{Path(name).stem}.html")
    scores: dict[str, float | None] = {cell: verdicts[cell].score if cell in verdicts else None for cell in points}
    return scores, details, kinds


STATUS_ORDER = ("error", "empty", "tampered", "timeout", "needs-manual-grade")


def grade_student(course: Course, student: str, folder: Path, feedback: bool, refusal: str = "") -> Grade:
    """Grade one student's folder (read only) and record the result; any failure is a status, never an exception.

    `student` must be a valid id (untrusted.id_problem); a `refusal` (e.g. a linked folder) fails every notebook."""
    feedback_dir = course.root / "feedback" / student / course.assignment
    shutil.rmtree(feedback_dir, ignore_errors=True)  # stale feedback never outlives a re-grade
    stamp = Stamp() if refusal else read_stamp(folder, course.assignment)
    autograded_dir = autograded_folder(course.config, student, course.assignment)
    reset(autograded_dir, stamp)
    scores: dict[str, dict[str, float | None]] = {}
    unanswered: dict[str, list[str]] = {}
    details: list[str] = [stamp.problem] if stamp.problem else []
    kinds: set[str] = set()
    for name, points in course.points.items():
        path, problem = (None, refusal) if refusal else find_notebook(folder, name, course.assignment)
        if path is None:
            scores[name], kinds = dict.fromkeys(points), kinds | {"error"}
            details.append(problem)
            continue
        try:
            scores[name], found, more = grade_notebook(course, name, path, feedback_dir if feedback else None,
                                                       autograded_dir, unanswered.setdefault(Path(name).stem, []))
        except Exception as err:  # noqa: BLE001
            scores[name], found, more = dict.fromkeys(points), [f"grading failed: {type(err).__name__}: {err}"], {"error"}
        details, kinds = details + found, kinds | more
    if feedback_dir.is_dir():  # feedback was written: release_feedback needs the stamps beside it
        write_stamps(feedback_dir, stamp)
    with GRADEBOOK_TURN:  # one writer at a time: students may be graded in parallel threads (grade_class jobs)
        late, penalty = gradebook.record(course.db_url, course.assignment, student,
                                         {Path(n).stem: s for n, s in scores.items()}, stamp.timestamp, course.config,
                                         unanswered)
    flat = {cell: score for cells in scores.values() for cell, score in cells.items()}
    status = next((kind for kind in STATUS_ORDER if kind in kinds), "ok")
    return Grade(student, course.assignment, round(sum(s or 0.0 for s in flat.values()), 6), course.max_score, status,
                 printable("; ".join(dict.fromkeys(details)))[:1500], flat,
                 stamp.timestamp.isoformat() if stamp.timestamp else "", late, penalty, fingerprint(course.seed))


def refused(course: Course, name: str) -> Grade:
    """The row of a folder whose name can't be a student id: not graded, nothing recorded, the name escaped."""
    cells = [cell for points in course.points.values() for cell in points]
    return Grade(printable(name), course.assignment, 0.0, course.max_score, "error", id_problem(name),
                 dict.fromkeys(cells))


def load_notebooks(root: Path, assignment: str) -> tuple[dict[str, Any], dict[str, Any]]:
    sources = {p.name: nbformat.read(p, as_version=4) for p in sorted((root / "source" / assignment).glob("*.ipynb"))}
    releases = {name: nbformat.read(root / "release" / assignment / name, as_version=4) for name in sources}
    return sources, releases


def graded_points(db_url: str, assignment: str, sources: dict[str, Any]) -> dict[str, dict[str, float]]:
    """notebook → grade_id → points, from the gradebook (what formgrader shows), in the notebook's cell order."""
    points = gradebook.cells_and_points(db_url, assignment)
    order = {name: [c.metadata.nbgrader["grade_id"] for c in nb.cells if is_grade(c)] for name, nb in sources.items()}
    return {name: {cell: points[Path(name).stem][cell] for cell in order[name]} for name in sources}

