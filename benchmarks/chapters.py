"""Time each chapter notebook executed top to bottom in a fresh kernel, as a learner's "Run all" does.

Budgets (issue #15, 2 CPU cores): each chapter ≤ 3 min, the whole course ≤ 20 min, and each chapter's kernel under
Binder's 2 GiB of resident memory. Runs the instructor versions (notebooks/source, with solutions, so every cell runs)
in a temporary copy of the chapter folder and prints each chapter's wall time, its slowest cell and the peak resident
memory of the kernel (with any processes it starts), each with its ratio to the budget, and which cells showed stderr
(library noise a learner would see).

The peak is sampled from outside every 50 ms (psutil), because lorakit resets the kernel's own high-water mark before
each training run to report per-run peaks.

With `--release` it runs the student versions (notebooks/release) instead, untouched, as a learner's first "Run
All" before answering anything: every chapter must finish, each unanswered exercise showing as one line ("○ ...";
lorakit.lessons.self_checks). A chapter that stops prints the cell and its error instead of timings.

Usage: python benchmarks/chapters.py [--release] [--only 03_learning_rate ...] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

BUDGET_S = 180.0
COURSE_BUDGET_S = 1200.0
MEMORY_BUDGET_BYTES = 2 * 2**30
SAMPLE_EVERY_S = 0.05
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


class PeakChildMemory:
    """Samples the summed resident memory of this process's descendants (the kernel) in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(SAMPLE_EVERY_S):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)

    def __enter__(self) -> "PeakChildMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_chapter(folder: Path, timeout: int) -> tuple[float, float, int, int, list[int], int]:
    """(wall seconds, slowest cell seconds, slowest cell index, kernel peak RSS bytes, indices of the cells that
    showed stderr, number of one-line notes of an unanswered exercise) for the chapter's notebook."""
    notebook_path = next(folder.glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        notebook = nbformat.read(notebook_path, as_version=4)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}},
                                record_timing=True)
        with PeakChildMemory() as memory:
            start = time.perf_counter()
            client.execute()
            wall = time.perf_counter() - start
    slowest, index = 0.0, -1
    for i, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "shell.execute_reply" in timing and "iopub.execute_input" in timing:
            seconds = (datetime.fromisoformat(timing["shell.execute_reply"].rstrip("Z"))
                       - datetime.fromisoformat(timing["iopub.execute_input"].rstrip("Z"))).total_seconds()
            if seconds > slowest:
                slowest, index = seconds, i
    noisy = [i for i, cell in enumerate(notebook.cells)
             if any(out.get("name") == "stderr" for out in cell.get("outputs", []))]
    unanswered = sum(out.get("text", "").count("○ ") for cell in notebook.cells for out in cell.get("outputs", []))
    return wall, slowest, index, memory.peak_bytes, noisy, unanswered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--release", action="store_true", help="run the untouched student versions")
    parser.add_argument("--only", nargs="*", help="chapter folder names (default: all)")
    parser.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    notebooks = NOTEBOOKS / ("release" if args.release else "source")
    folders = sorted(p for p in notebooks.iterdir() if p.is_dir() and (not args.only or p.name in args.only))
    worst, total, worst_memory, stopped = 0.0, 0.0, 0, []
    for folder in folders:
        try:
            wall, slowest, index, peak, noisy, unanswered = run_chapter(folder, args.timeout)
        except CellExecutionError as error:
            stopped.append(folder.name)
            print(f"{folder.name:22s} STOPPED: {str(error).strip().splitlines()[-1]}", flush=True)
            continue
        worst, total, worst_memory = max(worst, wall), total + wall, max(worst_memory, peak)
        print(f"{folder.name:22s} {wall:6.1f} s  ratio {wall / BUDGET_S:.2f}  slowest cell #{index}: {slowest:.1f} s  "
              f"kernel peak {peak / 2**20:,.0f} MiB (ratio {peak / MEMORY_BUDGET_BYTES:.2f})  "
              f"cells with stderr: {noisy or 'none'}  unanswered-exercise lines: {unanswered}", flush=True)
    print(f"{len(folders) - len(stopped)} of {len(folders)} chapters ran top to bottom"
          + (f"; stopped: {stopped}" if stopped else ""))
    print(f"slowest chapter {worst:.1f} s, budget {BUDGET_S:.0f} s ({'within' if worst <= BUDGET_S else 'OVER'}); "
          f"all chapters {total:.1f} s, budget {COURSE_BUDGET_S:.0f} s (ratio {total / COURSE_BUDGET_S:.2f}); "
          f"largest kernel {worst_memory / 2**20:,.0f} MiB, budget {MEMORY_BUDGET_BYTES / 2**20:,.0f} MiB "
          f"({'within' if worst_memory < MEMORY_BUDGET_BYTES else 'OVER'}); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
