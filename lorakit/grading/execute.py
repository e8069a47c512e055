"""Run a notebook cell by cell (inside the sandbox): `python -m lorakit.grading.execute IN OUT --timeout S`.

Each code cell gets `--timeout` seconds. When a cell runs past it or kills the kernel (os._exit, out of memory), every
process the notebook started is killed, a fresh kernel re-runs the cells that ran cleanly before, and execution goes on
with the next cell: only the cell that caused it loses. Each code cell's outcome ("ok", "error", "timeout", "died")
is written to its metadata `lorakit.outcome`. Outputs are capped per cell. Everything this writes is produced next to
the student's code, so the grader reads it as untrusted data.
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_OUTPUT_CHARS = 100_000
SANDBOXED_ENV = "LORAKIT_SANDBOXED"


class CappedClient(NotebookClient):
    """NotebookClient that keeps at most MAX_OUTPUT_CHARS of output per cell (huge outputs are dropped, not held)."""

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        size = sum(len(str(out)) for out in outs)
        if size > MAX_OUTPUT_CHARS:
            if not any(out.get("name") == "lorakit-capped" for out in outs):
                outs.append(nbformat.v4.new_output("stream", name="stdout", text="[output cut: too long]\n"))
                outs[-1]["name"] = "lorakit-capped"
            return None
        return super().output(outs, msg, display_id, cell_index)


def kill_others() -> None:
    """Kill every other process of the sandbox (in its own PID namespace: the kernel and anything it forked)."""
    if os.environ.get(SANDBOXED_ENV) != "1":
        return  # outside a sandbox (grading with sandbox="warn") kill(-1) would reach the grader's own processes
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass


def outcome(cell: Any) -> str:
    return "error" if any(out.get("output_type") == "error" for out in cell.get("outputs", [])) else "ok"


def run(notebook: Any, timeout: int) -> None:
    """Execute `notebook` in place, restarting the kernel after a timeout or a kernel death."""
    pending = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    clean: list[int] = []
    while pending:
        before = len(pending)
        client = CappedClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                              interrupt_on_timeout=False, shutdown_kernel="immediate", record_timing=False,
                              resources={"metadata": {"path": os.getcwd()}})
        try:
            with client.setup_kernel():
                for index in clean:  # a fresh kernel: bring back what the earlier good cells defined
                    replay = nbformat.from_dict(notebook.cells[index])
                    try:
                        client.execute_cell(replay, index, store_history=False)
                    except (CellTimeoutError, DeadKernelError):
                        break
                while pending:
                    index = pending.pop(0)
                    cell = notebook.cells[index]
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        cell.metadata["lorakit"] = {"outcome": "timeout"}
                        break
                    except DeadKernelError:
                        cell.metadata["lorakit"] = {"outcome": "died"}
                        break
                    cell.metadata["lorakit"] = {"outcome": outcome(cell)}
                    if outcome(cell) == "ok":
                        clean.append(index)
        except (CellTimeoutError, DeadKernelError, RuntimeError):
            pass  # the kernel could not start or died while shutting down: the next round starts a fresh one
        finally:
            kill_others()
        if len(pending) == before:  # no kernel would start: the rest cannot run
            for index in pending:
                notebook.cells[index].metadata["lorakit"] = {"outcome": "not run"}
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--timeout", type=int, required=True)
    args = parser.parse_args(argv)
    notebook = nbformat.read(args.notebook, as_version=4)
    run(notebook, args.timeout)
    nbformat.write(notebook, args.output)


if __name__ == "__main__":
    main()
