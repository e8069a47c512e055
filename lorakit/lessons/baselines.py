"""The two losses a lesson reads a run against: the base model's, before training, and uniform guessing's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Baselines:
    """A run's reference losses on its own eval rows: `base_model` (the adapter switched off) and `uniform` (ln V,
    every token of a `vocab_size` vocabulary equally likely)."""

    base_model: float
    uniform: float
    vocab_size: int

    def lines(self) -> dict[str, float]:
        """The two losses labelled for a plot's `baselines=` (`compare_train_losses`, `plot_losses`)."""
        return {f"uniform ln {self.vocab_size} = {self.uniform:.2f}": self.uniform,
                f"base model eval {self.base_model:.2f}": self.base_model}


def baselines_of(run: Any) -> Baselines:
    """The base model's eval loss on the eval rows of `run` (a causal-LM `TrainResult` trained on its recipe's own
    data, as `lorakit.train` loads it when given none), measured on the run's model with its adapter switched off,
    and uniform guessing's loss over the run's tokenizer."""
    from ..evaluation.metrics import eval_loss, uniform_loss

    if run.recipe.task != "causal_lm":
        raise ValueError(f"run must be a causal_lm run (its loss is per token), got task {run.recipe.task!r}")
    data = run.recipe.load_data(run.tokenizer)
    with run.model.disable_adapter():
        base = eval_loss(run.model, data)
    return Baselines(base_model=base, uniform=uniform_loss(run.tokenizer), vocab_size=len(run.tokenizer))
