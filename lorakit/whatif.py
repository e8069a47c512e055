"""The what-if maths (chapter 4): trainable parameters and estimated training memory for a model shape and a set
of LoRA/memory choices, without training (`lorakit.widgets.WhatIf` puts sliders on it). No torch needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .memory import estimate
from .params import ModelShape, count_base_params, count_lora_params

TINY_CONFIG = Path(__file__).parent / "assets" / "tiny" / "config.json"


def tiny_shape() -> ModelShape:
    """The built-in model's shape, read from its config.json (no torch, no weights)."""
    config = json.loads(TINY_CONFIG.read_text())
    return ModelShape(config["vocab_size"], config["hidden_size"], config["intermediate_size"],
                      config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"],
                      head_dim=config.get("head_dim"), tie_word_embeddings=bool(config.get("tie_word_embeddings")),
                      name="lorakit tiny")


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
