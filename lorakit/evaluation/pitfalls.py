"""Pitfalls reproduced (chapter 5): each one re-created on the built-in model with plain `lorakit.train` calls, for
the chapter to detect with `lorakit.evaluation.diagnose` and then fix.
"""

from __future__ import annotations

from typing import Any

from ..config.choices import check_choice
from .diagnostics import NanGuardCallback

PITFALLS = ("flat", "overfit", "nan", "forgetting", "unmasked")


def reproduce(pitfall: str, output_dir: str = "runs/pitfalls", seed: int = 42) -> Any:
    """Re-create one pitfall on the built-in model with plain lorakit calls. Returns the `TrainResult`.

    | pitfall | settings (everything else: the quickstart recipe) |
    |---|---|
    | flat | learning_rate 1e-6 (200× too low), 60 steps |
    | overfit | the classification recipe on 16 rows, 16 epochs, constant LR 2e-3, no dropout, no warmup |
    | nan | fp16 weights, LR 1, no gradient clipping, with `NanGuardCallback` |
    | forgetting | the domain recipe (r=64) at LR 3e-3 for 60 steps |
    | unmasked | instruction data with `mask_prompt=False`, LR 1e-3, 150 steps |
    """
    from ..training.pipeline import train

    check_choice("pitfall", pitfall, PITFALLS)
    common = dict(gradient_checkpointing=False, save_strategy="no", seed=seed, output_dir=f"{output_dir}/{pitfall}")
    if pitfall == "flat":  # a learning rate 200× too low
        return train("quickstart", learning_rate=1e-6, max_steps=60, n_train=480, n_eval=32, logging_steps=4, **common)
    if pitfall == "overfit":  # 16 rows of 6 intents, 16 epochs, a constant LR, no dropout: memorised, not learnt
        return train("classification", learning_rate=2e-3, lr_scheduler_type="constant", lora_dropout=0.0,
                     n_train=16, n_eval=32, num_train_epochs=16, warmup_ratio=0.0, logging_steps=2, **common)
    if pitfall == "nan":  # a learning rate of 1 without clipping, on fp16 weights
        from ..models.load import load_base

        model, tokenizer = load_base("tiny", dtype="fp16")
        return train("quickstart", model=model, tokenizer=tokenizer, learning_rate=1.0, max_grad_norm=0.0,
                     max_steps=40, n_train=320, n_eval=16, warmup_ratio=0.0, logging_steps=1,
                     callbacks=[NanGuardCallback()], **common)
    if pitfall == "forgetting":  # long, high-LR domain training
        return train("domain", learning_rate=3e-3, max_steps=60, n_eval=32, logging_steps=20, **common)
    from ..data.datasets import load_dataset
    from ..models.load import load_tokenizer  # "unmasked": the loss also trains on the prompt tokens

    data = load_dataset("instruction", load_tokenizer("tiny"), n_train=1200, n_eval=48, seed=0, mask_prompt=False)
    return train("quickstart", data=data, learning_rate=1e-3, max_steps=150, logging_steps=10, **common)
