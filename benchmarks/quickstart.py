"""Time the quickstart end to end as a learner runs it: `lorakit train --recipe quickstart` in a fresh process.

Budget (issue: quickstart ≤ 60 s on 2 CPU cores). Prints the wall time of each repeat, the median and its ratio to the
budget. Usage: python benchmarks/quickstart.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", default="quickstart")
    args = parser.parse_args()
    lorakit = Path(sys.executable).parent / "lorakit"
    times = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            proc = subprocess.run([str(lorakit), "train", "--recipe", args.recipe, "--output-dir", out],
                                  capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
            elapsed = time.perf_counter() - start
            if proc.returncode:
                sys.exit(f"lorakit train failed:\n{proc.stderr[-3000:]}")
            summary = next(line for line in proc.stdout.splitlines() if line.startswith(f"{args.recipe}:"))
            times.append(elapsed)
            print(f"run {repeat + 1}: {elapsed:.1f} s wall  | {summary}")
    median = statistics.median(times)
    print(f"median {median:.1f} s over {len(times)} runs; budget {BUDGET_S:.0f} s; ratio {median / BUDGET_S:.2f} "
          f"({'within' if median <= BUDGET_S else 'OVER'} budget)")


if __name__ == "__main__":
    main()
