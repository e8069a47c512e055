"""Build the notebook the grader runs: the instructor's source with the student's answers put in.

Every cell of the source is kept in order, except demo cells marked `grading=skip` (dropped). Solution cells come
from the student (by grade_id; a deleted one is the release's stub again), written answers (manually graded
markdown cells) too, so the instructor's model answer is never run, shown or handed back. Every other cell (test
cells, setup code, markdown) comes from the source, whatever the student did to it. The student's own extra cells
are kept after the cell they followed, stripped of any grading metadata. The student's edits to locked cells are
reported as tampering.
A student cell is one of the course's own when its id or, failing that, its text is a source or release cell's:
a notebook saved by a tool that regenerates cell ids (or by nbformat < 4.5, which has none) loses no answer and
gains no "extra" copy of the lesson.
A notebook is empty when no solution cell differs from the release's stub and no extra cell holds code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nbformat

from .untrusted import image_attachments


def grade_id(cell: Any) -> str | None:
    nbgrader = cell.get("metadata", {}).get("nbgrader")
    value = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return value if isinstance(value, str) else None


def _with_images(cell: Any, given: Any) -> Any:
    """`cell` carrying the image attachments of the student's cell `given` (none: left without the key)."""
    images = image_attachments(given)
    if images:
        cell.attachments = images
    return cell


def source_text(cell: Any) -> str:
    """A cell's source as a str ('' when a hand-edited file holds anything else)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else ""


def is_skipped(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("lorakit")
    return isinstance(meta, dict) and meta.get("grading") == "skip"


@dataclass
class Assembled:
    """The notebook to run; test cell grade_id → its index; what the student changed in locked cells; emptiness;
    the indices of the cells whose source is the student's (answers and extra cells); the answer cells left as
    released (formgrader's "No response.")."""

    notebook: Any
    test_cells: dict[str, int] = field(default_factory=dict)
    tampering: list[str] = field(default_factory=list)
    empty: bool = False
    from_student: set[int] = field(default_factory=set)
    unanswered: list[str] = field(default_factory=list)


def tampering(student_cells: list[Any], release_cells: list[Any]) -> list[str]:
    """'edited/deleted locked cell <id>' for each locked release cell the student changed (nbgrader checksums)."""
    from nbgrader.utils import compute_checksum, is_locked

    locked = {grade_id(cell): cell for cell in release_cells if grade_id(cell) and is_locked(cell)}
    found: dict[str, str] = {}
    for cell in student_cells:
        if grade_id(cell) in locked:
            try:
                found[grade_id(cell)] = compute_checksum(cell)
            except (KeyError, AttributeError, TypeError, ValueError):  # metadata edited beyond checksumming
                found[grade_id(cell)] = ""
    unlabelled = {source_text(cell).strip() for cell in student_cells if grade_id(cell) is None}
    return [f"{'edited' if gid in found else 'deleted'} locked cell {gid!r}" for gid, cell in locked.items()
            if found.get(gid) != compute_checksum(cell)
            and not (gid not in found and source_text(cell).strip() in unlabelled)]  # its metadata stripped only


def assemble(source: Any, release: Any, student: Any) -> Assembled:
    """The run notebook for `student` (a NotebookNode) from the trusted `source` and its `release`."""
    from nbgrader.utils import is_grade, is_solution  # on trusted cells only: a student's metadata may be anything

    stubs = {grade_id(cell): cell for cell in release.cells if grade_id(cell)}
    known_ids = {cell.get("id") for cell in [*source.cells, *release.cells]} - {None}
    known_texts = {source_text(cell).strip(): cell.get("id") for cell in [*release.cells, *source.cells]
                   if cell.get("id") and source_text(cell).strip()}
    known_grade_ids = {grade_id(cell) for cell in source.cells} - {None}
    answer_ids = {cell.get("id"): grade_id(cell) for cell in release.cells
                  if grade_id(cell) in known_grade_ids and is_solution(cell) and cell.get("id")}
    answers: dict[str, Any] = {}
    extras: dict[str | None, list[Any]] = {}
    anchor: str | None = None
    for cell in student.cells:
        gid = grade_id(cell)
        if gid is None and cell.get("id") in answer_ids:  # an answer cell whose nbgrader metadata was stripped
            gid = answer_ids[cell.get("id")]
        if gid in known_grade_ids:
            if gid not in answers:
                answers[gid] = cell
            anchor = gid
        elif cell.get("id") in known_ids:
            anchor = cell.get("id")
        elif source_text(cell).strip() in known_texts:  # the course's own cell under a regenerated (or no) id
            anchor = known_texts[source_text(cell).strip()]
        elif cell.get("cell_type") in ("code", "markdown"):
            extra = nbformat.v4.new_code_cell(source_text(cell)) if cell.get("cell_type") == "code" \
                else _with_images(nbformat.v4.new_markdown_cell(source_text(cell)), cell)
            extras.setdefault(anchor, []).append(extra)
    # an answer left without metadata or id (stripped and ids regenerated, or its stub deleted): the student's first
    # extra cell in the stub's place, right after the cell the release has before it, when it is of the stub's kind
    for index, stub in enumerate(release.cells[1:], 1):
        gid, before = grade_id(stub), release.cells[index - 1]
        waiting = extras.get(grade_id(before) or before.get("id"), [])
        if gid in known_grade_ids and gid not in answers and is_solution(stub) and waiting \
                and waiting[0].cell_type == stub.cell_type:
            answers[gid] = waiting.pop(0)
    out = nbformat.v4.new_notebook(metadata={"kernelspec": source.metadata.get("kernelspec", {}),
                                             "language_info": {"name": "python"}})
    cells = list(extras.get(None, []))
    result = Assembled(out, from_student=set(range(len(cells))))
    for cell in source.cells:
        gid = grade_id(cell)
        if not is_skipped(cell):
            if gid and is_solution(cell):  # an answer: code, or a written (manually graded) answer
                chosen = answers.get(gid, stubs.get(gid, cell))
                trusted = nbformat.from_dict(cell)
                trusted.source = source_text(chosen)
                if trusted.cell_type == "code":
                    trusted.outputs = []
                else:  # a written answer's pasted images stay with it
                    _with_images(trusted, chosen)
                result.from_student.add(len(cells))
                cells.append(trusted)
            else:
                cells.append(nbformat.from_dict(cell))
            if gid and is_grade(cell) and not is_solution(cell):
                result.test_cells[gid] = len(cells) - 1
        following = (extras.get(gid, []) if gid else []) + (extras.get(cell.get("id"), []) if cell.get("id") != gid else [])
        result.from_student.update(range(len(cells), len(cells) + len(following)))
        cells += following
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index:03d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.cells = cells
    result.tampering = tampering(student.cells, release.cells)
    written = [gid for gid, cell in answers.items() if gid in stubs and is_solution(stubs[gid])
               and source_text(cell).strip() not in ("", source_text(stubs[gid]).strip())]
    extra_code = [cell for cells in extras.values() for cell in cells
                  if cell.cell_type == "code" and cell.source.strip()]
    result.empty = not written and not extra_code
    result.unanswered = [gid for gid, stub in stubs.items() if is_solution(stub) and gid not in written]
    return result
