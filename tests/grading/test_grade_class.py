"""The course tooling: nbgrader notebooks → student release → sandboxed grading.

The grading tests grade the tiny fixture course (tests/fixtures/tiny.py) in nbgrader's layout and from
--submissions folders; they need bubblewrap (skipped without it unless LORAKIT_REQUIRE_SANDBOX is set).
"""

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import nbformat
import pytest

from lorakit import grading
from lorakit.grading import sandbox, settings
from lorakit.lessons import self_checks as checks
from tests.helpers import REPO
from tests.helpers.grading_course import (
    ASSIGNMENT,
    MAX_SCORE,
    NOTEBOOK,
    RIGHT,
    SECRET,
    WRONG,
    make_course,
    require_sandbox,
    snapshot,
    student_notebook,
)
from tests.helpers.notebooks import readable_text


def test_feedback_messages_are_actionable():
    with pytest.raises(AssertionError, match=r"scale: expected 2, got 0.5. alpha / r, not r / alpha"):
        checks.check_close(0.5, 2.0, "scale", hint="alpha / r, not r / alpha")
    with pytest.raises(AssertionError, match="expected a number"):
        checks.check_close("two", 2.0, "scale")
    with pytest.raises(AssertionError, match=r"targets: expected \['q_proj'\], got \[\]"):
        checks.check_equal([], ["q_proj"], "targets")
    checks.check_close(2.0 + 1e-12, 2.0, "scale")
    assert not hasattr(grading, "check_close") and not hasattr(grading, "check_equal")


def test_collect_outside_grading_checks_plain_data_and_reveals_nothing(capsys, monkeypatch):
    from lorakit.grading import collect

    monkeypatch.delenv("LORAKIT_GRADING_RESULTS", raising=False)
    collect("x-tests", lambda a, b: a * b, cases=lambda rng: [(rng.randint(1, 9), 2) for _ in range(3)])
    assert capsys.readouterr().out == ""
    with pytest.raises(AssertionError, match=r"x-tests: 1 of 1 case\(s\) gave no plain result: not plain data: set"):
        collect("x-tests", lambda: {1}, cases=lambda rng: [()])
    with pytest.raises(ValueError, match=r"rel must be a number in \[0, 1\), got 2"):
        collect("x-tests", 1, rel=2)


def test_verdicts_compare_exact_types_with_the_references_tolerance():
    from lorakit.grading.verdicts import decide

    reference = {"e": {"exercise": "e", "rel": 1e-3, "results": [{"value": 1.0}, {"value": 2}, {"value": [True]}]}}
    line = '{"exercise": "e", "rel": 0.9, "results": [{"value": 1.0005}, {"value": 2.0}, {"value": [1]}]}'
    verdict = decide(line, reference, {"e": 3.0})["e"]
    assert (verdict.cases, verdict.matched, verdict.score) == (3, 1, 1.0)


def test_release_has_no_solution_or_hidden_check(tmp_path):
    course = make_course(tmp_path / "course", REPO)
    text = (course / "release" / ASSIGNMENT / NOTEBOOK).read_text()
    for secret in ("return alpha / r", "HIDDEN TESTS", "collect(", "cases=lambda"):
        assert secret not in text


def test_no_secret_or_no_sandbox_is_one_clear_error(tmp_path, monkeypatch):
    course = make_course(tmp_path / "course", REPO)
    monkeypatch.delenv(settings.SECRET_ENV, raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "no-jupyter-config"))
    with pytest.raises(ValueError, match=r"no grading secret: set LORAKIT_GRADING_SECRET or c.LorakitGrader.secret"):
        grading.grade_class(course, ASSIGNMENT)
    monkeypatch.setenv(settings.SECRET_ENV, SECRET)
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(sandbox.SandboxUnavailable, match=r"apt-get install bubblewrap.*--unsafe-no-sandbox"):
        grading.grade_class(course, ASSIGNMENT)
    assert not list((tmp_path / "tmp").iterdir())  # the sandbox probe's scratch folder is removed


