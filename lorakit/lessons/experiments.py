"""Graded experiments: a learner's choice of settings, trained and measured by lorakit's own code on a seed the
grader picks (`lorakit.grading.experiments`), so the grade rests on what the settings do, not on a number the
learner's notebook reports. The learner runs the same experiment on the public seed in their notebook."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..config.choices import LLAMA_LINEAR_MODULES

PUBLIC_SEED = 0


@dataclass(frozen=True)
class BudgetRun:
    """Reach a target eval loss on the built-in tiny model within a parameter and step budget (chapter 3)."""

    target_eval_loss: float = field(default=3.0, metadata={"help": "the held-out loss to reach or beat"})
    max_trainable: int = field(default=150_000, metadata={"help": "at most this many trainable LoRA parameters"})
    steps: int = field(default=40, metadata={"help": "optimizer steps of the run (batches of 8)"})
    n_train: int = field(default=320, metadata={"help": "training rows, drawn with the run's seed"})
    n_eval: int = field(default=64, metadata={"help": "held-out rows, drawn with the run's seed"})
    rank_range: tuple[int, int] = field(default=(1, 64), metadata={"help": "allowed r, inclusive"})
    lr_range: tuple[float, float] = field(default=(1e-6, 0.1), metadata={"help": "allowed learning rate, inclusive"})


@dataclass(frozen=True)
class Outcome:
    """What one experiment run showed: whether it met its target, and one line saying why."""

    passed: bool
    line: str
    eval_loss: float | None = None
    trainable: int | None = None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def settings_problem(settings: Any, spec: BudgetRun = BudgetRun()) -> str:
    """'' when `settings` is a valid choice for `budget_run`; otherwise one line naming the field and what is
    allowed. Only plain data is accepted: a dict with exactly r (int), target_modules (list of str) and
    learning_rate (float)."""
    keys = ("r", "target_modules", "learning_rate")
    if type(settings) is not dict or sorted(settings) != sorted(keys):
        return f"settings must be a dict with exactly the keys {list(keys)}"
    r, modules, lr = settings["r"], settings["target_modules"], settings["learning_rate"]
    low, high = spec.rank_range
    if type(r) is not int or not low <= r <= high:
        return f"r must be a whole number from {low} to {high}, got {_shown(r)}"
    if type(modules) is not list or not modules or any(type(m) is not str for m in modules) \
            or len(set(modules)) != len(modules) or not set(modules) <= set(LLAMA_LINEAR_MODULES):
        return f"target_modules must be a list of distinct names from {list(LLAMA_LINEAR_MODULES)}, got {_shown(modules)}"
    low_lr, high_lr = spec.lr_range
    if type(lr) is not float or not math.isfinite(lr) or not low_lr <= lr <= high_lr:
        return f"learning_rate must be a float from {low_lr:g} to {high_lr:g}, got {_shown(lr)}"
    return ""


def budget_run(settings: Any, seed: int = PUBLIC_SEED, spec: BudgetRun = BudgetRun()) -> Outcome:
    """Train the tiny model with the learner's `settings` (r, alpha = 2r, target_modules, learning_rate; everything
    else the quickstart recipe's) for `spec.steps` steps on rows drawn with `seed`; pass when the trainable
    parameters fit the budget and the final eval loss reaches the target."""
    problem = settings_problem(settings, spec)
    if problem:
        return Outcome(False, problem)
    from ..training.pipeline import train

    with tempfile.TemporaryDirectory(prefix="lorakit-experiment-") as scratch:
        run = train("quickstart", r=settings["r"], lora_alpha=2 * settings["r"],
                    target_modules=list(settings["target_modules"]), learning_rate=float(settings["learning_rate"]),
                    seed=seed, max_steps=spec.steps, n_train=spec.n_train, n_eval=spec.n_eval,
                    gradient_checkpointing=False, save_strategy="no", output_dir=scratch, progress=False)
    loss, trainable = run.final_eval_loss, run.trainable_params
    if trainable > spec.max_trainable:
        return Outcome(False, f"{trainable:,} trainable parameters, over the budget of {spec.max_trainable:,}",
                       loss, trainable)
    met = math.isfinite(loss) and loss <= spec.target_eval_loss
    verb = "reaches" if met else "misses"
    return Outcome(met, f"eval loss {loss:.3f} on seed {seed} with {trainable:,} trainable parameters: {verb} the "
                        f"target of {spec.target_eval_loss:g}", loss, trainable)
