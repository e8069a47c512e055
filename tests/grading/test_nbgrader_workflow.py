"""nbgrader stays the instructor's home after `lorakit grade`: formgrader opens every graded notebook, the gradebook
holds the submissions as nbgrader's autograde leaves them (timestamps, late penalties), generate_feedback and
release_feedback work, plain `nbgrader autograde` refuses, and a written answer reaches formgrader but the model
answer never reaches the student."""

import csv
import shutil
import subprocess
import sys
from datetime import datetime

import nbformat
import pytest

from lorakit import grading
from lorakit.grading import settings
from lorakit.grading.plain_nbgrader import REFUSAL
from lorakit.grading.submissions import read_stamp
from tests.helpers import REPO
from tests.helpers.grading_course import (
    ASSIGNMENT,
    MODEL_ANSWER,
    NOTEBOOK,
    RIGHT,
    SECRET,
    WRITTEN_ID,
    add_written_answer,
    make_course,
    require_sandbox,
    snapshot,
    student_notebook,
)
from tests.helpers.notebooks import readable_text

DUE = datetime(2026, 12, 1, 12, 0, 0)
ON_TIME, LATE = "2026-12-01 11:59:00.000000 UTC", "2026-12-01 14:00:00.000000 CET"  # 13:00 UTC: 3600 s late
HOSTILE_MARKDOWN = "<script>document.title='owned'</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)>"
WRITTEN = "Alpha scales the update, so a bigger alpha needs a smaller step. <b onmouseover=alert(1)>bold</b>"


def _answered(course, extra_markdown=""):
    notebook = student_notebook(course, RIGHT)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN_ID:
            cell.source = WRITTEN
    if extra_markdown:
        notebook.cells.append(nbformat.v4.new_markdown_cell(extra_markdown))
    return notebook


def _submit(course, student, notebook, timestamp=None):
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / NOTEBOOK)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    (folder / "submission_secret.txt").write_text(student.encode().hex().ljust(128, "0"))  # as nbgrader submit


