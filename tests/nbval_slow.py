"""A pytest plugin for the Makefile's serial run: nbval's notebook cells count as slow tests.

Loaded with `-p tests.nbval_slow` beside `-m slow`: the fast tier has already run in parallel workers, and the
chapters under nbval run serially with the slow tests, each notebook's cells in order in one kernel.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbCell


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, IPyNbCell):
            item.add_marker(pytest.mark.slow)
