"""Feedback for a student: the graded notebook only, as HTML, with no hidden check in it.

Hidden-test blocks are cut from test cells; an output is dropped when it quotes a hidden-check line (e.g. a final
`print("\\n".join(In))`), and only text and images are kept (no HTML or scripts). Under each exercise a line says
what was checked: "checked N secret cases, M matched". No file of the working folder is ever copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from .verdicts import Verdict

KEPT_DATA = ("text/plain", "image/png")
MAX_TEXT = 100_000


def hidden_lines(cell_source: str) -> tuple[str, list[str]]:
    """(the source without hidden blocks, the non-trivial hidden lines)."""
    kept, hidden, inside = [], [], False
    for line in cell_source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif inside:
            if len(line.strip()) >= 6:
                hidden.append(line.strip())
        else:
            kept.append(line)
    return "\n".join(kept).rstrip(), hidden


def output_text(output: Any) -> str:
    parts = [str(output.get("text", "")), str(output.get("evalue", "")), *map(str, output.get("traceback", []))]
    parts += [str(value) for value in output.get("data", {}).values()]
    return "\n".join(parts)


def clean_outputs(outputs: list[Any], secrets: list[str]) -> list[Any]:
    kept, total = [], 0
    for output in outputs:
        if total > MAX_TEXT:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text="[more output cut]\n"))
            break
        if any(line in output_text(output) for line in secrets):
            continue
        if isinstance(output.get("text"), str) and len(output["text"]) > MAX_TEXT:
            output["text"] = output["text"][:MAX_TEXT] + "\n[output cut: too long]\n"
        total += len(output_text(output))
        if output.get("output_type") == "error":
            output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        if "data" in output:
            output["data"] = {k: v for k, v in output["data"].items() if k in KEPT_DATA}
            if not output["data"]:
                continue
        kept.append(output)
    return kept


def feedback_notebook(executed: Any, test_cells: dict[str, int], verdicts: dict[str, Verdict]) -> Any:
    """The executed notebook made safe to hand back, with a hidden-check summary under each exercise."""
    notebook = nbformat.from_dict(executed)
    secrets = [line for cell in notebook.cells if cell.cell_type == "code" for line in hidden_lines(cell.source)[1]]
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.source = hidden_lines(cell.source)[0]
            cell.outputs = clean_outputs(cell.get("outputs", []), secrets)
        cell.metadata = {}
        cells.append(cell)
        for exercise, where in test_cells.items():
            if where == index:
                verdict = verdicts.get(exercise)
                text = (f"**Hidden check `{exercise}`**: checked {verdict.cases} secret cases, {verdict.matched} matched "
                        f"({verdict.score:g} of {verdict.points:g} points)." if verdict else
                        f"**Hidden check `{exercise}`**: not graded automatically.")
                cells.append(nbformat.v4.new_markdown_cell(text))
    notebook.cells = cells
    notebook.metadata = {"kernelspec": executed.metadata.get("kernelspec", {}), "language_info": {"name": "python"}}
    return notebook


def write_html(notebook: Any, path: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="classic").from_notebook_node(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def redact_hidden_tests(cell: Any) -> None:
    """For nbgrader's own `generate_feedback`: remove a cell's hidden tests and tracebacks (which quote them)."""
    if "BEGIN HIDDEN TESTS" not in cell.source:
        return
    cell.source = hidden_lines(cell.source)[0]
    for output in cell.get("outputs", []):
        if isinstance(output.get("text"), str) and len(output["text"]) > MAX_TEXT:
            output["text"] = output["text"][:MAX_TEXT] + "\n[output cut: too long]\n"
        total += len(output_text(output))
        if output.get("output_type") == "error":
            output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}",
                                   "(no traceback: this cell runs hidden tests)"]


def feedback_preprocessors() -> list[type]:
    """nbgrader's feedback preprocessors plus one removing hidden tests (the course config installs them, so plain
    `nbgrader generate_feedback` is safe too)."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor

    class RedactHiddenTests(NbGraderPreprocessor):
        def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
            redact_hidden_tests(cell)
            return cell, resources

    return [GetGrades, RedactHiddenTests, CSSHTMLHeaderPreprocessor]
