"""Time `lorakit grade` on a class of the tiny fixture course at 1 and at 2 jobs, as an instructor runs it.

Each student's notebook runs in its own bubblewrap sandbox; with `--jobs N` N students run at once. Prints the
seconds per student at each job count, the speed-up, and whether the two CSVs are byte for byte the same.
Usage: python benchmarks/grading.py [--students 30] [--jobs 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorakit import grading  # noqa: E402
from tests.helpers.grading_course import ASSIGNMENT, NOTEBOOK, RIGHT, WRONG, make_course, student_notebook  # noqa: E402

SECRET = "benchmark-course-secret"


def write_class(course: Path, folder: Path, students: int) -> None:
    """`students` submissions cycling through right, wrong, half-right and blank answers."""
    kinds = [RIGHT, WRONG, {"tiny-scale": RIGHT["tiny-scale"]}, None]
    for index in range(students):
        answers = kinds[index % len(kinds)]
        notebook = student_notebook(course, answers) if answers is not None else student_notebook(course)
        (folder / f"student{index:03d}").mkdir(parents=True)
        nbformat.write(notebook, folder / f"student{index:03d}" / NOTEBOOK)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorakit-grading-bench-") as tmp:
        root = Path(tmp)
        course = make_course(root / "course", Path(__file__).resolve().parents[1])
        write_class(course, root / "class", args.students)
        write_class(course, root / "warm-up", 1)  # computes and caches the reference run, warms the file cache
        grading.grade_class(course, ASSIGNMENT, root / "warm-up", None, timeout=30, secret=SECRET, jobs=1)
        seconds = {}
        for jobs in args.jobs:
            start = time.perf_counter()
            grading.grade_class(course, ASSIGNMENT, root / "class", root / f"jobs{jobs}.csv", timeout=30,
                                secret=SECRET, jobs=jobs)
            seconds[jobs] = time.perf_counter() - start
            print(f"--jobs {jobs}: {seconds[jobs]:.1f} s for {args.students} students, "
                  f"{seconds[jobs] / args.students:.2f} s per student", flush=True)
        first, *rest = args.jobs
        for jobs in rest:
            same = (root / f"jobs{first}.csv").read_bytes() == (root / f"jobs{jobs}.csv").read_bytes()
            print(f"speed-up at --jobs {jobs}: {seconds[first] / seconds[jobs]:.2f}× over --jobs {first}; "
                  f"CSV byte for byte the same: {same}")


if __name__ == "__main__":
    main()
