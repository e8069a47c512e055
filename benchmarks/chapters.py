"""Time each chapter notebook executed top to bottom in a fresh kernel, as a learner's "Run all" does.

Budget (issue: each chapter ≤ 3 min on 2 CPU cores). Runs the instructor versions (notebooks/source, with solutions,
so every cell runs) in a temporary copy of the chapter folder, prints each chapter's wall time and its ratio to the
budget, and its slowest cell.

Usage: python benchmarks/chapters.py [--only 03_learning_rate ...] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BUDGET_S = 180.0
SOURCE = Path(__file__).resolve().parents[1] / "notebooks" / "source"


def run_chapter(folder: Path, timeout: int) -> tuple[float, float, int]:
    """(wall seconds, slowest cell seconds, slowest cell index) for the chapter's notebook."""
    notebook_path = next(folder.glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        notebook = nbformat.read(notebook_path, as_version=4)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}},
                                record_timing=True)
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
    return wall, slowest, index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="chapter folder names (default: all)")
    parser.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    folders = sorted(p for p in SOURCE.iterdir() if p.is_dir() and (not args.only or p.name in args.only))
    worst = 0.0
    for folder in folders:
        wall, slowest, index = run_chapter(folder, args.timeout)
        worst = max(worst, wall)
        print(f"{folder.name:22s} {wall:6.1f} s  ratio {wall / BUDGET_S:.2f}  slowest cell #{index}: {slowest:.1f} s",
              flush=True)
    print(f"slowest chapter {worst:.1f} s; budget {BUDGET_S:.0f} s per chapter "
          f"({'all within' if worst <= BUDGET_S else 'OVER'}); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
