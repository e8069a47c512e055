"""A class graded in slices on several machines (a Slurm job array, a Kubernetes Indexed Job), and the slices' CSVs
merged into the one an unsharded `lorakit grade` writes, byte for byte.

Slice K of N holds the students whose position in the class, sorted by folder name (student id), is K modulo N.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .report import COLUMNS, FORMULA_START, Grade, cell, write_csv
from .untrusted import printable

SHARD_TEXT = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")
ALLOWED_SHARDS = "K/N with whole numbers 0 ≤ K < N, e.g. 0/8 up to 7/8"
Folder = TypeVar("Folder")


@dataclass(frozen=True)
class Shard:
    """Slice `index` of `count` slices of a class."""

    index: int
    count: int

    def __post_init__(self) -> None:
        valid = all(isinstance(n, int) and not isinstance(n, bool) for n in (self.index, self.count))
        if not valid or not 0 <= self.index < self.count:
            raise ValueError(f"shard must be {ALLOWED_SHARDS}, got {self.index!r}/{self.count!r}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """The Shard that `text` ("K/N") names; ValueError saying what is allowed otherwise."""
    found = SHARD_TEXT.fullmatch(text.strip())
    if found is None or not int(found[1]) < int(found[2]):
        raise ValueError(f"expected {ALLOWED_SHARDS}, got {text!r}")
    return Shard(int(found[1]), int(found[2]))


def select(folders: dict[str, Folder], shard: Shard | None) -> dict[str, Folder]:
    """The part of `folders` (folder name → anything) in `shard`, in name order; all of them when `shard` is None."""
    if shard is not None and not isinstance(shard, Shard):
        raise ValueError(f"shard must be a Shard ({ALLOWED_SHARDS}) or None, got {shard!r}")
    names = sorted(folders)
    chosen = names if shard is None else names[shard.index::shard.count]
    return {name: folders[name] for name in chosen}


def folder_name(student_cell: str) -> str:
    """The folder name a CSV `student` cell was written from: `report.cell` put a quote before a name starting with
    a formula character; a student id never starts with one, so ids come back unchanged. (A folder whose own name
    starts with a quote and a formula character, no student id, comes back without its quote: its "error" row may
    then sit elsewhere than in an unsharded run's CSV.)"""
    unquoted = student_cell[1:]
    return unquoted if student_cell.startswith("'") and unquoted.startswith(FORMULA_START) else student_cell


def read_number(text: str, path: Path, line: int, column: str) -> float:
    """The number `report.write_csv` wrote as `text` (a negative one behind its quote); ValueError otherwise."""
    try:
        value = float(text.removeprefix("'"))
    except ValueError:
        value = None
    if value is None or cell(value) != text:
        raise ValueError(f"{path}: line {line}: {printable(column)} is {text!r}, not a number as lorakit grade "
                         "writes it")
    return value


def read_grades(path: Path) -> tuple[list[str], list[Grade]]:
    """(header, one Grade per row) of a CSV that `lorakit grade` wrote. Text is kept exactly as written, already
    neutralised: `report.cell` leaves its own output unchanged, so writing these Grades again gives the same bytes."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0][:len(COLUMNS)] != COLUMNS:
        raise ValueError(f"{path}: not a CSV written by lorakit grade (its header does not start with "
                         f"{','.join(COLUMNS)})")
    header, exercises = rows[0], rows[0][len(COLUMNS):]
    grades = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} cells, its header {len(header)}")
        values = dict(zip(header, row))
        scores = {exercise: read_number(text, path, line, exercise) if text else None
                  for exercise, text in zip(exercises, row[len(COLUMNS):])}
        grades.append(Grade(values["student"], values["assignment"],
                            *(read_number(values[c], path, line, c) for c in ("score", "max_score")),
                            values["status"], values["detail"], scores, values["timestamp"],
                            *(read_number(values[c], path, line, c) for c in ("seconds_late", "late_penalty")),
                            values["seed_fingerprint"]))
    return header, grades


def merge_csvs(paths: list[Path], out: Path, assignment: str | None = None) -> list[Grade]:
    """Merge the CSVs of a class's shards into `out`, ordered as one unsharded run orders its rows (by folder name)
    and written by `report.write_csv`, so `out` is byte for byte that run's CSV. Refuses (ValueError, one line naming
    the file) a header unlike the first file's, a student in two rows, rows of another `assignment`, or a
    seed_fingerprint unlike the first one found (another secret: other hidden inputs). Rows with no fingerprint (a
    folder that is no student id, never graded) are merged as they are."""
    if not paths:
        raise ValueError("--merge needs at least one shard CSV")
    first_header: list[str] | None = None
    seen: dict[str, Path] = {}
    fingerprint: tuple[str, Path] | None = None
    merged: list[Grade] = []
    for path in map(Path, paths):
        header, grades = read_grades(path)
        if first_header is None:
            first_header = header
        elif header != first_header:
            raise ValueError(f"{path}: its header ({printable(','.join(header))}) differs from {paths[0]}'s "
                             f"({printable(','.join(first_header))}): not the same assignment's notebooks")
        for grade in grades:
            student = printable(grade.student)  # as the CSV is read back: escaped in any message
            if grade.student in seen:
                raise ValueError(f"{path}: student {student} is also in {seen[grade.student]}: the shards "
                                 "overlap (give each shard's CSV once, from one --shard K/N split)")
            seen[grade.student] = path
            if assignment is not None and grade.assignment != assignment:
                raise ValueError(f"{path}: student {student} was graded on {printable(grade.assignment)}, not "
                                 f"{assignment}")
            if not grade.seed_fingerprint:
                continue
            fingerprint = fingerprint or (grade.seed_fingerprint, path)
            if grade.seed_fingerprint != fingerprint[0]:
                raise ValueError(f"{path}: seed_fingerprint {printable(grade.seed_fingerprint)} differs from "
                                 f"{fingerprint[1]}'s {fingerprint[0]}: graded with another secret, so on other "
                                 "hidden inputs")
        merged += grades
    merged.sort(key=lambda grade: folder_name(grade.student))
    write_csv(out, merged, first_header[len(COLUMNS):])
    return merged