def _api(course, tmp_path):
    from nbgrader.apps import NbGraderAPI

    config = settings.load_config(course)
    config.Exchange.root = str(tmp_path / "exchange")
    return NbGraderAPI(config=config)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class with a written answer, a due date and the 'zero' late penalty, graded by grade_class."""
    require_sandbox()
    from nbgrader.api import Gradebook

    base = tmp_path_factory.mktemp("workflow")
    course = make_course(base / "course", REPO)
    with open(course / "nbgrader_config.py", "a") as handle:
        handle.write("c.LateSubmissionPlugin.penalty_method = 'zero'\n")
    add_written_answer(course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
    _submit(course, "ontime", _answered(course, HOSTILE_MARKDOWN), ON_TIME)
    _submit(course, "late", _answered(course), LATE)
    _submit(course, "nostamp", _answered(course))  # e.g. zip-collected: no timestamp.txt
    _submit(course, "blank", student_notebook(course), ON_TIME)
    before = snapshot(course / "submitted")
    csv_path = base / "grades.csv"
    grades = {g.student: g for g in grading.grade_class(course, ASSIGNMENT, timeout=20, csv_path=csv_path,
                                                         secret=SECRET, feedback=True)}
    with open(csv_path, newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert snapshot(course / "submitted") == before
    return course, grades, rows


@pytest.mark.slow
@pytest.mark.sandbox
def test_formgrader_lists_and_opens_every_graded_submission(graded, tmp_path):
    course, grades, _ = graded
    api = _api(course, tmp_path)
    submissions = {s["student"]: s for s in api.get_submissions(ASSIGNMENT)}
    assert sorted(submissions) == ["blank", "late", "nostamp", "ontime"]
    assert all(s["autograded"] for s in submissions.values())  # no "needs autograding"
    assert api.get_autograded_students(ASSIGNMENT) == {"blank", "late", "nostamp", "ontime"}
    notebooks = api.get_student_notebook_submissions("ontime", ASSIGNMENT)
    assert [nb["name"] for nb in notebooks] == ["tiny"] and notebooks[0]["score"] == 5.0
    assert notebooks[0]["id"] is not None and notebooks[0]["needs_manual_grade"]  # the written answer
    assert len(api.get_notebook_submission_indices(ASSIGNMENT, "tiny")) == 4
    assert {s["student"] for s in api.get_notebook_submissions(ASSIGNMENT, "tiny")} == set(submissions)
    assert grades["ontime"].status == "needs-manual-grade" and grades["ontime"].score == 5.0


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_autograded_notebook_is_the_students_with_hidden_checks_cut(graded):
    course, _, _ = graded
    notebook = nbformat.read(course / "autograded/ontime" / ASSIGNMENT / NOTEBOOK, as_version=4)
    text = nbformat.writes(notebook)
    assert "HIDDEN TESTS" not in text and "collect(" not in text and MODEL_ANSWER not in text
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in notebook.cells
             if "grade_id" in c.metadata.get("nbgrader", {})}
    assert {"tiny-scale", "tiny-scale-tests", WRITTEN_ID, "tiny-count", "tiny-targets-tests"} <= set(cells)
    assert cells["tiny-scale"].source == RIGHT["tiny-scale"] and cells["tiny-scale-tests"].metadata.nbgrader.points == 2
    assert "visible tests passed" in cells["tiny-scale-tests"].outputs[0]["text"]
    assert WRITTEN.split()[0] in cells[WRITTEN_ID].source and cells[WRITTEN_ID].metadata.nbgrader.grade
    assert (course / "autograded/ontime" / ASSIGNMENT / "timestamp.txt").read_text() == ON_TIME
    blank = nbformat.read(course / "autograded/blank" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert any("raise NotImplementedError" in c.source for c in blank.cells)


@pytest.mark.slow
@pytest.mark.sandbox
def test_formgraders_page_shows_graded_cells_and_no_student_html(graded):
    """The page formgrader's SubmissionHandler renders (its HTMLExporter and 'formgrade' template, as configured)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    course, _, _ = graded
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": ASSIGNMENT, "notebook_id": "tiny", "submission_id": "x", "index": 0, "total": 4,
                 "base_url": "", "student": "ontime", "last_name": None, "first_name": None, "notebook_path": ""}
    html, _ = HTMLExporter(config=config).from_filename(
        str(course / "autograded/ontime" / ASSIGNMENT / NOTEBOOK), resources=resources)
    for grade_id in ("tiny-scale-tests", "tiny-count-tests", "tiny-targets-tests", WRITTEN_ID):
        assert f'id="{grade_id}"' in html  # a score box per graded cell
    assert 'id="tiny-scale-comment"' in html and f'id="{WRITTEN_ID}-comment"' in html
    for live in ("<script>document", 'href="javascript', "<img src=x", "<b onmouseover"):
        assert live not in html  # the student's markdown shows as text, never as live HTML
    assert "&lt;script&gt;document.title" in html and "a bigger alpha needs a smaller step" in html


