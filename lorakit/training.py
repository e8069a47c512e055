"""`lorakit.train`: a recipe, a model and data in; a trained adapter, its logs and its costs out.

A thin wrapper around Hugging Face `Trainer` + peft (and TRL's `DPOTrainer` for the preference stage). It adds
only what the course needs: eval perplexity in the logs, per-epoch adapter checkpoints, honest fallbacks, a result
object with the log history, the best epoch and the peak memory.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, set_seed

from . import compat
from .hardware import announce, choose_precision, cpu_threads_for, detect, sharded_launch
from .memory import TrainingOutOfMemoryError, oom_message
from .run_memory import PeakMemory
from .params import ModelShape
from .data import DATASETS
from .recipes import Recipe, _check_choice, get_recipe


class LorakitTrainer(Trainer):
    """Trainer that also logs eval perplexity = exp(eval loss)."""

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        super().log(logs, *args, **kwargs)


@dataclass
class TrainResult:
    """What a training run produced. `model` is the trained peft model, ready for evaluation or generation."""

    recipe: Recipe
    output_dir: Path
    adapter_dir: Path
    log_history: list[dict[str, float]]
    train_seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str
    precision: str
    trainable_params: int
    total_params: int
    notes: list[str] = field(default_factory=list)
    is_main_process: bool = True  # False on ranks other than 0 under torchrun / accelerate launch (they save nothing)
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)

    @property
    def train_losses(self) -> list[tuple[int, float]]:
        return [(h["step"], h["loss"]) for h in self.log_history if "loss" in h]

    @property
    def eval_losses(self) -> list[tuple[float, float]]:
        return [(h["epoch"], h["eval_loss"]) for h in self.log_history if "eval_loss" in h]

    @property
    def final_eval_loss(self) -> float | None:
        evals = self.eval_losses
        return evals[-1][1] if evals else None

    @property
    def best_epoch(self) -> float | None:
        """The epoch with the lowest eval loss (None without evaluation)."""
        evals = self.eval_losses
        return min(evals, key=lambda e: e[1])[0] if evals else None

    def checkpoints(self) -> list[Path]:
        """Per-epoch checkpoint folders, oldest first."""
        found = self.output_dir.glob("checkpoint-*")
        return sorted(found, key=lambda p: int(p.name.split("-")[-1]))

    def summary(self) -> str:
        ev = self.final_eval_loss
        return (f"{self.recipe.name}: {self.train_seconds:.1f} s, trainable {self.trainable_params:,} of "
                f"{self.total_params:,} params, final eval loss {ev if ev is None else round(ev, 4)}, "
                f"best epoch {self.best_epoch}, peak memory {self.peak_memory_bytes / 2**20:.0f} MiB "
                f"({self.peak_memory_kind}), adapter in {self.adapter_dir}")


def _shape(model: Any) -> ModelShape | None:
    try:
        return ModelShape.from_config(model.config)
    except (AttributeError, TypeError, ValueError):  # not a Llama-style config
        return None


def run_and_save(trainer: Any, model: Any, tokenizer: Any, output_dir: Path, device: str, recipe: Recipe,
                 precision: str, resume_from_checkpoint: str | None = None) -> tuple[float, int, str, Path]:
    """Train, then save the adapter and tokenizer to `output_dir/adapter`: (seconds, peak bytes, peak kind, path).

    A GPU out-of-memory error becomes a TrainingOutOfMemoryError listing remedies with their estimated memory.
    On CPU, torch's threads are capped at the CPUs a container's quota allows (`hardware.usable_cpus`).
    """
    meter = PeakMemory(device)
    meter.start()
    start = time.perf_counter()
    try:
        with cpu_threads_for(device):
            trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    except torch.OutOfMemoryError as err:
        optimizer = getattr(trainer.args.optim, "value", trainer.args.optim)
        gpu = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory \
            if torch.cuda.is_available() else None
        raise TrainingOutOfMemoryError(oom_message(recipe, _shape(model), precision, optimizer, err, gpu)) from err
    seconds = time.perf_counter() - start
    peak, kind = meter.read()
    adapter_dir = output_dir / "adapter"
    save_adapter(trainer, model, tokenizer, adapter_dir)
    return seconds, peak, kind, adapter_dir


def save_adapter(trainer: Any, model: Any, tokenizer: Any, adapter_dir: Path) -> None:
    """Save the adapter and tokenizer once: by the main process only under torchrun / accelerate launch.

    Single process: `model.save_pretrained`. Distributed, FSDP or DeepSpeed: every rank calls this (FSDP and ZeRO-3
    gather the sharded weights collectively), `Trainer.save_model` writes from rank 0 alone, and all ranks wait until the
    files are there before returning.
    """
    if trainer.args.world_size <= 1 and not (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled):
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        return
    if trainer.is_fsdp_enabled:  # a sharded state dict would leave rank 0 with a shard: gather the full one to save
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(adapter_dir)
    trainer.accelerator.wait_for_everyone()


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder in `output_dir`: one whose trainer_state.json, which the Trainer
    writes last, reads back (a run killed while saving leaves an incomplete folder, skipped here)."""
    complete = []
    for path in Path(output_dir).glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if step.isdigit():
            complete.append((int(step), path))
    return max(complete)[1] if complete else None


