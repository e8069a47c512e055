"""Names and text from students, made safe where lorakit writes them: student ids and the instructor's terminal."""

from __future__ import annotations

import re

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
