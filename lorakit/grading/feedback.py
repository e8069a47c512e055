"""Feedback for a student: the graded notebook only, as HTML, with no hidden check and no student script in it.

The executed notebook is untrusted (the student's code ran beside it), so the page is rebuilt from plain fields:
code and markdown cells only, no metadata or attachments; hidden-test blocks are cut from test cells; an output is
dropped when it quotes a hidden-check line (e.g. a final `print("\\n".join(In))`), and only stream, error, text and
base64 PNG outputs are kept, without their metadata. Markdown's HTML goes through nbconvert's sanitiser with an
allow-list of text tags, so no script, event handler, image or frame from a student is live. Under each exercise a
line says what was checked: "checked N secret cases, M matched". No file of the working folder is ever copied.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from .untrusted import without_attachment_links
from .verdicts import Verdict

MAX_TEXT = 100_000
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
             "hr", "i", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
             "tr", "ul"]  # no img, style, form, frame or script; attributes: class, and a link's href (http, mailto)


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


def text(value: Any) -> str:
    """A notebook string field as a str ('' when it holds anything else)."""
    return value if isinstance(value, str) else ""


def output_text(output: Any) -> str:
    parts = [str(output.get("text", "")), str(output.get("evalue", "")), *map(str, output.get("traceback", []))]
    parts += [str(value) for value in output.get("data", {}).values()]
    return "\n".join(parts)


def plain_output(output: Any) -> Any | None:
    """A fresh output holding only the plain fields of `output` (None if nothing safe is left): stream text, an
    error's name and value, text/plain and base64 PNG data; no metadata, no execution count."""
    kind = output.get("output_type") if isinstance(output, dict) else None
    if kind == "stream":
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=text(output.get("text"))[:MAX_TEXT + 1])
    if kind == "error":
        ename, evalue = text(output.get("ename")), text(output.get("evalue"))
        return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
    data = output.get("data") if kind in ("display_data", "execute_result") else None
    if not isinstance(data, dict):
        return None
    kept = {"text/plain": text(data.get("text/plain"))[:MAX_TEXT + 1],
            "image/png": "".join(text(data.get("image/png")).split())}
    kept = {mime: value for mime, value in kept.items() if value}
    if "image/png" in kept and not BASE64.fullmatch(kept["image/png"]):
        del kept["image/png"]
    return nbformat.v4.new_output("display_data", data=kept) if kept else None


def clean_outputs(outputs: Any, secrets: list[str]) -> list[Any]:
    kept, total = [], 0
    for output in map(plain_output, outputs if isinstance(outputs, list) else []):
        if output is None or any(line in output_text(output) for line in secrets):
            continue
        if total > MAX_TEXT:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text="[more output cut]\n"))
            break
        if len(output.get("text", "")) > MAX_TEXT:
            output["text"] = output["text"][:MAX_TEXT] + "\n[output cut: too long]\n"
        total += len(output_text(output))
        kept.append(output)
    return kept


def hidden_check_line(exercise: str, verdict: Verdict | None) -> str:
    """The feedback's one line on an exercise's hidden check."""
    head = f"**Hidden check `{exercise}`**:"
    if verdict is None:
        return f"{head} not graded automatically."
    if verdict.forbidden_used:
        return (f"{head} your answer uses {', '.join(verdict.forbidden_used)}, which this exercise forbids "
                f"(0 of {verdict.points:g} points).")
    if verdict.cases:
        return (f"{head} checked {verdict.cases} secret cases, {verdict.matched} matched ({verdict.score:g} of "
                f"{verdict.points:g} points).")
    return f"{head} not run, no answer found (0 of {verdict.points:g} points)."


def feedback_notebook(executed: Any, test_cells: dict[str, int], verdicts: dict[str, Verdict]) -> Any:
    """The executed notebook made safe to hand back, with a hidden-check summary under each exercise."""
    given = executed.get("cells") if isinstance(executed.get("cells"), list) else []
    given = [(cell.get("cell_type"), text(cell.get("source")), cell.get("outputs")) if isinstance(cell, dict)
             else (None, "", None) for cell in given]
    secrets = [line for kind, source, _ in given if kind == "code" for line in hidden_lines(source)[1]]
    cells = []
    for index, (kind, source, outputs) in enumerate(given):
        if kind == "code":
            cells.append(nbformat.v4.new_code_cell(hidden_lines(source)[0], outputs=clean_outputs(outputs, secrets)))
        elif kind == "markdown":  # no student image is shown: a pasted one's reference would fail the page
            cells.append(nbformat.v4.new_markdown_cell(without_attachment_links(source)))
        for exercise, where in test_cells.items():
            if where == index:
                summary = hidden_check_line(exercise, verdicts.get(exercise))
                cells.append(nbformat.v4.new_markdown_cell(summary))
    return nbformat.v4.new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})


def write_html(notebook: Any, path: Path) -> Path:
    """`notebook` as HTML at `path`: nbconvert's classic template with `sanitize_html`, its sanitiser (bleach, through
    nbconvert's SanitizeHTML) given an allow-list that keeps markdown's and highlighted code's own tags."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    clean = SanitizeHTML(tags=SAFE_TAGS, attributes={"*": ["class"], "a": ["href", "title"]}).sanitize_html_tags
    exporter = HTMLExporter(template_name="classic", sanitize_html=True, filters={"clean_html": clean})
    body, _ = exporter.from_notebook_node(notebook)
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
