"""Run one notebook in a fresh scratch folder under the sandbox and read back what it left, as untrusted data."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from . import bounds, sandbox
from .collector import RESULTS_ENV, SEED_ENV

MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_RESULTS_BYTES = 20 * 2**20


@dataclass
class RunResult:
    """The executed notebook (None if none came back), the collected result lines, and what went wrong."""

    executed: Any
    results: str
    problem: str = ""


def read_untrusted(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes (never following a link the sandbox planted), None if absent, not regular or too big."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1)[:limit]


def run_notebook(notebook: Any, timeout: int, seed: str, mode: str, limits: sandbox.Limits,
                 budget_s: int | None = None) -> RunResult:
    """Execute `notebook` cell by cell (`timeout` s per cell) in a scratch folder holding only it; then delete it.

    budget_s: wall seconds for the whole run (a student's, `classroom.student_budget`); None (the instructor's
    reference run): two cell timeouts per code cell. In the sandbox, the run's processes share one memory cap and
    its files one disk cap where `bounds` can make them (root)."""
    scratch_root = Path(tempfile.mkdtemp(prefix="lorakit-grade-"))
    scratch = scratch_root / "work"
    scratch.mkdir()
    sandboxed = mode == "require"
    try:
        with (bounds.sized_scratch(scratch, limits.disk_mb * 2**20) if sandboxed else nullcontext(False),
              bounds.memory_group(int(limits.total_memory_gb * 2**30)) if sandboxed else nullcontext(None) as group):
            return _run(notebook, scratch, scratch_root, timeout, seed, sandboxed, limits, budget_s, group)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def _run(notebook: Any, scratch: Path, scratch_root: Path, timeout: int, seed: str, sandboxed: bool,
         limits: sandbox.Limits, budget_s: int | None, group: Path | None) -> RunResult:
    nbformat.write(notebook, scratch / "notebook.ipynb")
    runner = ["-m", "lorakit.grading.execute", "notebook.ipynb", "executed.ipynb", "--timeout", str(timeout)]
    if sandboxed:
        sandbox.prepare_scratch(scratch, limits.uid)
        env = {RESULTS_ENV: f"{sandbox.SCRATCH}/results.jsonl", SEED_ENV: seed}
        argv, cwd, full_env = sandbox.command(scratch, [sys.executable, *runner], env, limits.uid), None, None
    else:
        full_env = {key: value for key, value in os.environ.items() if not key.startswith("LORAKIT_GRADING")}
        full_env.update({RESULTS_ENV: str(scratch / "results.jsonl"), SEED_ENV: seed,
                         "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        argv, cwd = [sys.executable, *runner], scratch
    code_cells = sum(1 for cell in notebook.cells if cell.cell_type == "code")
    overall = budget_s if budget_s is not None else timeout * (code_cells + 1) * 2 + 120

    def start_bounded() -> None:  # in the child, before bwrap: inherited by everything the student starts
        limits.apply()
        bounds.join(group)

    with open(scratch_root / "stderr.txt", "wb") as log:  # outside the sandbox's view; capped by file_mb
        process = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=log,
                                   preexec_fn=start_bounded, start_new_session=True)
        try:
            process.wait(timeout=overall)
            problem = ""
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            problem = f"the notebook ran past its budget of {overall} s and was stopped"
    if bounds.killed_for_memory(group):
        problem = "; ".join(filter(None, [problem, f"its processes together reached the memory cap of "
                                                   f"{limits.total_memory_gb:g} GB: one was stopped"]))
    with open(scratch_root / "stderr.txt", "rb") as log:  # only its last 4000 bytes are ever read
        log.seek(max(0, os.fstat(log.fileno()).st_size - 4000))
        stderr = log.read(4000)
    results = (read_untrusted(scratch / "results.jsonl", MAX_RESULTS_BYTES) or b"").decode("utf-8", "replace")
    raw = read_untrusted(scratch / "executed.ipynb", MAX_NOTEBOOK_BYTES)
    try:
        executed = nbformat.reads(raw.decode("utf-8"), as_version=4) if raw else None
    except Exception:  # noqa: BLE001 - whatever came back is untrusted
        executed = None
    if executed is None and not problem:
        last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {process.returncode}"]
        problem = f"the notebook runner stopped before finishing (exit {process.returncode}: {last[0][:200]})"
    return RunResult(executed, results, problem)
