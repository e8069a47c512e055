"""`lorakit.train`: a recipe, a model and data in; a trained adapter, its logs and its costs out.

One run path with stages around Hugging Face `Trainer` + peft: the SFT stage here (causal LM or classification),
and for `task="dpo"` the SFT stage, then `lorakit.training.dpo`'s DPO stage (TRL) on its adapter. Every stage
shares `lorakit.training.stage`'s set-up, fallbacks, resume and result. Added to the Trainer: eval perplexity in the logs,
per-epoch adapter checkpoints, honest fallbacks, a result object with the log history, the best epoch and the peak
memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback, set_seed

from ..compat.versions import get_peft_model, prepare_model_for_kbit_training
from ..config.choices import check_choice
from ..config.recipes import Recipe, get_recipe
from ..data.datasets import DATASETS
from ..models.hardware import sharded_launch
from .dpo import dpo_stage
from .stage import Run, TrainResult


def scored_positions_only(inputs: dict[str, Any]) -> dict[str, Any]:
    """A causal-LM batch whose forward projects through the LM head only the positions whose next token is scored.

    A prompt-masked row scores only its answer tokens, yet the model's forward projects every position onto the whole
    vocabulary. `logits_to_keep` (the positions any row scores) keeps the rest out of the LM head, and `shift_labels`
    (the scored labels at those positions) makes the model's own loss exactly the full one: the same tokens, the same
    sum, the same `num_items_in_batch` normalisation, so every Trainer rule around the loss is unchanged.
    """
    targets = inputs["labels"][:, 1:]
    positions = (targets != -100).any(dim=0).nonzero().squeeze(-1)
    kept = targets[:, positions]
    return {**inputs, "labels": kept, "shift_labels": kept, "logits_to_keep": positions}


class LorakitTrainer(Trainer):
    """Trainer that also logs eval perplexity = exp(eval loss) and, for causal LMs, computes logits only where the
    loss reads them (`scored_positions_only`)."""

    def __init__(self, *args: Any, causal_lm: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.causal_lm = causal_lm

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if self.causal_lm and inputs.get("labels") is not None:
            inputs = scored_positions_only(inputs)
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        super().log(logs, *args, **kwargs)


def data_collator(recipe: Recipe, data: Any) -> Any:
    """The dataset's padding collator, or a padding-free one (rows concatenated, position ids restart per row)."""
    if recipe.padding_free and recipe.task == "causal_lm":
        from transformers import DataCollatorWithFlattening

        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return data.collator


def prepare_model(recipe: Recipe, model: Any) -> Any:
    """Wrap a base model with the recipe's LoRA adapter (after k-bit preparation for quantized bases).

    Under a sharded launch (FSDP / ZeRO-3) the k-bit preparation is skipped: it up-casts the frozen norms and
    embeddings to fp32, and sharding needs one dtype across a layer's frozen parameters.
    """
    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
    if quantized and sharded_launch():
        if recipe.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    elif quantized:
        model = prepare_model_for_kbit_training(model, recipe.gradient_checkpointing)
    return get_peft_model(model, recipe.lora_config(model))


def _load(recipe: Recipe, model: Any, tokenizer: Any, data: Any) -> tuple[Any, Any, Any]:
    if model is None or isinstance(model, str):
        from ..data.datasets import load_dataset
        from ..models.load import load_base

        num_labels = None
        if recipe.task == "seq_cls":
            labelled = data if data is not None and not isinstance(data, str) else load_dataset(
                data or recipe.dataset, None, n_train=1, n_eval=1)
            if not labelled.label_names:
                raise ValueError(f"data {labelled.name!r} has no label_names: task 'seq_cls' needs a labelled dataset")
            num_labels = len(labelled.label_names)
        model, tokenizer = load_base(
            model or "tiny",
            quantization=recipe.quantization,
            task="seq_cls" if recipe.task == "seq_cls" else "causal_lm",
            num_labels=num_labels,
            head_seed=None,  # from the run's seed, set just before
        )
    if tokenizer is None:
        raise ValueError("tokenizer must be given when model is a model object (load both with lorakit.load_base)")
    if data is None or isinstance(data, str):
        data = recipe.load_data(tokenizer, data)
    if data.train is None or len(data.train) == 0:
        raise ValueError(f"data.train is empty: dataset {data.name!r} has no training rows")
    return model, tokenizer, data


def _check_train_args(model: Any, data: Any, output_dir: Any, callbacks: Any, progress: Any,
                      resume_from_checkpoint: Any) -> None:
    """ValueError naming the first argument of `train` that cannot work, before anything is loaded."""
    if model is not None and not isinstance(model, (str, os.PathLike)) and not hasattr(model, "named_modules"):
        raise ValueError(f"model must be None (the tiny model), a hub id or local path, or a loaded model, got {model!r}")
    if isinstance(data, str):
        check_choice("data", data, DATASETS)
    elif data is not None and not hasattr(data, "train"):
        raise ValueError(f"data must be None, a dataset name from {list(DATASETS)} or a lorakit.data.datasets.TaskData, "
                         f"got {data!r}")
    if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
        raise ValueError(f"output_dir must be a folder path, got {output_dir!r}")
    if callbacks is not None and (not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, TrainerCallback) or (isinstance(c, type) and issubclass(c, TrainerCallback))
            for c in callbacks)):
        raise ValueError(f"callbacks must be a list of transformers.TrainerCallback, got {callbacks!r}")
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if resume_from_checkpoint is not None and not isinstance(resume_from_checkpoint, (bool, str, os.PathLike)):
        raise ValueError("resume_from_checkpoint must be None, True (the newest checkpoint in output_dir) or a "
                         f"checkpoint folder, got {resume_from_checkpoint!r}")


