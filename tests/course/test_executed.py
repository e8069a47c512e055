"""The executed copies learners read without running (notebooks/executed, `make executed`): one per chapter, made
from the current chapter source, with outputs and figures, and no solution or hidden check in them."""

import shutil

import nbformat
import pytest
from nbgrader.utils import is_grade, is_solution

from lorakit import grading
from lorakit.authoring.build import build
from lorakit.authoring.executed import SOURCE_HASH_KEY, readable_copy, source_hash
from tests.helpers import REPO
from tests.helpers.notebooks import leaks, secret_lines

CHAPTERS = sorted(p.stem for p in (REPO / "course").glob("*.py"))
EXECUTED = REPO / "notebooks" / "executed"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_has_a_fresh_executed_copy_with_outputs(chapter):
    copy = nbformat.read(EXECUTED / f"{chapter}.ipynb", as_version=4)
    assert copy.metadata[SOURCE_HASH_KEY] == source_hash(REPO / "course" / f"{chapter}.py"), "run `make executed`"
    lesson_cells = [c for c in copy.cells if c.cell_type == "code" and not (is_solution(c) or is_grade(c))]
    assert sum(bool(c.outputs) for c in lesson_cells) >= len(lesson_cells) // 2
    assert not any(o.output_type == "error" for c in lesson_cells for o in c.outputs)


def test_the_executed_copies_show_figures_and_reveal_no_solution():
    copies = sorted(EXECUTED.glob("*.ipynb"))
    figures = {p.stem: sum("image/png" in o.get("data", {}) for c in nbformat.read(p, as_version=4).cells
                           if c.cell_type == "code" for o in c.outputs) for p in copies}
    trains = {p.stem for p in copies if "lorakit.train(" in (REPO / "course" / f"{p.stem}.py").read_text()}
    assert trains and all(figures[chapter] >= 1 for chapter in trains), figures  # every chapter that trains draws it
    secrets = secret_lines(sorted((REPO / "notebooks" / "source").glob("*/*.ipynb")))
    assert leaks(copies, secrets) == {}
    assert not any("BEGIN SOLUTION" in p.read_text() or "BEGIN HIDDEN TESTS" in p.read_text() for p in copies)


def test_readable_copy_takes_graded_cells_from_the_release(tmp_path):
    shutil.copy(REPO / "notebooks" / "nbgrader_config.py", tmp_path)
    source = build(REPO / "tests" / "fixtures" / "tiny.py", tmp_path)
    release = nbformat.read(grading.generate_release(tmp_path, "tiny") / "tiny.ipynb", as_version=4)
    executed = nbformat.read(source, as_version=4)
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    copy = readable_copy(executed, release)
    graded = [i for i, c in enumerate(copy.cells) if is_solution(c) or is_grade(c)]
    assert graded and all(copy.cells[i].source == release.cells[i].source for i in graded)
    assert all(not copy.cells[i].get("outputs") for i in graded)
    assert any(c.get("outputs") for c in copy.cells)  # lesson cells keep theirs
    with pytest.raises(ValueError, match="make notebooks"):
        readable_copy(executed, nbformat.v4.new_notebook(cells=release.cells[:-1]))


def test_an_instructor_notebook_older_than_its_source_is_refused(tmp_path):
    from lorakit.authoring.executed import check_built_from

    source = tmp_path / "tiny.py"
    source.write_text((REPO / "tests" / "fixtures" / "tiny.py").read_text())
    notebook = nbformat.read(build(source, tmp_path), as_version=4)
    check_built_from(notebook, source)  # fresh: accepted
    source.write_text(source.read_text().replace("Three short exercises", "Three exercises"))
    with pytest.raises(ValueError, match="older than .*tiny.py: run `make notebooks` first"):
        check_built_from(notebook, source)


def test_the_hash_follows_the_cells_not_the_layout_of_the_file(tmp_path):
    text = (REPO / "tests" / "fixtures" / "tiny.py").read_text()
    original, relaid, changed = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    original.write_text(text)
    relaid.write_text(text.replace("\n# %%", "\n\n\n# %%"))
    changed.write_text(text.replace("# %% [markdown]\n", "# %% [markdown]\n# One more line.\n", 1))
    assert source_hash(original) == source_hash(relaid) != source_hash(changed)
