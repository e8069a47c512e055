"""Pitfalls reproduced (chapter 5): each one re-created on the built-in model with plain `lorakit.train` calls, for
the chapter to detect with `lorakit.evaluation.diagnose` and then fix.
"""

from __future__ import annotations

from typing import Any

from ..config.choices import check_choice
from .diagnostics import NanGuardCallback

PITFALLS = ("flat", "overfit", "nan", "forgetting", "unmasked")


def reproduce(pitfall: str, output_dir: str = "runs/pitfalls", seed: int = 42, **changes: Any) -> Any:
    """Re-create one pitfall on the built-in model with plain lorakit calls. Returns the `TrainResult`.

    | pitfall | settings (everything else: the quickstart recipe) |
    |---|---|
    | flat | learning_rate 1e-6 (200× too low), 60 steps |
    | overfit | the classification recipe on 16 rows, 16 epochs, constant LR 2e-3, no dropout, no warmup |
    | nan | fp16 weights, LR 1, no gradient clipping, with `NanGuardCallback` |
    | forgetting | the domain recipe (r=64) at LR 3e-3 for 60 steps |
    | unmasked | instruction data with `mask_prompt=False`, LR 1e-3, 150 steps |

    `changes` (any `lorakit.train` keyword, e.g. `max_grad_norm=0.3`) replace those settings: the same run with
    one fix, for the chapter's reruns.
    """
    from ..training.pipeline import train

    check_choice("pitfall", pitfall, PITFALLS)
    recipe, settings = SETTINGS[pitfall]
    settings = dict(settings, gradient_checkpointing=False, save_strategy="no", seed=seed,
                    output_dir=f"{output_dir}/{pitfall}")
    if pitfall == "nan":
        from ..models.load import load_base

        settings["model"], settings["tokenizer"] = load_base("tiny", dtype="fp16")
        settings["callbacks"] = [NanGuardCallback()]
    if pitfall == "unmasked":
        from ..data.datasets import load_dataset
        from ..models.load import load_tokenizer

        settings["data"] = load_dataset("instruction", load_tokenizer("tiny"), n_train=1200, n_eval=48, seed=0,
                                        mask_prompt=False)
    return train(recipe, **{**settings, **changes})


SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "flat": ("quickstart", dict(learning_rate=1e-6, max_steps=60, n_train=480, n_eval=32, logging_steps=4)),
    "overfit": ("classification", dict(learning_rate=2e-3, lr_scheduler_type="constant", lora_dropout=0.0, n_train=16,
                                       n_eval=32, num_train_epochs=16, warmup_ratio=0.0, logging_steps=2)),
    "nan": ("quickstart", dict(learning_rate=1.0, max_grad_norm=0.0, max_steps=40, n_train=320, n_eval=16,
                               warmup_ratio=0.0, logging_steps=1)),
    "forgetting": ("domain", dict(learning_rate=3e-3, max_steps=60, n_eval=32, logging_steps=20)),
    "unmasked": ("quickstart", dict(learning_rate=1e-3, max_steps=150, logging_steps=10)),
}
