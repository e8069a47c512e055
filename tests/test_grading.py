"""The course tooling: percent-format sources → nbgrader notebooks → student release → autograded scores."""

import csv
import shutil

import nbformat
import pytest
from nbgrader.utils import compute_checksum

from lorakit import checks, grading
from lorakit.notebook_builder import build, parse
from conftest import REPO
from nbhelpers import leaks, readable_text, secret_lines, solved_release


def test_parse_makes_graded_cells_with_schema_3_metadata(repo):
    cells = parse((repo / "tests/fixtures/demo_chapter.py").read_text())
    kinds = [c.cell_type for c in cells]
    assert kinds == ["markdown", "code", "code"]
    solution, tests = cells[1].metadata["nbgrader"], cells[2].metadata["nbgrader"]
    assert solution == {"grade": False, "solution": True, "locked": False, "grade_id": "demo-scale",
                        "schema_version": 3, "task": False}
    assert tests["grade"] and tests["locked"] and tests["points"] == 2.0
    assert "### BEGIN HIDDEN TESTS" in cells[2].source


def test_graded_cell_without_id_is_an_error():
    with pytest.raises(ValueError, match=r"needs id="):
        parse("# %% [tests] points=1\nassert True\n", "bad.py")


def test_built_notebook_has_kernelspec_badges_and_guarded_colab_cell(repo, tmp_path):
    path = build(repo / "tests/fixtures/demo_chapter.py", tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "colab.research.google.com" in nb.cells[0].source and "mybinder.org" in nb.cells[0].source
    assert '"google.colab" in sys.modules' in nb.cells[1].source


@pytest.fixture
def demo_course(repo, tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(repo / "notebooks/nbgrader_config.py", root)
    build(repo / "tests/fixtures/demo_chapter.py", root)
    return root


def test_round_trip_solution_full_marks_blank_zero(demo_course, tmp_path):
    release = grading.generate_release(demo_course, "demo_chapter")
    student_nb = (release / "demo_chapter.ipynb").read_text()
    assert "return alpha / r" not in student_nb and "HIDDEN TESTS" not in student_nb and "r=8" not in student_nb
    assert "lora_scale(8, 8)" not in student_nb
    subs = tmp_path / "submissions"
    for student in ("solver", "blank"):
        (subs / student).mkdir(parents=True)
    nbformat.write(solved_release(release / "demo_chapter.ipynb", demo_course / "source/demo_chapter/demo_chapter.ipynb"),
                   subs / "solver" / "demo_chapter.ipynb")
    shutil.copy(release / "demo_chapter.ipynb", subs / "blank")
    grades = {g.student: g for g in grading.grade_class(demo_course, "demo_chapter", subs, tmp_path / "grades.csv")}
    assert (grades["solver"].score, grades["solver"].max_score, grades["solver"].status) == (2.0, 2.0, "ok")
    assert (grades["blank"].score, grades["blank"].status) == (0.0, "ok")
    assert "solver,demo_chapter,2.0,2.0,ok," in (tmp_path / "grades.csv").read_text()


def test_feedback_messages_are_actionable():
    with pytest.raises(AssertionError, match=r"scale: expected 2, got 0.5. alpha / r, not r / alpha"):
        checks.check_close(0.5, 2.0, "scale", hint="alpha / r, not r / alpha")
    with pytest.raises(AssertionError, match="expected a number"):
        checks.check_close("two", 2.0, "scale")
    with pytest.raises(AssertionError, match=r"targets: expected \['q_proj'\], got \[\]"):
        checks.check_equal([], ["q_proj"], "targets")
    checks.check_close(2.0 + 1e-12, 2.0, "scale")


# ---------------------------------------------------------------- a class with every kind of bad submission
SOURCE_NB = "source/demo_chapter/demo_chapter.ipynb"


def _with_answer(notebook: nbformat.NotebookNode, answer: str) -> nbformat.NotebookNode:
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answer
    return notebook


def _test_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade"))


def _class_submissions(root):
    """name → the notebook that student hands in (None: a file that is not JSON)."""
    release, source = root / "release/demo_chapter/demo_chapter.ipynb", root / SOURCE_NB

    def blank():
        return nbformat.read(release, as_version=4)

    # wrong on the hidden test only: lora_scale(16, 32) == 2.0 passes, lora_scale(8, 8) == 1.0 fails
    wrong = "def lora_scale(r, alpha):\n    return 2.0"
    edits_tests = _with_answer(blank(), wrong)
    _test_cell(edits_tests).source = 'print("passed")'
    forges_checksum = _with_answer(blank(), wrong)
    _test_cell(forges_checksum).source = 'print("passed")'
    _test_cell(forges_checksum).metadata.nbgrader["checksum"] = compute_checksum(_test_cell(forges_checksum))
    deletes_tests = solved_release(release, source)
    deletes_tests.cells.remove(_test_cell(deletes_tests))
    empty = blank()
    empty.cells = []
    extra_cells = solved_release(release, source)
    extra_cells.cells.insert(2, nbformat.v4.new_markdown_cell("My notes"))
    extra_cells.cells.append(nbformat.v4.new_code_cell("scratch = [lora_scale(r, 2 * r) for r in (1, 2, 4)]"))
    return {
        "blank": blank(),
        "deletes_tests": deletes_tests,
        "edits_tests": edits_tests,
        "empty": empty,
        "extra_cells": extra_cells,
        "forges_checksum": forges_checksum,
        "kernel_dies": _with_answer(blank(), "import os\nos._exit(1)"),
        "loops": _with_answer(blank(), "while True:\n    pass"),
        "not_json": None,
        "raises": _with_answer(blank(), "def lora_scale(r, alpha):\n    raise RuntimeError('not done')"),
        "solver": solved_release(release, source),
        "solver_too": _with_answer(blank(), "def lora_scale(r, alpha):\n    return float(alpha) / float(r)"),
        "syntax_error": _with_answer(blank(), "def lora_scale(r, alpha)\n    return alpha / r"),
    }


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The demo chapter's class folder in nbgrader's layout, graded by `lorakit grade --timeout 5 --feedback`."""
    from lorakit.cli import main

    root = tmp_path_factory.mktemp("class")
    shutil.copy(REPO / "notebooks/nbgrader_config.py", root)
    build(REPO / "tests/fixtures/demo_chapter.py", root)
    grading.generate_release(root, "demo_chapter")
    for student, notebook in _class_submissions(root).items():
        folder = root / "submitted" / student / "demo_chapter"
        folder.mkdir(parents=True)
        if notebook is None:
            (folder / "demo_chapter.ipynb").write_text("{not json")
        else:
            nbformat.write(notebook, folder / "demo_chapter.ipynb")
    assert main(["grade", str(root), "demo_chapter", "--timeout", "5", "--feedback"]) == 0
    with open(root / "grades_demo_chapter.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return root, rows


def _outcome(row):
    return float(row["score"]), float(row["max_score"]), row["status"]


def test_every_submission_gets_a_row_and_good_ones_full_marks(graded_class):
    root, rows = graded_class
    assert sorted(rows) == sorted(p.name for p in (root / "submitted").iterdir())
    assert list(next(iter(rows.values()))) == ["student", "assignment", "score", "max_score", "status", "detail"]
    for student in ("solver", "solver_too", "extra_cells"):  # graded in the same batch as a loop and a dead kernel
        assert _outcome(rows[student]) == (2.0, 2.0, "ok"), rows[student]
    assert _outcome(rows["blank"]) == (0.0, 2.0, "ok")


def test_code_that_raises_or_does_not_parse_scores_zero(graded_class):
    root, rows = graded_class
    for student, error in (("raises", "RuntimeError"), ("syntax_error", "SyntaxError")):
        assert _outcome(rows[student]) == (0.0, 2.0, "ok")
        graded = nbformat.read(root / "autograded" / student / "demo_chapter/demo_chapter.ipynb", as_version=4)
        assert error in {o.get("ename") for c in graded.cells if c.cell_type == "code" for o in c.outputs}


def test_an_infinite_loop_is_interrupted_at_the_timeout(graded_class):
    _, rows = graded_class
    assert _outcome(rows["loops"]) == (0.0, 2.0, "timeout")
    assert "ran past the execute timeout" in rows["loops"]["detail"]


def test_unreadable_notebook_and_dead_kernel_are_errors_not_crashes(graded_class):
    _, rows = graded_class
    assert _outcome(rows["not_json"]) == (0.0, 2.0, "error") and "NotJSONError" in rows["not_json"]["detail"]
    assert _outcome(rows["kernel_dies"]) == (0.0, 2.0, "error")
    assert "DeadKernelError" in rows["kernel_dies"]["detail"]
    assert _outcome(rows["empty"]) == (0.0, 2.0, "empty")


def test_edited_tests_are_replaced_by_the_instructors_and_reported(graded_class):
    """nbgrader's autograde overwrites a locked cell whose checksum differs from the gradebook's with the source
    version (hidden tests included), so passing by editing the tests is impossible; lorakit reports the edit."""
    root, rows = graded_class
    instructor_tests = _test_cell(nbformat.read(root / SOURCE_NB, as_version=4)).source
    for student in ("edits_tests", "forges_checksum"):
        assert _outcome(rows[student]) == (0.0, 2.0, "tampered")
        assert rows[student]["detail"] == "edited locked cell 'demo-scale-tests'"
        graded = nbformat.read(root / "autograded" / student / "demo_chapter/demo_chapter.ipynb", as_version=4)
        assert _test_cell(graded).source == instructor_tests
        assert _test_cell(graded).outputs[0]["ename"] == "AssertionError"


def test_nbgrader_validate_misses_a_forged_checksum_and_deleted_tests(graded_class):
    """What students see with `nbgrader validate`: it compares each cell with the checksum stored in the notebook
    itself, so a student who rewrites that checksum (or deletes the cell) is not warned; lorakit checks the
    instructor's release copy instead."""
    from nbgrader.validator import Validator

    root, rows = graded_class
    submitted = root / "submitted"
    assert len(Validator().validate(str(submitted / "edits_tests/demo_chapter/demo_chapter.ipynb"))["changed"]) == 1
    assert "changed" not in Validator().validate(str(submitted / "forges_checksum/demo_chapter/demo_chapter.ipynb"))
    assert rows["forges_checksum"]["status"] == "tampered"


def test_deleted_tests_score_zero_even_with_a_right_answer(graded_class):
    """nbgrader 0.9.6 does not add a deleted test cell back (OverwriteCells.add_missing_cells is off by default):
    its points are lost; the right answer alone earns nothing."""
    root, rows = graded_class
    assert _outcome(rows["deletes_tests"]) == (0.0, 2.0, "tampered")
    assert rows["deletes_tests"]["detail"] == "deleted locked cell 'demo-scale-tests'"
    graded = nbformat.read(root / "autograded/deletes_tests/demo_chapter/demo_chapter.ipynb", as_version=4)
    assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in graded.cells)


def test_feedback_shows_no_hidden_test_or_solution(graded_class):
    root, rows = graded_class
    secrets = secret_lines([root / SOURCE_NB])
    assert secrets == {"return alpha / r", "assert lora_scale(8, 8) == 1.0"}
    feedback = sorted((root / "feedback").rglob("*.html"))
    graded = [s for s, row in rows.items() if row["status"] != "error"]
    assert sorted(p.parts[-3] for p in feedback) == sorted(graded)
    for page in feedback:  # a student who wrote the solution's line sees it in their own feedback, nobody else
        own = readable_text(root / "submitted" / page.parts[-3] / "demo_chapter/demo_chapter.ipynb")
        assert leaks([page], {line for line in secrets if line not in own}) == {}
    assert leaks(feedback, {"assert lora_scale(8, 8) == 1.0"}) == {}
    assert "AssertionError" in readable_text(root / "feedback/edits_tests/demo_chapter/demo_chapter.html")


@pytest.mark.parametrize("preprocessors, shown", [("nbgrader's defaults", 2), ("the course config", 0)])
def test_nbgrader_feedback_leaks_hidden_tests_unless_the_course_config_redacts_them(graded_class, tmp_path,
                                                                                    preprocessors, shown):
    """nbgrader 0.9.6's own feedback shows hidden tests, in the test cell and again in the traceback of a failing
    one; the course's nbgrader_config.py installs lorakit's redaction, so `nbgrader generate_feedback` is safe."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    root = tmp_path / "class"
    shutil.copytree(graded_class[0], root)
    config = grading._config(root)
    if preprocessors == "nbgrader's defaults":
        config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor]
    result = grading._api(config).generate_feedback("demo_chapter", "edits_tests")
    assert result["success"]
    page = readable_text(root / "feedback/edits_tests/demo_chapter/demo_chapter.html")
    assert page.count("assert lora_scale(8, 8) == 1.0") == shown


def test_grade_cli_errors_are_one_line(repo, tmp_path, capsys):
    from lorakit.cli import main

    assert main(["grade", str(tmp_path), "demo_chapter"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no nbgrader_config.py" in err
    shutil.copy(repo / "notebooks/nbgrader_config.py", tmp_path)
    assert main(["grade", str(tmp_path), "demo_chapter", "--timeout", "0"]) == 2
    assert "timeout must be a whole number of seconds ≥ 1, got 0" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "demo_chapter"]) == 2
    assert "assignment 'demo_chapter' has no folder source/demo_chapter" in capsys.readouterr().err
