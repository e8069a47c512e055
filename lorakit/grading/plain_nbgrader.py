"""What the course config installs into plain nbgrader: `nbgrader autograde` refuses, pointing at `lorakit grade`.

nbgrader's autograde would run the visible checks unsandboxed, with the demo cells, and grade differently from
`lorakit grade`. The course config sets `c.Autograde.exporter_class = refusing_exporter()`: the refusal comes when
autograde builds its exporter, before it touches a folder or the gradebook. Other nbgrader commands are unaffected.
"""

from __future__ import annotations

from typing import Any

REFUSAL = ("nbgrader autograde does not grade this course: run `lorakit grade COURSE ASSIGNMENT` instead "
           "(sandboxed, hidden checks on secret inputs; it writes autograded/ and the gradebook for formgrader)")


def refusing_exporter() -> type:
    """An nbconvert exporter class whose construction stops nbgrader autograde with REFUSAL (one line, exit 1;
    formgrader's Autograde button gets it as its error)."""
    from nbconvert.exporters import NotebookExporter

    class RefusePlainAutograde(NotebookExporter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise SystemExit(REFUSAL)

    return RefusePlainAutograde