def _resume_point(resume_from_checkpoint: bool | str | os.PathLike | None, output_dir: Path) -> str | None:
    """The checkpoint folder to resume from (announced), None to start afresh; ValueError when there is none."""
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is True:
        checkpoint = last_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(f"resume_from_checkpoint=True but output_dir {str(output_dir)!r} holds no complete "
                             "checkpoint-N folder (save_strategy 'epoch' or 'steps' writes them): train without "
                             "resuming first")
    else:
        checkpoint = Path(resume_from_checkpoint)
        if not (checkpoint / "trainer_state.json").is_file():
            raise ValueError(f"resume_from_checkpoint {str(checkpoint)!r} is not a checkpoint folder "
                             "(it has no trainer_state.json)")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    announce(f"resuming from {checkpoint} (epoch {state.get('epoch', 0):g}, step {state.get('global_step', 0)})")
    return str(checkpoint)


def _check_writable(output_dir: Path) -> None:
    """Fail before training, not at the first checkpoint, when the output folder can't be written."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir):
            pass
    except OSError as err:
        raise ValueError(f"output_dir {str(output_dir)!r} is not writable: {err.strerror}") from err
    free = shutil.disk_usage(output_dir).free
    if free < 50 * 2**20:
        raise ValueError(f"output_dir {str(output_dir)!r} has only {free / 2**20:.0f} MiB free; "
                         "need at least 50 MiB for adapter checkpoints")


def tensorboard_report_to() -> list[str]:
    """Log to TensorBoard event files (offline) when tensorboard is installed (the `course` extra)."""
    return ["tensorboard"] if importlib.util.find_spec("tensorboard") else []


def silence_progress(trainer: Any) -> None:
    """Remove the progress bar and the printed log dicts that Trainer adds by default."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (ProgressCallback, NotebookProgressCallback, PrinterCallback):
        trainer.remove_callback(callback)


def _choose_optimizer(recipe: Recipe, notes: list[str], device: str) -> str:
    if "paged" in recipe.optim and device == "cpu":
        note = (f"{recipe.optim}: paging (moving optimizer states to CPU RAM under GPU memory pressure) needs CUDA; "
                "on CPU bitsandbytes runs the same 8-bit AdamW without paging")
        announce(note)
        notes.append(note)
    if "8bit" in recipe.optim:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            note = f"optim {recipe.optim!r} needs bitsandbytes, which is not installed: using adamw_torch"
            announce(note)
            notes.append(note)
            return "adamw_torch"
    return recipe.optim


def _collator(recipe: Recipe, data: Any) -> Any:
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
    from peft import get_peft_model, prepare_model_for_kbit_training

    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
    if quantized and sharded_launch():
        if recipe.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    elif quantized:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=recipe.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return get_peft_model(model, recipe.lora_config(model))


