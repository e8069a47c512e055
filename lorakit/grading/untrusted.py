"""Names, text and pasted images from students, made safe where lorakit writes them: student ids, the
instructor's terminal, and the attachments kept with a student's markdown."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

# ASCII letters, digits and _ . @ -, starting with a letter or digit: no glob or '+' (nbgrader's exchange separator),
# no quote, bracket, space or control character, so formgrader, paths and shells take the id as plain text.
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
ALLOWED_IDS = "1 to 64 ASCII letters, digits, _ . @ or -, starting with a letter or digit"


def printable(text: str) -> str:
    """`text` with every control or invisible character (C0, C1, ESC, DEL, bidi overrides, line breaks) escaped
    Python-style, e.g. '\\x1b', so a line about a student stays one line and no escape sequence reaches a terminal."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def id_problem(name: str) -> str:
    """'' when the folder name `name` can be a student id; otherwise the line that says why not (name escaped)."""
    if STUDENT_ID.fullmatch(name):
        return ""
    return f"folder name '{printable(name)}' is not a valid student id ({ALLOWED_IDS}); not graded, not recorded"


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
MAX_ATTACHMENT_BYTES = 2 * 2**20  # all of one cell's kept images together, decoded
ATTACHMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def image_attachments(cell: Any) -> dict[str, dict[str, str]]:
    """The attachments of a student's markdown cell that are plain base64 images (PNG, JPEG or GIF) under safe
    names, 2 MB in all; any other name, type, encoding or size is dropped."""
    given = cell.get("attachments") if isinstance(cell, dict) else None
    kept: dict[str, dict[str, str]] = {}
    total = 0
    for name, bundle in (given.items() if isinstance(given, dict) else []):
        if not isinstance(name, str) or not ATTACHMENT_NAME.fullmatch(name) or not isinstance(bundle, dict):
            continue
        for mime in IMAGE_TYPES:
            data = bundle.get(mime)
            try:
                size = len(base64.b64decode(data, validate=True)) if isinstance(data, str) else None
            except (binascii.Error, ValueError):
                size = None
            if size is not None and total + size <= MAX_ATTACHMENT_BYTES:
                kept[name], total = {mime: data}, total + size
                break
    return kept


def without_attachment_links(markdown: str) -> str:
    """`markdown` with every `attachment:` reference turned inert (for pages that show no student image): a pasted
    image becomes its alt text and a dead link instead of a reference the renderer would fail on."""
    return markdown.replace("attachment:", "attachment-not-shown:")
