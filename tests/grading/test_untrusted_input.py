"""Hostile files, names and bytes meet lorakit's grading helpers directly (no sandbox, no class: fast).

The end-to-end versions, a class graded in the sandbox, are in test_hostile_class.py.
"""

from __future__ import annotations

import csv
import os

import nbformat
import pytest

from lorakit.grading import submissions
from lorakit.grading.assemble import assemble
from lorakit.grading.feedback import feedback_notebook, redact_hidden_tests, write_html
from lorakit.grading.report import FORMULA_START, Grade, write_csv
from lorakit.grading.untrusted import id_problem, printable
from tests.helpers.grading_course import ASSIGNMENT, NOTEBOOK


def notebook_file(path, source="x = 1"):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def test_a_linked_notebook_assignment_or_student_folder_is_refused_by_name(tmp_path):
    course = tmp_path / "course"
    secret = notebook_file(course / "source" / ASSIGNMENT / NOTEBOOK, "ANSWER = 42")
    (course / "submitted" / "alice" / ASSIGNMENT).mkdir(parents=True)
    (course / "submitted" / "alice" / ASSIGNMENT / NOTEBOOK).symlink_to(f"../../../source/{ASSIGNMENT}/{NOTEBOOK}")
    (course / "submitted" / "bob").mkdir()
    (course / "submitted" / "bob" / ASSIGNMENT).symlink_to(f"../../source/{ASSIGNMENT}")
    (course / "submitted" / "carol").symlink_to("../source")
    (course / "submitted" / "dave" / ASSIGNMENT / "work").mkdir(parents=True)
    (course / "submitted" / "dave" / ASSIGNMENT / "work" / "final").symlink_to(f"../../../../source/{ASSIGNMENT}")
    notebook_file(course / "submitted" / ".ipynb_checkpoints" / ASSIGNMENT / NOTEBOOK)

    folders = submissions.student_folders(course, ASSIGNMENT, None)
    assert sorted(folders) == ["alice", "bob", "carol", "dave"]  # hidden folders are not students
    assert folders["bob"][1] == f"bob/{ASSIGNMENT} is a symbolic link; links are not graded"
    assert folders["carol"][1] == "carol is a symbolic link; links are not graded"
    assert folders["alice"][1] == folders["dave"][1] == ""
    assert submissions.find_notebook(folders["alice"][0], NOTEBOOK, ASSIGNMENT) == (
        None, f"{NOTEBOOK} is a symbolic link; links are not graded")
    assert submissions.find_notebook(folders["dave"][0], NOTEBOOK, ASSIGNMENT) == (
        None, f"no notebook named {NOTEBOOK}; the folder has no notebook")  # a linked folder is never entered
    assert submissions.read_notebook(course / "submitted/alice" / ASSIGNMENT / NOTEBOOK)[0] is None
    assert submissions.read_notebook(secret)[0].cells[0].source == "ANSWER = 42"

    hand_ins = tmp_path / "hand-ins"
    hand_ins.mkdir()
    (hand_ins / "erin").symlink_to(course / "source")
    assert submissions.student_folders(course, ASSIGNMENT, hand_ins) == {
        "erin": (hand_ins / "erin", "erin is a symbolic link; links are not graded")}


def test_every_read_of_a_submitted_file_is_capped_and_regular(tmp_path, monkeypatch):
    big = notebook_file(tmp_path / "big" / NOTEBOOK, "x = '" + "a" * 5000 + "'")
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", 4096)
    assert submissions.read_notebook(big)[1].startswith(f"unreadable notebook {NOTEBOOK}: not a regular file, or over")
    fifo = tmp_path / "fifo" / NOTEBOOK
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # a named pipe would block a plain read forever
    assert submissions.find_notebook(fifo.parent, NOTEBOOK, ASSIGNMENT) == (fifo, "")
    assert submissions.read_notebook(fifo)[0] is None


@pytest.mark.parametrize("name", ["alice", "s1234567", "zoe.oneil@uni.edu", "A-b_c.d", "x" * 64])
def test_plain_ids_are_students(name):
    assert id_problem(name) == ""


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "a\"b", "o'neil", "two words", "-rf", ".hidden",
                                  "=1+1", "a+b", "glob*", "x" * 65, "Zoë", "tab\there", "esc\x1b[31m", "bidi\u202e"])
def test_unsafe_ids_are_refused_with_one_escaped_line(name):
    problem = id_problem(name)
    assert problem.startswith("folder name '") and "1 to 64 ASCII letters, digits, _ . @ or -" in problem
    assert problem.isprintable()


