"""A class of hostile submissions graded once, end to end, by `lorakit grade --feedback` in the sandbox.

Links (relative ones that stay inside nbgrader's layout), folder names that are no student id, escape sequences on
stderr and live HTML in markdown: each is refused or made inert, and the honest students beside them are graded.
Skipped without bubblewrap unless LORAKIT_REQUIRE_SANDBOX is set.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3

import nbformat
import pytest
from bs4 import BeautifulSoup

from lorakit.grading.report import FORMULA_START
from tests.helpers import REPO
from tests.helpers.grading_course import (
    ASSIGNMENT,
    MAX_SCORE,
    NOTEBOOK,
    RIGHT,
    SECRET,
    make_course,
    require_sandbox,
    student_notebook,
)
from tests.helpers.notebooks import readable_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]  # grades a class in the sandbox

LINKED = {  # student → (path under submitted/<student>, relative link target): each reaches the instructor's source
    "link_notebook": (f"{ASSIGNMENT}/{NOTEBOOK}", f"../../../source/{ASSIGNMENT}/{NOTEBOOK}"),
    "link_assignment": (ASSIGNMENT, f"../../source/{ASSIGNMENT}"),
    "link_student": ("", "../source"),
    "link_nested": (f"{ASSIGNMENT}/work", f"../../../source/{ASSIGNMENT}"),
}
REFUSED = ["=1+1", "<img src=x onerror=alert(1)>", "Zoë"]  # printable: a CSV row, nothing in the gradebook
UNPRINTABLE = "evil\x1b]0;owned\x07\x1b[2J"  # on the terminal only, escaped
SCRIPT = "window.pwned=1;document.title='PWNED'"
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"


def hostile_html(course) -> nbformat.NotebookNode:
    notebook = student_notebook(course, RIGHT, ("from IPython.display import display\n"
                                                "display({'image/png': 'iVBORw0KGgo=', 'text/plain': 'fig'}, raw=True,"
                                                " metadata={'image/png': {'width': '1 onerror=window.pwned=3'}})",))
    notebook.cells.append(nbformat.v4.new_markdown_cell(f"<script>{SCRIPT}</script><img src=x onerror=\"{SCRIPT}\">"))
    return notebook


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def pasted_image(course):
    """An honest notebook with a picture pasted into a markdown cell (Jupyter stores it as an attachment), and one
    attachment that is HTML pretending to be an image."""
    notebook = student_notebook(course, RIGHT)
    cell = nbformat.v4.new_markdown_cell("My loss curve: ![curve](attachment:curve.png) ![x](attachment:x.png)")
    cell.attachments = {"curve.png": {"image/png": PNG}, "x.png": {"text/html": "<script>window.pwned=1</script>"}}
    notebook.cells.insert(3, cell)
    return notebook


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """(course, CSV rows by student, what the CLI printed)."""
    require_sandbox()
    from lorakit.cli import main

    base = tmp_path_factory.mktemp("hostile")
    course = make_course(base / "course", REPO)
    submitted = course / "submitted"
    notebooks = {"honest": student_notebook(course, RIGHT), "blank": student_notebook(course),
                 "hostile_html": hostile_html(course),
                 "stderr_escapes": student_notebook(course, {**RIGHT, "tiny-targets": (
                     f"import os, signal\nos.write(2, {ESCAPES!r}.encode())\nos.kill(os.getppid(), signal.SIGKILL)")}),
                 "pasted_image": pasted_image(course),
                 **{name: student_notebook(course, RIGHT) for name in [*REFUSED, UNPRINTABLE, ".hidden"]}}
    for student, notebook in notebooks.items():
        (submitted / student / ASSIGNMENT).mkdir(parents=True)
        nbformat.write(notebook, submitted / student / ASSIGNMENT / NOTEBOOK)
    for student, (where, target) in LINKED.items():
        (submitted / student / where).parent.mkdir(parents=True, exist_ok=True)
        (submitted / student / where).symlink_to(target)
    (base / "secret").write_text(SECRET)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["grade", str(course), ASSIGNMENT, "--timeout", "20", "--feedback", "--secret-file",
                     str(base / "secret")]) == 0
    with open(course / f"grades_{ASSIGNMENT}.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return course, rows, printed.getvalue()


def outcome(row):
    return float(row["score"]), float(row["max_score"]), row["status"]


def test_a_linked_notebook_or_folder_scores_nothing_and_says_why(hostile_class):
    course, rows, _ = hostile_class
    assert outcome(rows["honest"]) == (5.0, MAX_SCORE, "ok")
    for student in ["link_notebook", "link_assignment", "link_student"]:
        assert outcome(rows[student]) == (0.0, MAX_SCORE, "error"), rows[student]
        assert rows[student]["detail"].endswith("is a symbolic link; links are not graded")
        assert not (course / "feedback" / student).exists()
    assert rows["link_student"]["detail"] == "link_student is a symbolic link; links are not graded"
    assert outcome(rows["link_nested"]) == (0.0, MAX_SCORE, "error")  # a linked folder is never entered
    for page in (course / "feedback").rglob("*.html"):
        assert "BEGIN SOLUTION" not in page.read_text()


def test_refused_ids_are_reported_not_recorded_and_the_rest_is_graded(hostile_class):
    course, rows, printed = hostile_class
    assert {"'=1+1", "<img src=x onerror=alert(1)>", "Zoë"} <= set(rows)  # '=1+1: neutralised for spreadsheets
    assert rows["'=1+1"]["detail"].startswith("folder name '=1+1' is not a valid student id (1 to 64 ASCII")
    assert outcome(rows["<img src=x onerror=alert(1)>"]) == (0.0, MAX_SCORE, "error")
    assert not any("owned" in student for student in rows) and ".hidden" not in rows
    lines = printed.splitlines()
    assert [line for line in lines if line.startswith("evil\\x1b]0;owned\\x07\\x1b[2J ")]  # escaped, one line
    assert not [line for line in lines if ".hidden" in line]
    with sqlite3.connect(course / "gradebook.db") as db:
        students = {row[0] for row in db.execute("SELECT id FROM student")}
    assert students == {"honest", "blank", "hostile_html", "stderr_escapes", "pasted_image", *LINKED}
    assert not [p.name for p in (course / "feedback").iterdir() if p.name not in students]


def test_no_csv_cell_is_a_formula(hostile_class):
    course, *_ = hostile_class
    with open(course / f"grades_{ASSIGNMENT}.csv", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_START)]
    assert "'=1+1" in cells


def test_student_stderr_reaches_the_terminal_escaped(hostile_class):
    _, rows, printed = hostile_class
    assert "\x1b" not in printed and "\x07" not in printed and "\x9b" not in printed
    row = rows["stderr_escapes"]
    assert "runner stopped" in row["detail"] and "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m" in row["detail"]
    # the run stopped in the last exercise: the two exercises decided before it keep their points
    assert outcome(row) == (4.0, MAX_SCORE, "error")
    assert [line for line in printed.splitlines() if line.startswith("stderr_escapes ") and "\\x1b" in line]


def test_feedback_of_live_html_is_inert_and_a_blank_notebook_is_empty(hostile_class):
    course, rows, _ = hostile_class
    assert outcome(rows["hostile_html"]) == (5.0, MAX_SCORE, "ok")
    page = course / "feedback/hostile_html" / ASSIGNMENT / "tiny.html"
    soup = BeautifulSoup(page.read_text(), "html.parser")
    assert not [s for s in soup.find_all("script") if "pwned" in s.text]
    assert not [tag.name for tag in soup.find_all(True) if any(a.startswith("on") for a in tag.attrs)]
    assert "checked 4 secret cases, 4 matched" in readable_text(page)
    assert outcome(rows["blank"]) == (0.0, MAX_SCORE, "empty")
    assert rows["blank"]["detail"] == f"{NOTEBOOK} has no code in any solution cell"


def test_a_pasted_image_costs_nothing_and_only_the_image_is_kept(hostile_class):
    course, rows, _ = hostile_class
    assert outcome(rows["pasted_image"]) == (5.0, MAX_SCORE, "ok")
    graded = nbformat.read(course / "autograded" / "pasted_image" / ASSIGNMENT / NOTEBOOK, as_version=4)
    (cell,) = [c for c in graded.cells if "My loss curve" in c.source]
    assert cell.attachments == {"curve.png": {"image/png": PNG}}  # the HTML "image" is dropped
    page = (course / "feedback" / "pasted_image" / ASSIGNMENT / "tiny.html").read_text()
    assert "My loss curve" in page and "attachment:" not in page and "pwned" not in page
