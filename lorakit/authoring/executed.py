"""Executed copies of the chapters, for reading without running: `notebooks/executed/<chapter>.ipynb`.

Each copy is the instructor notebook run top to bottom (nbclient, offline, fixed hash seed), every output and figure
kept, then made safe to hand to learners: solution and hidden-test cells get the student version's text (nbgrader's
stubs, hidden checks cut) and lose their outputs. The copy records the sha256 of its chapter's cells, so a test
can tell a stale copy from a fresh one. The asserts themselves are checked by nbval on the instructor notebooks.

    python -m lorakit.authoring.executed [--only 03 07]      (or `make executed`)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import nbformat

SOURCE_HASH_KEY = "lorakit_source_sha256"
TIMEOUT = 900  # seconds per cell


def source_hash(chapter_source: Path) -> str:
    """sha256 of a chapter's cells as the build reads them (kind, text, metadata): what an executed copy was made
    from. Re-laying out the `course/*.py` file without changing a cell leaves it as it was."""
    from .build import parse

    cells = [{"cell_type": c.cell_type, "source": c.source, "metadata": c.metadata}
             for c in parse(chapter_source.read_text(), chapter_source.name)]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def readable_copy(executed: nbformat.NotebookNode, release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`executed` with each graded cell's text taken from the student version `release` (same cells, same order, as
    nbgrader's generate_assignment keeps them) and its outputs dropped."""
    from nbgrader.utils import is_grade, is_solution

    if len(executed.cells) != len(release.cells):
        raise ValueError(f"the release has {len(release.cells)} cells and the instructor notebook "
                         f"{len(executed.cells)}: rebuild both with `make notebooks`")
    for cell, student in zip(executed.cells, release.cells):
        if is_solution(cell) or is_grade(cell):
            cell.source = student.source
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return executed


def check_built_from(notebook: nbformat.NotebookNode, chapter_source: Path) -> None:
    """Raise ValueError unless `notebook`'s cells after the badges and Colab cell are `chapter_source`'s, so that an
    executed copy never runs an older instructor notebook under the current source's hash."""
    from .build import parse

    expected = [cell.source for cell in parse(chapter_source.read_text(), chapter_source.name)]
    if [cell.source for cell in notebook.cells[2:]] != expected:
        raise ValueError(f"the instructor notebook of {chapter_source.stem} is older than {chapter_source}: "
                         "run `make notebooks` first")


def write_executed(chapter: str, course_root: Path, sources: Path, out_dir: Path, timeout: int = TIMEOUT) -> Path:
    """Run one chapter's instructor notebook and write its readable executed copy; returns the copy's path."""
    from nbclient import NotebookClient

    source_nb = course_root / "source" / chapter / f"{chapter}.ipynb"
    nb = nbformat.read(source_nb, as_version=4)
    check_built_from(nb, sources / f"{chapter}.py")
    env = {**os.environ, "PYTHONHASHSEED": "0", "HF_HUB_OFFLINE": "1"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(source_nb.parent)}})
    client.execute(env=env)
    release = nbformat.read(course_root / "release" / chapter / f"{chapter}.ipynb", as_version=4)
    copy = readable_copy(nb, release)
    copy.metadata = {"kernelspec": nb.metadata.get("kernelspec", {}), "language_info": {"name": "python"},
                     SOURCE_HASH_KEY: source_hash(sources / f"{chapter}.py")}
    out = out_dir / f"{chapter}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(copy, out)
    return out


def main(argv: list[str] | None = None) -> None:
    from .build import chosen_sources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="course", type=Path)
    parser.add_argument("--course-root", default="notebooks", type=Path)
    parser.add_argument("--out", default="notebooks/executed", type=Path)
    parser.add_argument("--only", nargs="*", default=None, help="chapters by file stem or number; default all")
    args = parser.parse_args(argv)
    for source in chosen_sources(sorted(args.sources.glob("*.py")), args.only):
        print(write_executed(source.stem, args.course_root, args.sources, args.out))


if __name__ == "__main__":
    main()
