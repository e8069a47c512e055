"""The DPO stage: Direct Preference Optimisation with TRL on top of a finished SFT stage.

The reference policy of DPO must be the SFT model, not the raw base. So the SFT adapter is merged into the base
weights, a fresh LoRA adapter is trained with DPO on top, and TRL uses the adapter-disabled model (= the merged SFT
model) as the reference: one copy of the weights in memory, and the reference is exactly what DPO assumes.
`lorakit.training.pipeline.train_sft_then_dpo` runs the two stages.

Evaluation uses the training batch size, not the SFT stage's 16: each DPO pair costs a policy and a reference
forward pass over both answers, each with full-vocabulary logits (49,152 tokens for SmolLM2), which is what drove a
real model's evaluation past the course's 2 GB memory budget.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from ..compat import versions as compat
from ..compat.silence import no_dataset_bars
from ..config.recipes import Recipe
from .stage import Run, TrainResult

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def preference_split(split: Any) -> Any:
    """Keep only TRL's preference columns (prompt/chosen/rejected) of a datasets.Dataset."""
    missing = [c for c in PREFERENCE_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"preference data must have columns {list(PREFERENCE_COLUMNS)}; missing {missing}")
    return split.select_columns(list(PREFERENCE_COLUMNS))


def dpo_stage(recipe: Recipe, sft: TrainResult, data: Any = None, output_dir: Path = Path("runs"),
              callbacks: list[TrainerCallback] | None = None, resume_from_checkpoint: bool | None = None,
              progress: bool = True) -> TrainResult:
    """Merge `sft`'s adapter, then train a fresh LoRA adapter with DPO on `data` (default: `recipe.dataset`) in
    `output_dir/dpo`; the adapter goes to `output_dir/adapter`. The result's time and notes include the SFT stage's."""
    from trl import DPOConfig, DPOTrainer

    from ..data.datasets import load_dataset

    run = Run.start(recipe, output_dir / "dpo", resume_from_checkpoint, adapter_dir=output_dir / "adapter",
                    resume_required=False)
    tokenizer = sft.tokenizer
    merged = sft.model.merge_and_unload()
    if data is None or isinstance(data, str):
        data = load_dataset(data or recipe.dataset, tokenizer, n_train=recipe.n_train, n_eval=recipe.n_eval,
                            seed=recipe.seed, max_length=recipe.max_length)
    set_seed(recipe.seed)
    policy = compat.get_peft_model(merged, recipe.lora_config(merged))
    has_eval = data.eval is not None and len(data.eval) > 0
    with nullcontext() if progress else no_dataset_bars():  # TRL tokenises the pairs with Dataset.map
        trainer = DPOTrainer(
            model=policy,
            ref_model=None,
            args=run.arguments(has_eval, DPOConfig, beta=recipe.dpo_beta, max_length=recipe.max_length,
                               per_device_eval_batch_size=recipe.per_device_train_batch_size),
            train_dataset=preference_split(data.train),
            eval_dataset=preference_split(data.eval) if has_eval else None,
            callbacks=callbacks,
            processing_class=tokenizer,
        )
    return run.train(trainer, policy, tokenizer, progress, earlier=sft)
