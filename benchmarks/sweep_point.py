"""Time one sweep point of the widget panel end to end: default `SweepSettings` (r=16, alpha=2r, all-linear, 30 steps
of batch 8 on the instruction set, eval on 32 rows at the end), built-in model, CPU.

Budget (issue): ≤ 10 s per point on 2 cores. Each point is a Train click on a `SweepPanel` (background off): recipe
validation, LoRA injection into the shared base, `lorakit.train` (Trainer set-up, 30 steps, eval, adapter save into
a temporary folder), unload, memory estimate, the live plot redraws and the runs table. The cache is cleared between
points so each one trains. Prints each point, the median, and training time / total (the rest is overhead).

Usage: python benchmarks/sweep_point.py [--points 5] [--core]   (--core: time `Sweep.run` without the widgets)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

BUDGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--core", action="store_true", help="time Sweep.run only (no widgets, no plotting)")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")

    from lorakit.lessons.widgets import Sweep, SweepPanel, SweepSettings

    start = time.perf_counter()
    sweep = Sweep()  # loads the base model once, as the panel does
    panel = None if args.core else SweepPanel(sweep, background=False)
    print(f"set-up (imports, base model load, panel): {time.perf_counter() - start:.2f} s (once per notebook)")
    totals, trains = [], []
    for i in range(args.points):
        sweep.clear()  # so that the same default point trains again
        t0 = time.perf_counter()
        if panel is None:
            run = sweep.run(SweepSettings())
        else:
            panel.run_button.click()
            run = sweep.runs[-1]
        total = time.perf_counter() - t0
        assert run.error is None and run.steps == 30, (run.error, panel and panel.message.value)
        totals.append(total)
        trains.append(run.train_seconds)
        print(f"point {i + 1}: {total:.2f} s total, {run.train_seconds:.2f} s training, "
              f"{total - run.train_seconds:.2f} s overhead, eval loss {run.eval_loss:.3f}")
    median = statistics.median(totals)
    ratio = statistics.median(t / s for t, s in zip(trains, totals))
    verdict = "within" if median <= BUDGET_S else "OVER"
    print(f"median {median:.2f} s per point ({verdict} the {BUDGET_S:.0f} s budget); "
          f"training / total = {ratio:.2f} (overhead {1 - ratio:.0%}); {'core' if panel is None else 'panel'}, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