def test_printable_escapes_controls_bidi_and_line_breaks():
    assert printable("ok\x1b]0;owned\x07\r\nnext\x85\u202e\x7f") == "ok\\x1b]0;owned\\x07\\r\\nnext\\x85\\u202e\\x7f"
    assert printable("Zoë O'Neil <b>") == "Zoë O'Neil <b>"


def test_csv_cells_are_never_formulas(tmp_path):
    hostile = ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"]
    grades = [Grade(name, ASSIGNMENT, 0.0, 5.0, "error", detail, {"=cmd": None}) for name, detail in
              zip(hostile, reversed(hostile))]
    write_csv(tmp_path / "grades.csv", grades, ["=cmd"])
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_START)]
    assert rows[0][-1] == "'=cmd" and [row[0] for row in rows[1:]] == ["'" + name for name in hostile]


def test_redacting_a_hidden_test_cell_with_output_for_nbgrader_feedback():
    cell = nbformat.v4.new_code_cell("check()\n### BEGIN HIDDEN TESTS\ncollect('x', f)\n### END HIDDEN TESTS")
    cell.outputs = [nbformat.v4.new_output("stream", text="hello\n"),
                    nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["collect('x', f)"])]
    redact_hidden_tests(cell)  # raised UnboundLocalError ('total') for any output
    assert cell.source == "check()"
    assert cell.outputs[1].traceback == ["E: v", "(no traceback: this cell runs hidden tests)"]


def hostile_executed() -> nbformat.NotebookNode:
    """What a student's sandbox could hand back as the executed notebook: live HTML in every place nbconvert would
    render it (each payload sets window.pwned and the page title)."""
    script = "window.pwned=1;document.title='PWNED'"
    markdown = nbformat.v4.new_markdown_cell(
        f"# Notes\n<script>{script}</script>\n<img src=x onerror=\"{script}\">\n<svg onload=\"{script}\"></svg>\n"
        f"[click](javascript:{script})\n<iframe srcdoc=\"<script>parent.{script}</script>\"></iframe>")
    markdown.attachments = {"a.png": {"text/html": f"<script>{script}</script>"}}
    code = nbformat.v4.new_code_cell("plot()", execution_count=1)
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                               metadata={"image/png": {"width": "1 onerror=window.pwned=3;document.title=3"}}),
        nbformat.v4.new_output("display_data", data={"image/png": 'x" onerror="window.pwned=4'}),
        nbformat.v4.new_output("execute_result", data={"text/html": f"<script>{script}</script>",
                                                       "application/javascript": script}, execution_count=1),
    ]
    raw = nbformat.v4.new_raw_cell(f"<script>{script}</script>")
    notebook = nbformat.v4.new_notebook(cells=[markdown, code, raw])
    code["execution_count"] = f"<script>{script}</script>"  # not valid nbformat: a forged file needn't be
    return notebook


def test_feedback_html_keeps_no_student_script_or_attribute(tmp_path):
    from bs4 import BeautifulSoup

    page = write_html(feedback_notebook(hostile_executed(), {}, {}), tmp_path / "feedback.html")
    soup = BeautifulSoup(page.read_text(), "html.parser")
    assert not [s for s in soup.find_all("script") if "pwned" in s.text]
    assert not [tag.name for tag in soup.find_all(True) if any(a.startswith("on") for a in tag.attrs)]
    assert not soup.find_all(["iframe", "svg"]) and not soup.select('a[href^="javascript"]')
    images = soup.find_all("img")
    assert [(img["src"], set(img.attrs)) for img in images] == [("data:image/png;base64,iVBORw0KGgo=", {"src", "alt"})]
    assert "<script>window.pwned=1" in soup.text  # the student's HTML shows as inert text
    assert soup.find("h1").text.startswith("Notes") and "<h1" not in soup.text  # markdown itself still renders


def test_a_blank_notebook_is_empty_but_one_written_answer_or_extra_cell_is_not(tmp_path):
    from tests.helpers import REPO
    from tests.helpers.grading_course import RIGHT, make_course, student_notebook

    course = make_course(tmp_path / "course", REPO)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert assemble(source, release, student_notebook(course)).empty
    assert not assemble(source, release, student_notebook(course, {"tiny-count": RIGHT["tiny-count"]})).empty
    assert not assemble(source, release, student_notebook(course, extra=("print(1)",))).empty


