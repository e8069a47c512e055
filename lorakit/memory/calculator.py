"""The what-if maths (chapter 4): trainable parameters and estimated training memory for a model shape and a set
of LoRA/memory choices, without training (`lorakit.lessons.widgets.WhatIf` puts sliders on it). No torch needed."""

from __future__ import annotations

from typing import Any

from ..models.shapes import ModelShape, count_base_params, count_lora_params
from .estimator import estimate


def what_if(shape: ModelShape, r: int = 16, targets: str = "all-linear", precision: str = "bf16",
            quantization: str | None = None, gradient_checkpointing: bool = False, batch: int = 1,
            seq_len: int = 512, optimizer: str = "paged_adamw_8bit") -> dict[str, Any]:
    """Trainable parameters, their share of the base model and the estimated training memory (no training)."""
    breakdown = estimate(shape, precision=precision, quantization=quantization, optimizer=optimizer,
                         gradient_checkpointing=gradient_checkpointing, batch=batch, seq_len=seq_len, r=r,
                         targets=targets)
    trainable = count_lora_params(shape, r, targets)
    base = count_base_params(shape)
    return {"shape": shape, "trainable": trainable, "base_params": base, "percent": 100 * trainable / base,
            "memory": breakdown}
