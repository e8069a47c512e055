"""The SFT → DPO recipe: supervised fine-tuning first, then Direct Preference Optimisation with TRL.

The reference policy of DPO must be the SFT model, not the raw base. So the SFT adapter is merged into the base
weights, a fresh LoRA adapter is trained with DPO on top, and TRL uses the adapter-disabled model (= the merged SFT
model) as the reference: one copy of the weights in memory, and the reference is exactly what DPO assumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from . import compat
from .hardware import choose_precision, detect
from .recipes import Recipe

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def _preference_split(split: Any) -> Any:
    """Keep only TRL's preference columns (prompt/chosen/rejected) of a datasets.Dataset."""
    missing = [c for c in PREFERENCE_COLUMNS if c not in split.column_names]
    if missing:
        raise ValueError(f"preference data must have columns {list(PREFERENCE_COLUMNS)}; missing {missing}")
    return split.select_columns(list(PREFERENCE_COLUMNS))


def train_sft_then_dpo(
    recipe: Recipe,
    model: Any = None,
    data: Any = None,
    tokenizer: Any = None,
    output_dir: str | os.PathLike | None = None,
    callbacks: list[TrainerCallback] | None = None,
    progress: bool = True,
) -> Any:
    """Run the SFT stage (`recipe.sft_dataset`), merge it, then DPO on `recipe.dataset`. Returns the DPO TrainResult."""
    from peft import get_peft_model
    from trl import DPOConfig, DPOTrainer

    from .data import load_dataset
    from .training import TrainResult, _check_writable, run_and_save, silence_progress, tensorboard_report_to, train

    output_dir = Path(output_dir or Path("runs") / recipe.name)
    _check_writable(output_dir)
    sft_recipe = recipe.replace(
        name=f"{recipe.name}-sft",
        task="causal_lm",
        dataset=recipe.sft_dataset or "instruction",
        learning_rate=recipe.sft_learning_rate,
        num_train_epochs=recipe.sft_epochs,
    )
    sft = train(sft_recipe, model=model, tokenizer=tokenizer, output_dir=output_dir / "sft", callbacks=callbacks,
                progress=progress)
    tokenizer = sft.tokenizer
    merged = sft.model.merge_and_unload()

    if data is None or isinstance(data, str):
        data = load_dataset(data or recipe.dataset, tokenizer, n_train=recipe.n_train, n_eval=recipe.n_eval,
                            seed=recipe.seed, max_length=recipe.max_length)
    set_seed(recipe.seed)
    policy = get_peft_model(merged, recipe.lora_config(merged))
    trainable, total = policy.get_nb_trainable_parameters()

    hardware = detect()
    precision = choose_precision(recipe.precision, hardware)
    has_eval = data.eval is not None and len(data.eval) > 0
    kwargs = recipe.training_kwargs(str(output_dir / "dpo"), precision, use_cpu=hardware.device == "cpu",
                                    has_eval=has_eval)
    kwargs.update(beta=recipe.dpo_beta, max_length=recipe.max_length, report_to=tensorboard_report_to())
    args = compat.training_arguments(DPOConfig, **kwargs)
    trainer = DPOTrainer(
        model=policy,
        ref_model=None,
        args=args,
        train_dataset=_preference_split(data.train),
        eval_dataset=_preference_split(data.eval) if has_eval else None,
        callbacks=callbacks,
        **compat.trainer_kwargs(DPOTrainer, tokenizer),
    )
    if not progress:
        silence_progress(trainer)
    seconds, peak, kind, adapter_dir = run_and_save(trainer, policy, tokenizer, output_dir, hardware.device, recipe,
                                                    precision)
    return TrainResult(
        recipe=recipe,
        output_dir=output_dir / "dpo",
        adapter_dir=adapter_dir,
        log_history=list(trainer.state.log_history),
        train_seconds=sft.train_seconds + seconds,
        peak_memory_bytes=peak,
        peak_memory_kind=kind,
        precision=precision,
        trainable_params=trainable,
        total_params=total,
        notes=sft.notes + [f"SFT stage: {sft.summary()}"],
        is_main_process=trainer.is_world_process_zero(),
        model=policy,
        tokenizer=tokenizer,
    )