def test_a_hidden_test_cells_import_loads_no_instructor_machinery():
    """A student's kernel imports lorakit.grading.collector for every hidden test: nbgrader and nbformat stay out of it
    (about 2.4 s per graded kernel); the instructor API still loads on first use."""
    probe = ("import sys, lorakit.grading.collector, lorakit.grading as g; before = sorted(m for m in ('nbgrader', "
             "'nbformat') if m in sys.modules); g.grade_class; print(before, 'nbgrader' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "True"]


def test_secret_from_the_instructors_own_config(tmp_path, monkeypatch):
    personal = tmp_path / "jupyter"
    personal.mkdir()
    (personal / "nbgrader_config.py").write_text(f"c.LorakitGrader.secret = {SECRET!r}\n")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(personal))
    monkeypatch.delenv(settings.SECRET_ENV, raising=False)
    course = make_course(tmp_path / "course", REPO)
    assert settings.secret(settings.load_config(course)) == SECRET


# ---------------------------------------------------------------- a class with every kind of submission
def _class_submissions(course):
    """student folder name → {relative path: notebook, or bytes for a file that is not a notebook}."""
    def wrong_test_cell():
        notebook = student_notebook(course, WRONG)
        next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")).source = 'print("passed")'
        return notebook

    def deleted_test_cells():
        notebook = student_notebook(course, RIGHT)
        notebook.cells = [c for c in notebook.cells if not c.metadata.get("nbgrader", {}).get("grade")]
        return notebook

    empty = student_notebook(course)
    empty.cells = []
    return {
        "solver": {NOTEBOOK: student_notebook(course, RIGHT)},
        "blank": {NOTEBOOK: student_notebook(course)},
        "empty": {NOTEBOOK: empty},
        "not_json": {NOTEBOOK: b"{not json"},
        "syntax_error": {NOTEBOOK: student_notebook(course, {"tiny-scale": "def lora_scale(r, alpha)\n    return 1"})},
        "raises": {NOTEBOOK: student_notebook(course, {**RIGHT, "tiny-scale": "def lora_scale(r, alpha):\n"
                                                                             "    raise RuntimeError('not done')"})},
        "edits_tests": {NOTEBOOK: wrong_test_cell()},
        "deletes_tests": {NOTEBOOK: deleted_test_cells()},
        "renamed": {"tiny (1).ipynb": student_notebook(course, RIGHT), "notes.txt": b"my notes"},
        "nested": {"work/final/tiny.ipynb": student_notebook(course, RIGHT)},
        "Zoë O'Neil (late)": {NOTEBOOK: student_notebook(course, RIGHT)},
        "loops": {NOTEBOOK: student_notebook(course, {**RIGHT, "tiny-count": "while True:\n    pass"})},
        "kernel_dies": {NOTEBOOK: student_notebook(course, {**RIGHT, "tiny-scale": "import os\nos._exit(1)"})},
        "borrows": {NOTEBOOK: student_notebook(course, {**RIGHT, "tiny-count": (
            "import lorakit as lk\ndef lora_params(d_in, d_out, r):\n    helper = lk.count_lora_params\n"
            "    return r * (d_in + d_out)")})},
    }


def _write(folder, files):
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            nbformat.write(content, path)


@pytest.mark.sandbox
def test_sandbox_sees_layered_site_packages_but_no_other_sys_path_entry(tmp_path, monkeypatch):
    """A venv layered on another (tests/version_env.sh) imports the other's packages: the sandbox binds every
    site-packages folder on sys.path read-only, and nothing else of sys.path (a checkout on PYTHONPATH)."""
    layered, checkout = tmp_path / "base/lib/python3/site-packages", tmp_path / "checkout"
    layered.mkdir(parents=True)
    checkout.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(layered), str(checkout)])
    paths = sandbox.read_only_paths()
    assert layered in paths and checkout not in paths


