"""The one reader of a Trainer's log history (`trainer.state.log_history`, `TrainResult.log_history`).

Each entry is a dict logged at some point of training: train entries carry "loss" (and "grad_norm"), eval entries
"eval_loss"; every entry has "step" (the optimizer step) and "epoch" (a float). Callers choose the x axis
explicitly: `series(history, "eval_loss", axis="epoch")`.
"""

from __future__ import annotations

from typing import Any

AXES = ("step", "epoch")


def history_of(run: Any) -> list[dict[str, float]]:
    """The log history of a `TrainResult` (or of anything with `.log_history`), or the list of log dicts itself;
    ValueError for anything else."""
    history = getattr(run, "log_history", run)
    if not isinstance(history, (list, tuple)) or not all(isinstance(h, dict) for h in history):
        raise ValueError("run must be a TrainResult or a list of log dicts (trainer.state.log_history)")
    return list(history)


def series(history: Any, key: str, axis: str = "step") -> list[tuple[float, float]]:
    """(x, value) for every entry that logged `key` ("loss", "eval_loss", "grad_norm", ...), x being the entry's
    "step" or "epoch" (`axis`), in logging order. Entries without that axis value are skipped."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {list(AXES)}, got {axis!r}")
    return [(h[axis], h[key]) for h in history_of(history) if key in h and axis in h]


def logged_values(history: Any, key: str) -> list[float]:
    """The values of `key` in logging order (e.g. DPO's "rewards/margins", or "eval_rewards/margins")."""
    return [h[key] for h in history_of(history) if key in h]