def sft_stage(recipe: Recipe, model: Any = None, data: Any = None, tokenizer: Any = None,
              output_dir: Path = Path("runs"), callbacks: list[TrainerCallback] | None = None,
              resume_from_checkpoint: Any = None, progress: bool = True) -> TrainResult:
    """Supervised fine-tuning (causal LM or classification) of a LoRA adapter: the recipe's model and data (or the
    ones given), trained by `LorakitTrainer`, the adapter saved to `output_dir/adapter`."""
    run = Run.start(recipe, output_dir, resume_from_checkpoint)
    set_seed(recipe.seed)
    model, tokenizer, data = _load(recipe, model, tokenizer, data)
    model = model if hasattr(model, "peft_config") else prepare_model(recipe, model)
    has_eval = data.eval is not None and len(data.eval) > 0
    trainer = LorakitTrainer(
        model=model,
        args=run.arguments(has_eval),
        train_dataset=data.train,
        eval_dataset=data.eval if has_eval else None,
        data_collator=data_collator(recipe, data),
        callbacks=callbacks,
        processing_class=tokenizer,
        causal_lm=recipe.task == "causal_lm",
    )
    return run.train(trainer, model, tokenizer, progress)


def train_sft_then_dpo(recipe: Recipe, model: Any = None, data: Any = None, tokenizer: Any = None,
                       output_dir: str | os.PathLike | None = None, callbacks: list[TrainerCallback] | None = None,
                       resume_from_checkpoint: bool | None = None, progress: bool = True) -> TrainResult:
    """The SFT stage on `recipe.sft_dataset` (in `output_dir/sft`), then the DPO stage on `recipe.dataset` (in
    `output_dir/dpo`), which trains the SFT adapter further against a frozen copy of it. Returns the DPO stage's
    TrainResult (its time and notes include the SFT stage's).

    resume_from_checkpoint=True continues each stage from its newest complete checkpoint (a DPO stage that had not
    started yet starts afresh); a checkpoint folder can't name a stage, so only True is accepted.
    """
    if resume_from_checkpoint not in (None, False, True):
        raise ValueError("resume_from_checkpoint must be None or True for task='dpo' (each of its two stages resumes "
                         f"from its own newest checkpoint), got {resume_from_checkpoint!r}")
    output_dir = Path(output_dir or Path("runs") / recipe.name)
    sft_recipe = recipe.replace(
        name=f"{recipe.name}-sft",
        task="causal_lm",
        dataset=recipe.sft_dataset or "instruction",
        learning_rate=recipe.sft_learning_rate,
        num_train_epochs=recipe.sft_epochs,
    )
    sft = sft_stage(sft_recipe, model=model, tokenizer=tokenizer, output_dir=output_dir / "sft", callbacks=callbacks,
                    resume_from_checkpoint=resume_from_checkpoint, progress=progress)
    return dpo_stage(recipe, sft, data=data, output_dir=output_dir, callbacks=callbacks,
                     resume_from_checkpoint=resume_from_checkpoint, progress=progress)


def train(
    recipe: str | Recipe = "quickstart",
    model: Any = None,
    data: Any = None,
    tokenizer: Any = None,
    output_dir: str | os.PathLike | None = None,
    callbacks: list[TrainerCallback] | None = None,
    resume_from_checkpoint: str | bool | None = None,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train a LoRA adapter.

    recipe: a name from `lorakit.RECIPES` or a `Recipe`; `overrides` replace recipe fields (e.g. `r=8`).
    model: None (the built-in tiny model), a hub id/local path, or a loaded model (then pass `tokenizer`).
    data: None (the recipe's dataset), a dataset name, or a `lorakit.data.datasets.TaskData`.
    resume_from_checkpoint: True continues from the newest complete checkpoint-N in output_dir, or give its folder.
    progress: False drops the Trainer's progress bar and printed log lines (e.g. when a widget draws the curves).
    """
    recipe = get_recipe(recipe, **overrides)
    _check_train_args(model, data, output_dir, callbacks, progress, resume_from_checkpoint)
    output_dir = Path(output_dir or Path("runs") / recipe.name)
    if recipe.task == "dpo":
        return train_sft_then_dpo(recipe, model=model, data=data, tokenizer=tokenizer, output_dir=output_dir,
                                  callbacks=callbacks, resume_from_checkpoint=resume_from_checkpoint, progress=progress)
    return sft_stage(recipe, model=model, data=data, tokenizer=tokenizer, output_dir=output_dir, callbacks=callbacks,
                     resume_from_checkpoint=resume_from_checkpoint, progress=progress)