def test_a_notebook_saved_with_new_cell_ids_or_none_keeps_its_answers_and_adds_no_lesson_copy(tmp_path):
    """Jupyter front ends that regenerate cell ids, or nbformat 4.4 (no ids at all): an honest student's notebook
    assembles exactly as the one saved with the release's ids (answers found by grade_id, lessons by their text)."""
    from tests.helpers import REPO
    from tests.helpers.grading_course import RIGHT, make_course, student_notebook

    course = make_course(tmp_path / "course", REPO)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    saved = student_notebook(course, RIGHT, extra=("print('my own check')",))
    expected = assemble(source, release, saved)
    for change in ("regenerated", "none"):
        student = nbformat.from_dict(saved)
        for index, cell in enumerate(student.cells):
            if change == "none":
                cell.pop("id", None)
            else:
                cell["id"] = f"fresh-{index}"
        assembled = assemble(source, release, student)
        assert [c.source for c in assembled.notebook.cells] == [c.source for c in expected.notebook.cells], change
        assert assembled.from_student == expected.from_student and not assembled.empty
        assert sum("my own check" in c.source for c in assembled.notebook.cells) == 1


def test_a_students_run_stops_at_its_budget_however_many_cells_it_adds():
    """Each cell stays under the per-cell timeout, but together they pass the whole run's budget: stopped."""
    from lorakit.grading import sandbox
    from lorakit.grading.classroom import student_budget
    from lorakit.grading.runner import run_notebook

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(3)")
                                               for _ in range(6)],
                                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    run = run_notebook(notebook, timeout=5, seed="0", mode="warn", limits=sandbox.Limits(), budget_s=8)
    assert run.problem == "the notebook ran past its budget of 8 s and was stopped"
    assert student_budget(10.0, timeout=20) == 90 and student_budget(1.0, timeout=60) == 120  # 3 × run + 60, ≥ 2 timeouts


def test_only_plain_base64_images_under_safe_names_are_kept_from_a_pasted_attachment():
    from lorakit.grading.untrusted import MAX_ATTACHMENT_BYTES, image_attachments, without_attachment_links

    png = "iVBORw0KGgo="
    big = "A" * (4 * (MAX_ATTACHMENT_BYTES // 3 + 3))
    cell = {"attachments": {"a.png": {"image/png": png}, "b.jpg": {"image/jpeg": png, "text/html": "<b>"},
                            "c.svg": {"image/svg+xml": "<svg onload=alert(1)>"}, "../d.png": {"image/png": png},
                            "e.png": {"image/png": "not base64!"}, "f.png": {"image/png": big}, "g.png": "x"}}
    assert image_attachments(cell) == {"a.png": {"image/png": png}, "b.jpg": {"image/jpeg": png}}
    assert image_attachments({"attachments": ["a.png"]}) == {} and image_attachments("cell") == {}
    assert without_attachment_links("![c](attachment:c.png)") == "![c](attachment-not-shown:c.png)"


def test_a_notebook_whose_nbgrader_metadata_was_stripped_assembles_as_the_intact_one(tmp_path):
    """A tool that strips cell metadata (e.g. nbstripout --extra-keys) leaves the answers in the stubs' places and the
    locked cells' text unchanged: same run, no tampering reported, answers found."""
    from tests.helpers import REPO
    from tests.helpers.grading_course import RIGHT, make_course, student_notebook

    course = make_course(tmp_path / "course", REPO)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    intact = student_notebook(course, RIGHT, extra=("print('my own check')",))
    stripped = nbformat.from_dict(intact)
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    expected, assembled = assemble(source, release, intact), assemble(source, release, stripped)
    assert [c.source for c in assembled.notebook.cells] == [c.source for c in expected.notebook.cells]
    assert assembled.tampering == [] and assembled.unanswered == expected.unanswered == []
    edited = nbformat.from_dict(stripped)
    locked = {c.id for c in release.cells if c.metadata.get("nbgrader", {}).get("locked")}
    test_cell = next(c for c in edited.cells if c.id in locked)
    test_cell.source += "\nprint('changed')"
    assert assemble(source, release, edited).tampering  # an edited locked cell is still found out


def test_a_cell_above_the_first_one_runs_once_at_the_top(tmp_path):
    """A student who adds a cell above everything (e.g. their imports) gets it run once, first, not after every
    instructor cell (it was copied 29 times into chapter 7)."""
    from tests.helpers import REPO
    from tests.helpers.grading_course import RIGHT, make_course, student_notebook

    course = make_course(tmp_path / "course", REPO)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    student = student_notebook(course, RIGHT)
    without = assemble(source, release, student)
    student.cells.insert(0, nbformat.v4.new_code_cell("import math  # my imports"))
    built = assemble(source, release, student)
    sources = [c.source for c in built.notebook.cells]
    assert sources.count("import math  # my imports") == 1 and sources[0] == "import math  # my imports"
    assert sources[1:] == [c.source for c in without.notebook.cells] and 0 in built.from_student
