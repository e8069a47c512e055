"""The `lorakit` logger: one line on stdout, `[lorakit] ...`, for each choice lorakit makes for the learner.

stdout, not stderr: these are notes, not errors (nbgrader zeroes cells with stderr).
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("lorakit")
if not log.handlers:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[lorakit] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def announce(message: str) -> None:
    """Tell the learner about a choice lorakit made for them (fallbacks, substitutions)."""
    log.info(message)
