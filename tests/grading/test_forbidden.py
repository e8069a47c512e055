"""Forbidden calls: declared on a test cell, listed under the statement, found in the student's cells by name."""

from __future__ import annotations

import nbformat
import pytest

from lorakit.authoring.build import KERNELSPEC, parse
from lorakit.grading.assemble import assemble
from lorakit.grading.forbidden import names_used, violations

CHAPTER = '''# %% [markdown]
# ### Exercise 1 — count it (2 points)
# Return the LoRA parameters of one layer.

# %% [solution] id="count"
def lora_params(d_in, d_out, r):
    ### BEGIN SOLUTION
    return r * (d_in + d_out)
    ### END SOLUTION

# %% [tests] id="count-tests" points=2 forbid=["count_lora_params", "lora_table"]
### BEGIN HIDDEN TESTS
from lorakit.grading import collect

collect("count-tests", lora_params, cases=lambda rng: [(8, 8, 2)])
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — anything goes

# %% [solution] id="free"
def free():
    ### BEGIN SOLUTION
    return 1
    ### END SOLUTION

# %% [tests] id="free-tests" points=1
### BEGIN HIDDEN TESTS
from lorakit.grading import collect

collect("free-tests", free, cases=lambda rng: [()])
### END HIDDEN TESTS
'''


@pytest.mark.parametrize(("answer", "found"), [
    ("def f():\n    return count_lora_params(1)", {"count_lora_params"}),
    ("from lorakit import count_lora_params as c", {"count_lora_params"}),
    ("import lorakit as lk\nx = lk.count_lora_params", {"count_lora_params"}),
    ("import lorakit.models.shapes", {"shapes"}),
    ("def f(:\n", set()),  # does not parse: fails on its own
])
def test_names_used_sees_calls_imports_aliases_and_attributes(answer, found):
    assert found <= names_used(answer) if found else names_used(answer) == set()


def test_the_students_own_names_are_not_outside_names():
    own = "def lora_scale(r, alpha, rslora=False):\n    scale = alpha / r\n    return scale"
    assert names_used(own) & {"scale", "lora_scale", "r", "alpha"} == set()
    assert "count_lora_params" in names_used("def f(shape):\n    return count_lora_params(shape, 16, 'q,v')")


def test_the_build_stores_the_list_and_shows_it_under_the_statement():
    cells = parse(CHAPTER)
    (tests,) = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "count-tests"]
    assert tests.metadata["lorakit"]["forbid"] == ["count_lora_params", "lora_table"]
    assert "*Not allowed in your answer:* `count_lora_params`, `lora_table`" in cells[0].source
    assert "*Not allowed in your answer:* nothing;" in cells[3].source  # exercise 2 forbids nothing
    with pytest.raises(ValueError, match="forbid=\\[...\\] belongs on the exercise's \\[tests\\] cell"):
        parse(CHAPTER.replace('# %% [solution] id="free"', '# %% [solution] id="free" forbid=["x"]'))


def _notebook(cells):
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})


def test_violations_name_the_exercise_whose_cells_use_a_forbidden_name():
    source = _notebook(parse(CHAPTER))
    release = nbformat.from_dict(source)
    student = nbformat.from_dict(source)
    student.cells[1].source = "import lorakit\n\ndef lora_params(d_in, d_out, r):\n    return r * (d_in + d_out)"
    student.cells[4].source = "from lorakit import count_lora_params\n\ndef free():\n    return 1"  # not forbidden here
    built = assemble(source, release, student)
    assert violations(source, built.notebook, built.test_cells, built.from_student) == {}
    student.cells.insert(2, nbformat.v4.new_code_cell("from lorakit.models.shapes import lora_table as t"))
    built = assemble(source, release, student)  # a forbidden import in the student's own extra cell counts too
    assert violations(source, built.notebook, built.test_cells, built.from_student) == {"count-tests": ["lora_table"]}