@pytest.mark.slow
@pytest.mark.sandbox
def test_timestamps_and_late_penalties_in_gradebook_csv_and_export(graded, tmp_path):
    course, grades, rows = graded
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        late = gradebook.find_submission(ASSIGNMENT, "late")
        assert late.timestamp == datetime(2026, 12, 1, 13, 0) and late.total_seconds_late == 3600
        assert late.late_submission_penalty == 5.0 and late.score == 5.0
        ontime = gradebook.find_submission(ASSIGNMENT, "ontime")
        assert ontime.total_seconds_late == 0 and ontime.late_submission_penalty == 0.0
        assert gradebook.find_submission(ASSIGNMENT, "nostamp").timestamp is None
        assert gradebook.find_grade(WRITTEN_ID, "tiny", ASSIGNMENT, "ontime").needs_manual_grade
        for student, comment in (("blank", "No response."), ("ontime", None)):  # as nbgrader's autograde leaves them
            assert {gradebook.find_comment(cell, "tiny", ASSIGNMENT, student).auto_comment
                    for cell in ("tiny-scale", "tiny-count", "tiny-targets", WRITTEN_ID)} == {comment}
    assert list(rows["late"])[:9] == ["student", "assignment", "score", "max_score", "status", "detail", "timestamp",
                                      "seconds_late", "late_penalty"]
    assert (rows["late"]["timestamp"], rows["late"]["seconds_late"], rows["late"]["late_penalty"]) == (
        "2026-12-01T13:00:00", "3600.0", "5.0")
    assert (rows["ontime"]["late_penalty"], rows["ontime"]["max_score"]) == ("0.0", "6.0")
    exported = tmp_path / "export.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(exported)], cwd=course, check=True,
                   capture_output=True, timeout=300)
    with open(exported, newline="") as handle:
        export = {row["student_id"]: row for row in csv.DictReader(handle)}
    late_row = export["late"]
    assert [float(late_row[key]) for key in ("raw_score", "late_submission_penalty", "score")] == [5.0, 5.0, 0.0]
    assert export["late"]["timestamp"].startswith("2026-12-01 13:00:00")
    nostamp = rows["nostamp"]
    assert (nostamp["timestamp"], nostamp["late_penalty"]) == ("", "0.0")
    assert nostamp["detail"] == f"not graded automatically: {WRITTEN_ID}"


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_bad_timestamp_is_named_and_costs_nothing(graded, tmp_path):
    course, _, _ = graded
    folder = tmp_path / "hand-ins" / "badstamp"
    folder.mkdir(parents=True)
    nbformat.write(_answered(course), folder / NOTEBOOK)
    (folder / "timestamp.txt").write_text("../../../../etc/passwd")
    [grade] = grading.grade_class(course, ASSIGNMENT, tmp_path / "hand-ins", timeout=20, secret=SECRET)
    assert (grade.score, grade.timestamp, grade.late_penalty) == (5.0, "", 0.0)
    assert grade.detail.startswith("timestamp.txt holds no timestamp (expected e.g. ")
    assert "lateness not computed" in grade.detail and "passwd" not in grade.detail


@pytest.mark.slow
@pytest.mark.sandbox
def test_generate_and_release_feedback_work_and_hide_checks_and_model_answer(graded, tmp_path):
    course, _, _ = graded
    ours = readable_text(course / "feedback/ontime" / ASSIGNMENT / "tiny.html")
    assert MODEL_ANSWER not in ours and "a bigger alpha needs a smaller step" in ours
    api = _api(course, tmp_path)
    (tmp_path / "exchange").mkdir()
    result = api.generate_feedback(ASSIGNMENT, "late")
    assert result["success"], result.get("error")
    page = course / "feedback/late" / ASSIGNMENT / "tiny.html"
    text = readable_text(page)
    assert "HIDDEN TESTS" not in text and "collect(" not in text and MODEL_ANSWER not in text
    assert "a bigger alpha needs a smaller step" in text
    released = api.release_feedback(ASSIGNMENT, "late")
    assert released["success"], released.get("error")
    assert len(list((tmp_path / "exchange/lorakit/feedback").glob("*.html"))) == 1
    released = api.release_feedback(ASSIGNMENT, "ontime")  # lorakit's own --feedback pages are releasable too
    assert released["success"], released.get("error")
    assert len(list((tmp_path / "exchange/lorakit/feedback").glob("*.html"))) == 2


def _submitted_course(tmp_path):
    """A course folder with the course config and one submitted notebook: all plain autograde needs to start."""
    course = tmp_path / "course"
    folder = course / "submitted" / "alice" / ASSIGNMENT
    folder.mkdir(parents=True)
    shutil.copy(REPO / "notebooks/nbgrader_config.py", course)
    nbformat.write(nbformat.v4.new_notebook(), folder / NOTEBOOK)
    return course


