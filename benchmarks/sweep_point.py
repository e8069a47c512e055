"""Time one widget sweep point (default SweepSettings, built-in model, CPU) end to end.

Budget (issue: ≤ 10 s per point on 2 cores). Prints each point's total and training seconds, the median, and the ratio
of training time to total (the rest is overhead: copying the base, building the adapter and Trainer, evaluation).
Usage: python benchmarks/sweep_point.py [--points 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from lorakit.widgets import Sweep, SweepSettings

BUDGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=5)
    args = parser.parse_args()
    sweep = Sweep()  # loads the base model and data once, as the panel does
    totals, ratios = [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.points):
            run = sweep.run(SweepSettings(r=16 + i), output_dir=out)  # distinct settings: no cache hits
            totals.append(run.seconds)
            ratios.append(run.train_seconds / run.seconds)
            print(f"point {i + 1}: {run.seconds:.2f} s total, {run.train_seconds:.2f} s training, eval loss "
                  f"{run.eval_loss:.3f}")
    median = statistics.median(totals)
    print(f"median {median:.2f} s per point (budget {BUDGET_S:.0f} s, ratio {median / BUDGET_S:.2f}); "
          f"training / total = {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
