"""What to change when a training run runs out of GPU memory: each remedy priced by the memory estimator.

`lorakit.train` turns the GPU's out-of-memory error into a `TrainingOutOfMemoryError` whose message is
`oom_message(...)`: the run as configured, each applicable remedy alone and all together, in estimated MiB.
"""

from __future__ import annotations

from typing import Any

from ..config.choices import OPTIMIZER_STATES
from ..models.shapes import ModelShape
from .estimator import estimate


class TrainingOutOfMemoryError(RuntimeError):
    """The GPU ran out of memory during training; the message lists remedies with the estimator's figures."""


def oom_remedies(recipe: Any, shape: ModelShape, precision: str, optimizer: str) -> list[tuple[str, int]]:
    """[(change, estimated bytes)]: the run as configured first, then each applicable remedy alone, then all together.

    Remedies: a smaller per-device batch with more gradient accumulation (same effective batch), gradient
    checkpointing, a 4-bit NF4 base (QLoRA), half the max_length. Estimated at batch × max_length tokens.
    """
    settings = dict(precision=precision, quantization=recipe.quantization, optimizer=OPTIMIZER_STATES[optimizer],
                    gradient_checkpointing=recipe.gradient_checkpointing, batch=recipe.per_device_train_batch_size,
                    seq_len=recipe.max_length, r=recipe.r, targets=recipe.resolved_target_modules())
    changes: list[tuple[str, dict[str, Any]]] = []
    batch, accumulation = recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps
    if batch > 1:
        smaller = max(d for d in range(1, batch // 2 + 1) if batch % d == 0)
        changes.append((f"per_device_train_batch_size={smaller}, gradient_accumulation_steps="
                        f"{accumulation * batch // smaller} (same effective batch, {batch * accumulation})",
                        {"batch": smaller}))
    if not recipe.gradient_checkpointing:
        changes.append(("gradient_checkpointing=True", {"gradient_checkpointing": True}))
    if recipe.quantization != "nf4" and recipe.task != "dpo":
        changes.append(("quantization='nf4' (4-bit NF4 base weights: QLoRA)", {"quantization": "nf4"}))
    if recipe.max_length >= 32:
        changes.append((f"max_length={recipe.max_length // 2} (longer rows are cut)", {"seq_len": recipe.max_length // 2}))
    rows = [("as configured", estimate(shape, **settings).total)]
    rows += [(label, estimate(shape, **{**settings, **change}).total) for label, change in changes]
    if len(changes) > 1:
        together = {key: value for _, change in changes for key, value in change.items()}
        rows.append(("all of these together", estimate(shape, **{**settings, **together}).total))
    return rows


def oom_message(recipe: Any, shape: ModelShape | None, precision: str, optimizer: str, error: BaseException,
                gpu_bytes: int | None = None) -> str:
    """The text of a TrainingOutOfMemoryError: what ran out, and what to change, with estimated MiB per option."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    gpu = f" on a {gpu_bytes / 2**20:,.0f} MiB GPU" if gpu_bytes else ""
    lines = [f"GPU out of memory while training recipe {recipe.name!r}{gpu} ({first_line})."]
    rows = None
    if shape is not None and optimizer in OPTIMIZER_STATES:
        try:
            rows = oom_remedies(recipe, shape, precision, optimizer)
        except ValueError:  # target modules that the Llama-shaped estimator does not know
            rows = None
    if rows is None:
        lines.append("Try, one at a time: a smaller per_device_train_batch_size with more gradient_accumulation_steps, "
                     "gradient_checkpointing=True, quantization='nf4', a shorter max_length.")
        return "\n".join(lines)
    (_, current), *remedies = rows
    lines.append(f"lorakit.estimate puts this run at {current / 2**20:,.0f} MiB (batch {recipe.per_device_train_batch_size}"
                 f" × max_length {recipe.max_length}, {precision}, r={recipe.r}). Change a recipe field to:")
    lines += [f"  - {label}: {total / 2**20:,.0f} MiB" for label, total in remedies]
    lines.append("e.g. lorakit.train(..., gradient_checkpointing=True) or lorakit train --set gradient_checkpointing=True")
    return "\n".join(lines)
