"""The course tooling: percent-format sources → nbgrader notebooks → student release → autograded scores."""

import shutil

import nbformat
import pytest

from lorakit import grading
from lorakit.notebook_builder import build, parse


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
    for student, source in {"solver": demo_course / "source/demo_chapter/demo_chapter.ipynb",
                            "blank": release / "demo_chapter.ipynb"}.items():
        (subs / student).mkdir(parents=True)
        shutil.copy(source, subs / student / "demo_chapter.ipynb")
    grades = {g.student: g for g in grading.grade_class(demo_course, "demo_chapter", subs, tmp_path / "grades.csv")}
    assert (grades["solver"].score, grades["solver"].max_score) == (2.0, 2.0)
    assert (grades["blank"].score, grades["blank"].status) == (0.0, "graded")
    assert "solver,demo_chapter,2.0,2.0,graded" in (tmp_path / "grades.csv").read_text()


def test_feedback_messages_are_actionable():
    with pytest.raises(AssertionError, match=r"scale: expected 2, got 0.5. alpha / r, not r / alpha"):
        grading.check_close(0.5, 2.0, "scale", hint="alpha / r, not r / alpha")
    with pytest.raises(AssertionError, match="expected a number"):
        grading.check_close("two", 2.0, "scale")
    with pytest.raises(AssertionError, match=r"targets: expected \['q_proj'\], got \[\]"):
        grading.check_equal([], ["q_proj"], "targets")
    grading.check_close(2.0 + 1e-12, 2.0, "scale")