@pytest.mark.sandbox
def test_each_parallel_slot_runs_as_its_own_uid_when_grading_as_root(tmp_path):
    """RLIMIT_NPROC counts processes per uid: slots with their own uid can't starve one another (root only; a
    user namespace has just the grader's uid to give)."""
    require_sandbox()
    if os.geteuid() != 0:
        pytest.skip("only root can run the sandbox as another uid")
    uids = {}
    for slot in (0, 1, 2):
        scratch = tmp_path / f"slot{slot}"
        scratch.mkdir()
        uid = sandbox.slot_uid(slot)
        sandbox.prepare_scratch(scratch, uid)
        argv = sandbox.command(scratch, [sys.executable, "-c", "import os; open('me', 'w').write(str(os.getuid()))"],
                               {}, uid)
        subprocess.run(argv, check=True, timeout=60, preexec_fn=sandbox.Limits(uid=uid).apply)
        uids[slot] = int((scratch / "me").read_text())
    assert uids == {0: sandbox.NOBODY, 1: sandbox.SLOT_UID_BASE + 1, 2: sandbox.SLOT_UID_BASE + 2}


@pytest.mark.parametrize("uid", [0, 999, 65535, True, 1000.0])
def test_a_sandbox_uid_must_be_unprivileged(uid):
    with pytest.raises(ValueError, match="uid must be a whole number from 1000 to 65534"):
        sandbox.Limits(uid=uid)