def test_formgraders_autograde_button_gets_the_refusal(tmp_path):
    course = _submitted_course(tmp_path)
    result = _api(course, tmp_path).autograde(ASSIGNMENT, "alice")
    assert not result["success"] and result["error"].strip().splitlines()[-1] == f"SystemExit: {REFUSAL}"
    assert not (course / "autograded").exists()


@pytest.mark.slow
def test_plain_nbgrader_autograde_refuses_in_one_line(tmp_path):
    course = _submitted_course(tmp_path)
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"], cwd=course,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == REFUSAL, done.stderr[-2000:]
    assert "lorakit grade" in REFUSAL and not (course / "autograded").exists()


@pytest.mark.parametrize(("content", "problem"), [
    (b"2026-12-01 11:59:00 UTC", ""),
    (b"  \n", "timestamp.txt is empty"),
    (b"/etc/localtime", "timestamp.txt holds no timestamp"),
    (b"2026-13-45 99:00:00", "timestamp.txt holds no valid date and time"),
    (b"\xff\xfe", "timestamp.txt is not ASCII text"),
    (b"1" * 300, "timestamp.txt is not a regular file of at most 256 bytes"),
])
def test_timestamp_files_are_read_as_hostile_input(tmp_path, content, problem):
    (tmp_path / "timestamp.txt").write_bytes(content)
    stamp = read_stamp(tmp_path, ASSIGNMENT)
    assert stamp.problem.startswith(problem) and stamp.problem.endswith("; lateness not computed") == bool(problem)
    assert (stamp.timestamp is not None) == (content.startswith(b"2026-12-01") and not problem)


def test_a_linked_timestamp_or_a_bad_secret_is_not_read(tmp_path):
    (tmp_path / "elsewhere.txt").write_text("2026-12-01 11:59:00 UTC")
    (tmp_path / "student").mkdir()
    (tmp_path / "student/timestamp.txt").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "student/submission_secret.txt").write_text("<script>")
    stamp = read_stamp(tmp_path / "student", ASSIGNMENT)
    assert stamp.timestamp is None and stamp.secret == ""
    assert stamp.problem == ("timestamp.txt is not a regular file of at most 256 bytes; lateness not computed; "
                             "submission_secret.txt is not nbgrader's hexadecimal secret")


def test_the_course_feedback_preprocessor_redacts_a_hidden_test_cell_with_outputs():
    """nbgrader generate_feedback once crashed here (UnboundLocalError 'total') on any hidden-test cell with output."""
    from lorakit.grading.feedback import feedback_preprocessors

    redact = next(p for p in feedback_preprocessors() if p.__name__ == "RedactHiddenTests")()
    cell = nbformat.v4.new_code_cell("check(1)\n### BEGIN HIDDEN TESTS\ncollect('x', f)\n### END HIDDEN TESTS", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="x" * 200_000),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="no", traceback=["collect('x', f)"])])
    cell, _ = redact.preprocess_cell(cell, {}, 0)
    assert cell.source == "check(1)" and "collect(" not in nbformat.writes(nbformat.v4.new_notebook(cells=[cell]))
    assert cell.outputs[0]["text"].endswith("[output cut: too long]\n")


def test_the_untouched_release_runs_top_to_bottom(tmp_path):
    """A learner's Run All before answering anything: no cell raises, and each visible-tests cell says in one line
    that its exercise is not answered yet (the stub's NotImplementedError, turned into a line by self_check)."""
    from nbclient import NotebookClient

    from lorakit.authoring.build import KERNELSPEC

    course = make_course(tmp_path / "course", REPO)
    notebook = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if "time.sleep(120)" not in cell.source]  # the fixture's slow demo
    NotebookClient(notebook, timeout=120, kernel_name=KERNELSPEC["name"],
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell error
    visible = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")
               and cell.cell_type == "code"]
    lines = ["".join(out.get("text", "") for out in cell.outputs).strip() for cell in visible]
    assert len(lines) == 3 and all(line.count("\n") == 0 and "not answered yet" in line for line in lines), lines
