"""The instructor's grading API: release, class grading in the sandbox, feedback (re-exported by lorakit.grading)."""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..models.hardware import usable_cpus
from . import classroom, sandbox, settings, shards, untrusted
from .report import Grade, write_csv
from .submissions import student_folders


def _api(config: object) -> object:
    from nbgrader.apps import NbGraderAPI

    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")  # nbgrader shells out to alembic
    return NbGraderAPI(config=config)


def generate_release(course_root: str | Path, assignment: str) -> Path:
    """Generate the student version of `assignment` into `<course_root>/release/<assignment>` (and its gradebook
    entry)."""
    course_root = Path(course_root)
    if not (course_root / "source" / assignment).is_dir():
        raise ValueError(f"assignment {assignment!r} has no folder source/{assignment} under {str(course_root)!r}")
    result = _api(settings.load_config(course_root)).generate_assignment(assignment, force=True)
    if not result.get("success"):
        raise RuntimeError(f"nbgrader generate {assignment} failed: {result.get('error')}\n{result.get('log', '')[-2000:]}")
    return course_root / "release" / assignment


def _check_sandbox(mode: str) -> None:
    if mode not in sandbox.SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {sandbox.SANDBOX_MODES}, got {mode!r}")
    try:
        with tempfile.TemporaryDirectory(prefix="lorakit-probe-") as probe_root:
            sandbox.check(Path(probe_root))
    except sandbox.SandboxUnavailable:
        if mode == "require":
            raise
        warnings.warn("UNSAFE: grading WITHOUT a sandbox: student code can read and write anything you can "
                      f"(the gradebook, the solutions, your files). {sandbox.needs()}", RuntimeWarning, stacklevel=3)


PER_STUDENT_MEMORY = 2 * 2**30  # the course's kernel budget per chapter


def default_jobs(sandbox_mode: str = "require") -> int:
    """Students graded at once when not told: as root in the sandbox, one per usable CPU and per 2 GiB of memory
    (each slot runs as its own uid); otherwise 1, since the slots would share one uid and its process limit."""
    if os.geteuid() != 0 or sandbox_mode != "require":
        return 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(usable_cpus(), memory // PER_STUDENT_MEMORY, 64))


def grade_class(course_root: str | Path, assignment: str, submissions: str | Path | None = None,
                csv_path: str | Path | None = None, timeout: int | None = None, feedback: bool = False,
                sandbox_mode: str = "require", secret: str | None = None,
                limits: sandbox.Limits | None = None, jobs: int | None = None, shard: shards.Shard | None = None) -> list[Grade]:
    """Grade every student of `assignment`; record scores in nbgrader's gradebook; optionally write a CSV.

    submissions: a folder of `<student>/<notebook>.ipynb` (or `<student>/<assignment>/...`), anywhere; None grades
    `<course_root>/submitted/<student>/<assignment>/`. Submitted files are only read, never changed. timeout:
    seconds each cell may run (default: the course config's `Execute.timeout`, else 60). sandbox_mode: "require"
    (refuse when bubblewrap can't run) or "warn" (run unsandboxed with a loud warning). secret: the course's
    grading secret (default: $LORAKIT_GRADING_SECRET or c.LorakitGrader.secret). Raises ValueError on bad input.
    A folder whose name is not a valid student id gets an "error" Grade (name escaped) and no gradebook entry.
    jobs: students graded at once (threads waiting on one sandbox each; gradebook writes take turns); None:
    `default_jobs`. As root each slot's sandbox has its own uid, so no student's processes count against another's
    limit (the red-team class grades the same at 2 jobs); without root every slot shares the grader's uid, and an
    attacking student can make one graded beside them fail. The grades, the CSV and the gradebook are the same for
    any number of jobs.
    shard: grade only that slice of the class (`shards.select`; `shards.merge_csvs` joins the slices' CSVs).
    """
    course_root = Path(course_root)
    config = settings.load_config(course_root)
    secret_value = settings.secret(config, secret)
    if timeout is None:
        timeout = int(config.get("Execute", {}).get("timeout", 60))
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be a whole number of seconds ≥ 1, got {timeout!r}")
    if not (course_root / "source" / assignment).is_dir():
        raise ValueError(f"assignment {assignment!r} has no folder source/{assignment} under {str(course_root)!r}")
    limits = limits or sandbox.Limits()
    jobs = default_jobs(sandbox_mode) if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 64:
        raise ValueError(f"jobs must be a whole number from 1 to 64, got {jobs!r}")
    folders = shards.select(student_folders(course_root, assignment, Path(submissions) if submissions else None), shard)
    _check_sandbox(sandbox_mode)
    generate_release(course_root, assignment)  # the release and the gradebook's cells always match the source
    db_url = config.CourseDirectory.db_url
    sources, releases = classroom.load_notebooks(course_root, assignment)
    course = classroom.Course(course_root, assignment, db_url, settings.seed(secret_value, assignment), timeout,
                              sandbox_mode, limits, sources, releases,
                              classroom.graded_points(db_url, assignment, sources), config=config)
    earlier = classroom.other_fingerprints(course)
    if earlier:
        print(f"note: {assignment} was graded before with another secret (seed fingerprint {', '.join(sorted(earlier))};"
              f" this run: {settings.fingerprint(course.seed)}): its hidden inputs differ, so scores may differ from "
              "that grading's; the CSV's seed_fingerprint column says which run scored each row", file=sys.stderr)
    for name in sources:
        course.references[name], seconds = classroom.reference_results(course, name)
        course.budgets[name] = classroom.student_budget(seconds, timeout)

    free_slots: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(jobs):
        free_slots.put(slot)

    def grade_one(item: tuple[str, tuple[Path, str]]) -> Grade:
        name, (folder, problem) = item
        if untrusted.id_problem(name):
            return classroom.refused(course, name)
        slot = free_slots.get()  # its own sandbox uid while it grades (as root), so no student starves another
        try:
            in_slot = replace(course, limits=replace(course.limits, uid=sandbox.slot_uid(slot)))
            return classroom.grade_student(in_slot, name, folder, feedback, problem)
        finally:
            free_slots.put(slot)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        grades = list(pool.map(grade_one, folders.items()))
    if csv_path is not None:  # a refused name that isn't printable is only on the terminal (escaped)
        write_csv(csv_path, [g for name, g in zip(folders, grades) if name.isprintable()],
                  [cell for points in course.points.values() for cell in points])
    return grades


def generate_feedback(course_root: str | Path, assignment: str, student: str | None = None) -> list[Path]:
    """The feedback HTML written by the last `grade_class(..., feedback=True)` (one student or all)."""
    return sorted((Path(course_root) / "feedback").glob(f"{student or '*'}/{assignment}/*.html"))
