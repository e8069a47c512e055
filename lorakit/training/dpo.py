"""The DPO stage: Direct Preference Optimisation with TRL on top of a finished SFT stage.

The reference policy of DPO must be the SFT model, not the raw base, and not a rounded copy of it. So the SFT
adapter itself is trained further with DPO, and TRL keeps a frozen copy of it (its "ref" adapter) as the reference:
policy and reference start equal to the SFT model, on an NF4 base as on a full-precision one. (Merging the SFT
adapter into an NF4 base would round the merged weights back to 4 bits and lose most of what SFT learnt.) Only the
small adapter is held twice; the base weights are shared. `lorakit.training.pipeline.train_sft_then_dpo` runs the two
stages.

Evaluation uses the training batch size, not the SFT stage's 16: each DPO pair costs a policy and a reference
forward pass over both answers, each with full-vocabulary logits (49,152 tokens for SmolLM2), which is what drove a
real model's evaluation past the course's 2 GB memory budget.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from ..compat.silence import no_dataset_bars
from ..config.recipes import Recipe
from .stage import Run, TrainResult

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
REFERENCE_ADAPTER = "ref"  # the name TRL gives the frozen copy of a PEFT model's adapter


def preference_split(split: Any) -> Any:
    """Keep only TRL's preference columns (prompt/chosen/rejected) of a datasets.Dataset."""
    missing = [c for c in PREFERENCE_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"preference data must have columns {list(PREFERENCE_COLUMNS)}; missing {missing}")
    return split.select_columns(list(PREFERENCE_COLUMNS))


class DropReference(TrainerCallback):
    """Delete TRL's reference adapter when training ends, so the saved and returned model holds one adapter."""

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None and REFERENCE_ADAPTER in getattr(model, "peft_config", {}):
            model.delete_adapter(REFERENCE_ADAPTER)


def set_adapter_dropout(model: Any, p: float) -> None:
    """Set the LoRA dropout of `model`'s active adapter (and its config, which TRL copies for the reference) to `p`."""
    import torch.nn as nn

    name = model.active_adapter
    model.peft_config[name].lora_dropout = p
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, nn.ModuleDict) and name in dropouts:
            dropouts[name] = nn.Dropout(p) if p > 0 else nn.Identity()


def dpo_stage(recipe: Recipe, sft: TrainResult, data: Any = None, output_dir: Path = Path("runs"),
              callbacks: list[TrainerCallback] | None = None, resume_from_checkpoint: bool | None = None,
              progress: bool = True) -> TrainResult:
    """Train `sft`'s adapter further with DPO on `data` (default: `recipe.dataset`) in `output_dir/dpo`, against a
    frozen copy of it; the adapter goes to `output_dir/adapter`. `sft.model` is trained in place, with the SFT
    adapter's shape (r, targets) and `recipe`'s dropout. The result's time and notes include the SFT stage's."""
    from trl import DPOConfig, DPOTrainer

    run = Run.start(recipe, output_dir / "dpo", resume_from_checkpoint, adapter_dir=output_dir / "adapter",
                    resume_required=False)
    tokenizer, policy = sft.tokenizer, sft.model
    if data is None or isinstance(data, str):
        data = recipe.load_data(tokenizer, data)
    set_seed(recipe.seed)
    set_adapter_dropout(policy, recipe.lora_dropout)
    # TRL casts a 4-bit model's trainable weights to bf16; they are put back as the SFT stage left them (and as the
    # reference holds them), so the policy starts exactly at the SFT model.
    sft_weights = {name: p.detach().clone() for name, p in policy.named_parameters() if p.requires_grad}
    has_eval = data.eval is not None and len(data.eval) > 0
    with nullcontext() if progress else no_dataset_bars():  # TRL tokenises the pairs with Dataset.map
        trainer = DPOTrainer(
            model=policy,
            ref_model=None,
            args=run.arguments(has_eval, DPOConfig, beta=recipe.dpo_beta, max_length=recipe.max_length,
                               per_device_eval_batch_size=recipe.per_device_train_batch_size),
            train_dataset=preference_split(data.train),
            eval_dataset=preference_split(data.eval) if has_eval else None,
            callbacks=[*(callbacks or []), DropReference()],
            processing_class=tokenizer,
        )
    for name, p in policy.named_parameters():
        if name in sft_weights:
            p.data = sft_weights[name]
    return run.train(trainer, policy, tokenizer, progress, earlier=sft)
