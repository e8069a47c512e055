"""A pytest plugin for nbval runs: a notebook cell that writes to stderr fails, as library noise a learner would see.

Loaded with `-p tests.nbval_quiet` (the Makefile's nbval run and tests/course/test_notebooks.py). nbval keeps each executed
cell's outputs in `item.test_outputs`; a passing cell with a stderr stream among them is reported as failed with
that text, so a warning that appears in a lesson (as bitsandbytes' packed-kernel autograd warning once did, the sign
of wrong gradients) stops CI instead of sitting in the notebook.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    outputs = getattr(item, "test_outputs", None)  # only nbval's cell items have it
    if call.when == "call" and report.passed and outputs:
        noise = "".join(out.get("text", "") for out in outputs
                        if out.get("output_type") == "stream" and out.get("name") == "stderr")
        if noise:
            report.outcome = "failed"
            report.longrepr = f"the cell wrote to stderr (noise a learner would see in the lesson):\n{noise[:4000]}"
    return report
