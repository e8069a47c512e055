"""lorakit: the companion package of a hands-on LoRA/QLoRA course.

The package's folders are its jobs: `config` (choices, recipes), `models`, `data`, `training`, `memory`,
`evaluation`, `lessons` (what the chapters show and check), `grading`, `authoring`, and `compat` (the internal seam
to the libraries). What the chapters use from models, data, config, training and memory is re-exported here,
each imported on first use, so that `import lorakit` stays instant (no torch import until needed) and has no side
effects.
"""

from __future__ import annotations

from .compat import lazy_exports

__version__ = "0.1.0"

EXPORTS = {
    "load_base": "models.load", "load_tokenizer": "models.load", "quantization_config": "models.load",
    "converted_dir": "models.packaged", "Hardware": "models.hardware", "detect": "models.hardware",
    "choose_precision": "models.hardware",
    "ModelShape": "models.shapes", "LLAMA2_7B": "models.shapes", "LLAMA2_13B": "models.shapes",
    "LLAMA3_8B": "models.shapes", "SMOLLM2_1_7B": "models.shapes", "count_lora_params": "models.shapes",
    "count_base_params": "models.shapes",
    "lora_table": "models.shapes", "lora_table_7b": "models.shapes",
    "load_dataset": "data.datasets", "DATASETS": "data.datasets", "pretraining_texts": "data.corpus",
    "Recipe": "config.recipes", "RECIPES": "config.recipes", "get_recipe": "config.recipes",
    "train": "training.pipeline", "get_peft_model": "training.pipeline", "dpo_stage": "training.dpo",
    "TrainResult": "training.stage", "Sweep": "training.sweep", "kept_checkpoint": "training.checkpoints",
    "same_adapter": "training.checkpoints", "LR_RANGES": "training.schedules", "lr_curve": "training.schedules",
    "warmup_steps": "training.schedules", "logged_values": "training.history", "series": "training.history",
    "estimate": "memory.estimator", "estimate_run": "memory.estimator", "MemoryBreakdown": "memory.estimator",
    "saved_activation_bytes": "memory.estimator", "measure": "memory.measurement", "release_memory": "memory.peak",
    "diagnose": "evaluation.diagnostics",
    "audit": "lessons.guide_audit", "Claim": "lessons.guide_audit", "claims_table": "lessons.guide_audit",
    "SweepPanel": "lessons.widgets", "WhatIf": "lessons.widgets",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
