"""What every training stage shares: the checked output folder and resume point, the precision and optimizer
choice (with their notes), the run itself (CPU threads, out-of-memory advice, the adapter saved once) and the one
`TrainResult` it produces.

A stage (`lorakit.training.pipeline`'s SFT stage, `lorakit.training.dpo`'s DPO stage) opens a `Run` before it loads anything,
asks it for its TrainingArguments, builds its own Trainer and hands it back to `Run.train`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from ..compat import versions as compat
from ..compat.notes import announce
from ..compat.silence import training_notices_dropped
from ..config.recipes import Recipe
from ..memory.oom_advice import TrainingOutOfMemoryError, oom_message
from ..memory.peak import PeakMemory, trim_heap
from ..models.hardware import Hardware, choose_precision, cpu_threads_for, detect
from ..models.shapes import ModelShape
from .checkpoints import clear_earlier_checkpoints, numbered_checkpoints, resume_point
from .history import series


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
        return series(self.log_history, "loss", axis="step")

    @property
    def eval_losses(self) -> list[tuple[float, float]]:
        return series(self.log_history, "eval_loss", axis="epoch")

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
        return numbered_checkpoints(self.output_dir)

    def summary(self) -> str:
        ev = self.final_eval_loss
        return (f"{self.recipe.name}: {self.train_seconds:.1f} s, trainable {self.trainable_params:,} of "
                f"{self.total_params:,} params, final eval loss {ev if ev is None else round(ev, 4)}, "
                f"best epoch {self.best_epoch}, peak memory {self.peak_memory_bytes / 2**20:.0f} MiB "
                f"({self.peak_memory_kind}), adapter in {self.adapter_dir}")


def check_writable(output_dir: Path) -> None:
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


def silence_progress(trainer: Any) -> None:
    """Remove the progress bar and the printed log dicts that Trainer adds by default. Its notebook progress bar is
    only there when Trainer imported transformers' notebook module, which needs IPython: a plain Python without
    IPython (a GPU box, a script) trains too."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    callbacks = [ProgressCallback, PrinterCallback]
    notebook = sys.modules.get("transformers.utils.notebook")
    if notebook is not None:
        callbacks.append(notebook.NotebookProgressCallback)
    for callback in callbacks:
        trainer.remove_callback(callback)


def choose_optimizer(optim: str, device: str, notes: list[str]) -> str:
    """The Trainer optimizer to use for `optim` on `device`; each substitution is announced and noted."""
    if "paged" in optim and device == "cpu":
        note = (f"{optim}: paging (moving optimizer states to CPU RAM under GPU memory pressure) needs CUDA; "
                "on CPU bitsandbytes runs the same 8-bit AdamW without paging")
        announce(note, once=True)
        notes.append(note)
    if "8bit" in optim and not compat.bitsandbytes_available():
        note = f"optim {optim!r} needs bitsandbytes, which is not installed: using adamw_torch"
        announce(note)
        notes.append(note)
        return "adamw_torch"
    return optim


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
        compat.gather_full_state_dict(trainer)
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(adapter_dir)
    trainer.accelerator.wait_for_everyone()


def model_shape(model: Any) -> ModelShape | None:
    """The Llama-style shape of `model`, None for other architectures."""
    try:
        return ModelShape.from_config(model.config)
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass
class Run:
    """One training stage under way: where it writes, what it resumes from, and what it chose (with notes)."""

    recipe: Recipe
    output_dir: Path
    adapter_dir: Path
    resume_from: str | None = None
    hardware: Hardware | None = None
    precision: str = ""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, recipe: Recipe, output_dir: Path, resume_from_checkpoint: Any = None, adapter_dir: Path | None = None,
              resume_required: bool = True) -> "Run":
        """Check the output folder and the resume point before anything heavy is loaded; a fresh run clears an
        earlier run's checkpoints from the folder."""
        check_writable(output_dir)
        resume_from = resume_point(resume_from_checkpoint, output_dir, required=resume_required)
        if resume_from is None:
            clear_earlier_checkpoints(output_dir)
        return cls(recipe, output_dir, adapter_dir or output_dir / "adapter", resume_from)

    def arguments(self, has_eval: bool, cls: type = TrainingArguments, **extra: Any) -> Any:
        """The stage's TrainingArguments (or `cls`, e.g. TRL's DPOConfig): the recipe's settings with the precision
        and optimizer this hardware runs, TensorBoard logging when it is installed, and `extra` on top."""
        self.hardware = detect()
        self.precision = choose_precision(self.recipe.precision, self.hardware)
        if self.precision != self.recipe.precision:
            self.notes.append(f"precision {self.recipe.precision} → {self.precision} on {self.hardware.name}")
        kwargs = self.recipe.training_kwargs(str(self.output_dir), self.precision,
                                             use_cpu=self.hardware.device == "cpu", has_eval=has_eval)
        kwargs["optim"] = choose_optimizer(self.recipe.optim, self.hardware.device, self.notes)
        kwargs["report_to"] = ["tensorboard"] if compat.tensorboard_available() else []
        kwargs.update(extra)
        return compat.training_arguments(cls, **kwargs)

    def train(self, trainer: Any, model: Any, tokenizer: Any, progress: bool = True,
              earlier: TrainResult | None = None) -> TrainResult:
        """Train, save the adapter and tokenizer to `adapter_dir`, and return the result (`earlier`: the previous
        stage's, whose time and notes it includes).

        A GPU out-of-memory error becomes a TrainingOutOfMemoryError listing remedies with their estimated memory.
        On CPU, torch's threads are capped at the CPUs a container's quota allows (`hardware.usable_cpus`).
        """
        if not progress:
            silence_progress(trainer)
        device = self.hardware.device if self.hardware else "cpu"
        trim_heap()  # what earlier cells freed leaves the process, so the run's peak is the run's own
        meter = PeakMemory(device)
        meter.start()
        start = time.perf_counter()
        try:
            with cpu_threads_for(device), training_notices_dropped():
                trainer.train(resume_from_checkpoint=self.resume_from)
        except compat.OutOfMemoryError as err:
            optimizer = getattr(trainer.args.optim, "value", trainer.args.optim)
            gpu = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory \
                if torch.cuda.is_available() else None
            raise TrainingOutOfMemoryError(oom_message(self.recipe, model_shape(model), self.precision, optimizer,
                                                       err, gpu)) from err
        seconds = time.perf_counter() - start
        peak, kind = meter.read()
        save_adapter(trainer, model, tokenizer, self.adapter_dir)
        trainable, total = model.get_nb_trainable_parameters()
        notes = self.notes
        if earlier is not None:
            seconds += earlier.train_seconds
            notes = list(dict.fromkeys([*earlier.notes, f"SFT stage: {earlier.summary()}", *self.notes]))
        return TrainResult(
            recipe=self.recipe,
            output_dir=self.output_dir,
            adapter_dir=self.adapter_dir,
            log_history=list(trainer.state.log_history),
            train_seconds=seconds,
            peak_memory_bytes=peak,
            peak_memory_kind=kind,
            precision=self.precision,
            trainable_params=trainable,
            total_params=total,
            notes=notes,
            is_main_process=trainer.is_world_process_zero(),
            model=model,
            tokenizer=tokenizer,
        )