def _load(recipe: Recipe, model: Any, tokenizer: Any, data: Any) -> tuple[Any, Any, Any]:
    if model is None or isinstance(model, str):
        from .base import load_base
        from .data import load_dataset

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
        )
    if tokenizer is None:
        raise ValueError("tokenizer must be given when model is a model object (load both with lorakit.load_base)")
    if data is None or isinstance(data, str):
        from .data import load_dataset

        data = load_dataset(data or recipe.dataset, tokenizer, n_train=recipe.n_train, n_eval=recipe.n_eval,
                            seed=recipe.seed, max_length=recipe.max_length)
    if data.train is None or len(data.train) == 0:
        raise ValueError(f"data.train is empty: dataset {data.name!r} has no training rows")
    return model, tokenizer, data


def _check_train_args(model: Any, data: Any, output_dir: Any, callbacks: Any, progress: Any,
                      resume_from_checkpoint: Any) -> None:
    """ValueError naming the first argument of `train` that cannot work, before anything is loaded."""
    if model is not None and not isinstance(model, (str, os.PathLike)) and not hasattr(model, "named_modules"):
        raise ValueError(f"model must be None (the tiny model), a hub id or local path, or a loaded model, got {model!r}")
    if isinstance(data, str):
        _check_choice("data", data, DATASETS)
    elif data is not None and not hasattr(data, "train"):
        raise ValueError(f"data must be None, a dataset name from {list(DATASETS)} or a lorakit.data.TaskData, "
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
    data: None (the recipe's dataset), a dataset name, or a `lorakit.data.TaskData`.
    resume_from_checkpoint: True continues from the newest complete checkpoint-N in output_dir, or give its folder.
    progress: False drops the Trainer's progress bar and printed log lines (e.g. when a widget draws the curves).
    """
    recipe = get_recipe(recipe, **overrides)
    _check_train_args(model, data, output_dir, callbacks, progress, resume_from_checkpoint)
    if recipe.task == "dpo":
        if resume_from_checkpoint not in (None, False):
            raise ValueError("resume_from_checkpoint is not supported for task='dpo' (SFT then DPO): rerun it")
        from .preference import train_sft_then_dpo

        return train_sft_then_dpo(recipe, model=model, data=data, tokenizer=tokenizer, output_dir=output_dir,
                                  callbacks=callbacks, progress=progress)
    output_dir = Path(output_dir or Path("runs") / recipe.name)
    _check_writable(output_dir)
    resume_from_checkpoint = _resume_point(resume_from_checkpoint, output_dir)
    set_seed(recipe.seed)
    model, tokenizer, data = _load(recipe, model, tokenizer, data)
    model = model if hasattr(model, "peft_config") else prepare_model(recipe, model)
    trainable, total = model.get_nb_trainable_parameters()

    notes: list[str] = []
    hardware = detect()
    precision = choose_precision(recipe.precision, hardware)
    if precision != recipe.precision:
        notes.append(f"precision {recipe.precision} → {precision} on {hardware.name}")
    has_eval = data.eval is not None and len(data.eval) > 0
    kwargs = recipe.training_kwargs(str(output_dir), precision, use_cpu=hardware.device == "cpu", has_eval=has_eval)
    kwargs["optim"] = _choose_optimizer(recipe, notes, hardware.device)
    kwargs["report_to"] = tensorboard_report_to()
    args = compat.training_arguments(**kwargs)
    trainer = LorakitTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval if has_eval else None,
        data_collator=_collator(recipe, data),
        callbacks=callbacks,
        **compat.trainer_kwargs(LorakitTrainer, tokenizer),
    )
    if not progress:
        silence_progress(trainer)
    seconds, peak, kind, adapter_dir = run_and_save(trainer, model, tokenizer, output_dir, hardware.device, recipe,
                                                    precision, resume_from_checkpoint)
    return TrainResult(
        recipe=recipe,
        output_dir=output_dir,
        adapter_dir=adapter_dir,
        log_history=list(trainer.state.log_history),
        train_seconds=seconds,
        peak_memory_bytes=peak,
        peak_memory_kind=kind,
        precision=precision,
        trainable_params=trainable,
        total_params=total,
        notes=notes,
        is_main_process=trainer.is_world_process_zero(),
        model=model,
        tokenizer=tokenizer,
    )