@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The class in nbgrader's layout (submitted/<student>/tiny/), graded by `lorakit grade --timeout 20 --feedback
    --jobs 2`."""
    require_sandbox()
    from lorakit.cli import main

    base = tmp_path_factory.mktemp("class")
    course = make_course(base / "course", REPO)
    for student, files in _class_submissions(course).items():
        _write(course / "submitted" / student / ASSIGNMENT, files)
    before = snapshot(course / "submitted")
    (base / "secret").write_text(SECRET)
    assert main(["grade", str(course), ASSIGNMENT, "--timeout", "20", "--feedback", "--jobs", "2", "--secret-file",
                 str(base / "secret")]) == 0
    with open(course / f"grades_{ASSIGNMENT}.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return course, rows, before


def _outcome(row):
    return float(row["score"]), float(row["max_score"]), row["status"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_every_student_gets_a_row_with_per_exercise_scores(graded_class):
    course, rows, _ = graded_class
    assert sorted(rows) == sorted(p.name for p in (course / "submitted").iterdir())
    assert list(next(iter(rows.values()))) == ["student", "assignment", "score", "max_score", "status", "detail",
                                               "timestamp", "seconds_late", "late_penalty", "seed_fingerprint",
                                               "tiny-scale-tests", "tiny-count-tests", "tiny-targets-tests"]
    for student in ("solver", "nested"):
        assert _outcome(rows[student]) == (5.0, MAX_SCORE, "ok"), rows[student]
    assert _outcome(rows["Zoë O'Neil (late)"]) == (0.0, MAX_SCORE, "error")  # not a valid student id
    assert _outcome(rows["blank"]) == (0.0, MAX_SCORE, "empty")
    assert (rows["raises"]["tiny-scale-tests"], rows["raises"]["tiny-count-tests"]) == ("0.0", "2.0")
    assert _outcome(rows["raises"]) == (3.0, MAX_SCORE, "ok") and _outcome(rows["syntax_error"])[0] == 0.0
    # right results, but through a name the exercise forbids: that exercise scores 0, the others stand
    assert rows["borrows"]["tiny-count-tests"] == "0.0" and _outcome(rows["borrows"]) == (3.0, MAX_SCORE, "ok")
    assert "tiny-count-tests: the answer uses count_lora_params, which the exercise forbids" in (
        rows["borrows"]["detail"])


@pytest.mark.slow
@pytest.mark.sandbox
def test_submitted_files_are_never_changed(graded_class):
    course, _, before = graded_class
    assert snapshot(course / "submitted") == before


@pytest.mark.slow
@pytest.mark.sandbox
def test_problems_are_named_in_the_detail(graded_class):
    _, rows, _ = graded_class
    assert _outcome(rows["renamed"]) == (0.0, MAX_SCORE, "error")
    assert rows["renamed"]["detail"] == "no notebook named tiny.ipynb; found tiny (1).ipynb"
    assert _outcome(rows["not_json"]) == (0.0, MAX_SCORE, "error")
    assert rows["not_json"]["detail"].startswith("unreadable notebook tiny.ipynb")
    assert _outcome(rows["empty"]) == (0.0, MAX_SCORE, "empty")


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_loop_or_a_dead_kernel_costs_only_its_exercise(graded_class):
    _, rows, _ = graded_class
    assert _outcome(rows["loops"]) == (3.0, MAX_SCORE, "timeout")
    assert rows["loops"]["detail"] == "tiny-count-tests: a cell ran past 20 s"
    assert _outcome(rows["kernel_dies"]) == (3.0, MAX_SCORE, "error")
    assert "tiny-scale-tests: the kernel died" in rows["kernel_dies"]["detail"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_edited_or_deleted_test_cells_run_as_the_instructor_wrote_them(graded_class):
    _, rows, _ = graded_class
    assert _outcome(rows["edits_tests"]) == (0.0, MAX_SCORE, "tampered")
    assert rows["edits_tests"]["detail"] == "edited locked cell 'tiny-scale-tests'"
    assert _outcome(rows["deletes_tests"]) == (5.0, MAX_SCORE, "tampered")
    assert rows["deletes_tests"]["detail"].count("deleted locked cell") == 3


@pytest.mark.slow
@pytest.mark.sandbox
def test_feedback_shows_the_graded_notebook_without_hidden_checks(graded_class):
    course, rows, _ = graded_class
    pages = {p.parts[-3]: p for p in (course / "feedback").rglob("*.html")}
    assert "renamed" not in pages and "not_json" not in pages and "solver" in pages and "blank" in pages
    assert "not run, no answer found (0 of 2 points)" in readable_text(pages["blank"])
    for page in pages.values():
        text = readable_text(page)
        assert "collect(" not in text and "HIDDEN TESTS" not in text
    assert "checked 4 secret cases, 4 matched" in readable_text(pages["solver"])
    assert "checked 4 secret cases, 0 matched" in readable_text(pages["syntax_error"])
    assert "your answer uses count_lora_params, which this exercise forbids (0 of 2 points)" in readable_text(
        pages["borrows"])


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_gradebook_holds_the_scores(graded_class):
    course, rows, _ = graded_class
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("solver", "raises", "loops"):
            assert gradebook.find_submission(ASSIGNMENT, student).score == float(rows[student]["score"])


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_failed_regrade_clears_the_stale_score_and_feedback(graded_class, tmp_path, monkeypatch):
    course, rows, _ = graded_class
    assert (course / "feedback/solver" / ASSIGNMENT).is_dir()
    resubmitted = tmp_path / "inside"
    _write(resubmitted / "solver", {NOTEBOOK: b"{not json"})
    monkeypatch.setenv(settings.SECRET_ENV, SECRET)
    [grade] = grading.grade_class(course, ASSIGNMENT, resubmitted, timeout=20, feedback=True)
    assert (grade.score, grade.status) == (0.0, "error")
    assert not (course / "feedback/solver" / ASSIGNMENT).exists()
    with sqlite3.connect(course / "gradebook.db") as db:
        scores = db.execute("SELECT grade.auto_score FROM grade JOIN submitted_notebook ON grade.notebook_id = "
                            "submitted_notebook.id JOIN submitted_assignment ON submitted_notebook.assignment_id = "
                            "submitted_assignment.id WHERE submitted_assignment.student_id = 'solver'").fetchall()
    assert scores == [(None,), (None,), (None,)]


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_submissions_folder_inside_the_course_is_only_read(graded_class, monkeypatch):
    course, _, _ = graded_class
    inside = course / "hand-ins"
    _write(inside / "late_student", {f"{ASSIGNMENT}/{NOTEBOOK}": student_notebook(course, RIGHT)})
    before = snapshot(inside)
    monkeypatch.setenv(settings.SECRET_ENV, SECRET)
    [grade] = grading.grade_class(course, ASSIGNMENT, inside, timeout=20)
    assert (grade.student, grade.score, grade.status) == ("late_student", 5.0, "ok")
    assert snapshot(inside) == before


def test_grade_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from lorakit.cli import main

    monkeypatch.setenv(settings.SECRET_ENV, SECRET)
    assert main(["grade", str(tmp_path), "demo_chapter"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no nbgrader_config.py" in err
    shutil.copy(REPO / "notebooks/nbgrader_config.py", tmp_path)
    assert main(["grade", str(tmp_path), "demo_chapter", "--timeout", "0"]) == 2
    assert "timeout must be a whole number of seconds ≥ 1, got 0" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "demo_chapter", "--submissions", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "assignment 'demo_chapter' has no folder source/demo_chapter" in err and "Did you mean" not in err
    (tmp_path / "source/demo_chapter").mkdir(parents=True)
    assert main(["grade", str(tmp_path), "demo_chapter", "--submissions", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder of <student>/<notebook>.ipynb" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.sandbox
def test_each_row_names_its_seed_and_a_regrade_with_another_secret_says_so(graded_class, tmp_path, capsys):
    course, rows, _ = graded_class
    first = {rows[student]["seed_fingerprint"] for student in ("solver", "nested", "blank", "raises")}
    assert first == {settings.fingerprint(settings.seed(SECRET, ASSIGNMENT))} and SECRET not in str(rows)
    resubmitted = tmp_path / "again"
    _write(resubmitted / "solver", {NOTEBOOK: student_notebook(course, RIGHT)})
    capsys.readouterr()
    other = shutil.copytree(course, tmp_path / "copy")  # the graded course, with its cached reference results
    [grade] = grading.grade_class(other, ASSIGNMENT, resubmitted, timeout=20, secret="another-secret-0099")
    note = capsys.readouterr().err
    assert grade.seed_fingerprint == settings.fingerprint(settings.seed("another-secret-0099", ASSIGNMENT))
    assert grade.seed_fingerprint != next(iter(first)) and (grade.score, grade.status) == (5.0, "ok")
    assert f"graded before with another secret (seed fingerprint {next(iter(first))}" in note


@pytest.mark.slow
@pytest.mark.sandbox
def test_grading_in_parallel_gives_the_same_csv_byte_for_byte(tmp_path, capsys):
    require_sandbox()
    course = make_course(tmp_path / "course", REPO)
    students = {"solver": student_notebook(course, RIGHT), "wrong": student_notebook(course, WRONG),
                "blank": student_notebook(course), "half": student_notebook(course, {"tiny-scale": RIGHT["tiny-scale"]})}
    for student, notebook in students.items():
        _write(tmp_path / "class" / student, {NOTEBOOK: notebook})
    csvs = {}
    for jobs in (1, 2):
        csvs[jobs] = tmp_path / f"jobs{jobs}.csv"
        grading.grade_class(course, ASSIGNMENT, tmp_path / "class", csvs[jobs], timeout=20, secret=SECRET, jobs=jobs)
    assert csvs[1].read_bytes() == csvs[2].read_bytes()
    with pytest.raises(ValueError, match="jobs must be a whole number from 1 to 64, got 0"):
        grading.grade_class(course, ASSIGNMENT, tmp_path / "class", timeout=20, secret=SECRET, jobs=0)


def test_default_jobs_use_the_cores_only_where_each_slot_gets_its_own_uid(monkeypatch):
    from lorakit.grading import instructor

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 6 * 2**30 // 4096}  # 6 GiB: three students of 2 GiB
    monkeypatch.setattr(instructor.os, "sysconf", pages.__getitem__)
    monkeypatch.setattr(instructor, "usable_cpus", lambda: 16)
    monkeypatch.setattr(instructor.os, "geteuid", lambda: 0)
    assert instructor.default_jobs("require") == 3 and instructor.default_jobs("warn") == 1
    monkeypatch.setattr(instructor, "usable_cpus", lambda: 2)
    assert instructor.default_jobs("require") == 2
    monkeypatch.setattr(instructor.os, "geteuid", lambda: 1000)
    assert instructor.default_jobs("require") == 1
