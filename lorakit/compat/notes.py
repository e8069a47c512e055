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


_announced: set[str] = set()


def announce(message: str, once: bool = False) -> None:
    """Tell the learner about a choice lorakit made for them (fallbacks, substitutions). once=True: only the first
    time in this process, for a fact of the machine that every run would repeat (a chapter trains many times)."""
    if once and message in _announced:
        return
    _announced.add(message)
    log.info(message)
