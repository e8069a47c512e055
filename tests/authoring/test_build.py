"""The build: percent-format chapters (read by jupytext) → instructor notebooks with nbgrader schema-3 metadata."""

import nbformat
import pytest

from lorakit.authoring.build import build, parse

WRITTEN = '''# %% [markdown]
# Why lower the learning rate when alpha doubles?

# %% [markdown] [written] id="why-alpha" points=2
# The update is scaled by alpha / r, so doubling alpha doubles the step.
'''


def test_parse_makes_graded_cells_with_schema_3_metadata(repo):
    cells = parse((repo / "tests/fixtures/demo_chapter.py").read_text())
    kinds = [c.cell_type for c in cells]
    assert kinds == ["markdown", "code", "code"]
    solution, tests = cells[1].metadata["nbgrader"], cells[2].metadata["nbgrader"]
    assert solution == {"grade": False, "solution": True, "locked": False, "grade_id": "demo-scale",
                        "schema_version": 3, "task": False}
    assert tests["grade"] and tests["locked"] and tests["points"] == 2.0
    assert "### BEGIN HIDDEN TESTS" in cells[2].source
    assert not any(key in c.metadata for c in cells for key in ("title", "lines_to_next_cell"))


def test_a_written_answer_is_a_manually_graded_markdown_cell():
    question, answer = parse(WRITTEN)
    assert question.cell_type == answer.cell_type == "markdown" and "nbgrader" not in question.metadata
    assert answer.source == "The update is scaled by alpha / r, so doubling alpha doubles the step."
    assert answer.metadata["nbgrader"] == {"grade": True, "solution": True, "locked": False, "points": 2.0,
                                           "grade_id": "why-alpha", "schema_version": 3, "task": False}


def test_graded_cell_without_id_is_an_error():
    with pytest.raises(ValueError, match=r"bad.py: cell 1 \('assert True'\): a \[tests\] cell needs id="):
        parse("# %% [tests] points=1\nassert True\n", "bad.py")


def test_grading_skip_marks_a_demo_cell():
    cells = parse('# %% grading="skip"\nimport time\ntime.sleep(90)\n# %%\nx = 1\n')
    assert [c.metadata.get("lorakit") for c in cells] == [{"grading": "skip"}, None]
    assert cells[0].source == "import time\ntime.sleep(90)"
    with pytest.raises(ValueError, match=r"grading='later' is not allowed \(only grading=\"skip\" on a code cell\)"):
        parse('# %% grading="later"\nx = 1\n', "bad.py")


@pytest.mark.parametrize("header, problem", [
    ("# %% grading=skip", r"cannot read 'grading=skip'; write key=value with JSON values"),
    ('# %% [solution] id="a" colour="red"', r"unknown field 'colour'; allowed: id \(the grade id"),
    ('# %% [tests] id="a" points=0', r"points=0 is not allowed \(a number above 0\)"),
    ('# %% [tests] id="a" points="two"', r"points='two' is not allowed"),
    ('# %% [tests] id=3', r"needs id=\"...\" \(a string\)"),
    ('# %% [tests] id="a" forbid="x,y"', r"forbid='x,y' is not allowed \(a list of names"),
    ('# %% [solution] id="a" forbid=["x"]', r"forbid=\[...\] belongs on the exercise's \[tests\] cell"),
    ('# %% [written] id="a"', r"a code cell titled '\[written\]' is not allowed"),
    ('# %% [markdown] [tests] id="a"', r"a markdown cell titled '\[tests\]' is not allowed"),
    ('# %% [answer] id="a"', r"a code cell titled '\[answer\]' is not allowed"),
    ('# %% id="a"', r"id/points belong on a \[solution\], \[tests\] or \[written\] cell"),
    ('# %% [tests] id="a" experiment="lottery"', r"experiment='lottery' is not allowed \(on a \[tests\] cell, one of"),
    ('# %% [solution] id="a" experiment="budget-run"', r"experiment='budget-run' is not allowed"),
])
def test_a_bad_cell_header_is_one_error_naming_the_field(header, problem):
    with pytest.raises(ValueError, match=problem):
        parse(f"{header}\nx = 1\n", "bad.py")


def test_built_notebook_has_kernelspec_badges_and_guarded_colab_cell(repo, tmp_path):
    path = build(repo / "tests/fixtures/demo_chapter.py", tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "colab.research.google.com" in nb.cells[0].source and "mybinder.org" in nb.cells[0].source
    assert '"google.colab" in sys.modules' in nb.cells[1].source


def test_a_test_cell_can_name_the_experiment_the_grader_reruns():
    _, cell = parse('# %% [markdown]\n# Exercise\n# %% [tests] id="a-tests" points=3 experiment="budget-run"\nx = 1\n')
    assert cell.metadata["lorakit"] == {"experiment": "budget-run"} and cell.metadata["nbgrader"]["points"] == 3.0
