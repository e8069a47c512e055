"""lorakit: the companion package of a hands-on LoRA/QLoRA course.

Public names are imported lazily so that `import lorakit` stays instant (no torch import until needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .quiet import drop_bitsandbytes_kernel_notice  # noqa: E402  (one logging filter, no heavy import)

drop_bitsandbytes_kernel_notice()

_EXPORTS = {
    "load_base": "base",
    "load_tokenizer": "base",
    "load_dataset": "data",
    "DATASETS": "data",
    "Recipe": "recipes",
    "RECIPES": "recipes",
    "get_recipe": "recipes",
    "train": "training",
    "TrainResult": "runner",
    "detect": "hardware",
    "choose_precision": "hardware",
    "diagnose": "pitfalls",
    "ModelShape": "params",
    "LLAMA2_7B": "params",
    "LLAMA3_8B": "params",
    "count_lora_params": "params",
    "count_base_params": "params",
    "lora_table": "params",
    "lora_table_7b": "params",
    "estimate": "memory",
    "MemoryBreakdown": "memory",
    "saved_activation_bytes": "memory",
    "audit": "claims",
    "Claim": "claims",
    "claims_table": "claims",
    "SweepPanel": "widgets",
    "Sweep": "sweep",
    "WhatIf": "widgets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'lorakit' has no attribute {name!r}")
