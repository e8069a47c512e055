"""Recipes as data: each one a validated, documented dataclass that yields a peft `LoraConfig` and `TrainingArguments`.

The numbers are the Training Guide's. A recipe holds no model and no data, only choices, so it can be printed,
compared, overridden (`recipe.replace(r=8)`) and checked before anything heavy happens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from .data import DATASETS, MAX_ROWS
from .vocab import (LLAMA_LINEAR_MODULES, OPTIMIZERS, PRECISIONS, QUANTIZATIONS, SCHEDULERS, STRATEGIES,
                    TARGET_PRESETS, TASKS, check_bool, check_choice, check_names, check_range, resolve_targets)


def linear_module_names(model: Any) -> tuple[str, ...]:
    """The distinct leaf names of `model`'s linear layers (what target_modules may name), lm_head/score excluded."""
    import torch

    names = {
        full.rsplit(".", 1)[-1]
        for full, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
    }
    return tuple(sorted(names - {"lm_head", "score", "classifier"}))


@dataclass(frozen=True)
class Recipe:
    """A complete LoRA/QLoRA training recipe.

    LoRA: `r` (rank, 1–1024), `lora_alpha` (scale numerator; the update is scaled by alpha/r, or alpha/sqrt(r)
    with `use_rslora`), `lora_dropout` (0–0.5; more for smaller data), `target_modules` ("all-linear", a preset
    "q,v" / "q,k,v,o", or module names), `layers_to_transform` (layer indices; needs a list of module names).
    Optimisation: `learning_rate` (0 < LR ≤ 1), `lr_scheduler_type`, `warmup_ratio` (0–0.5 of the steps) or
    `warmup_steps` (a fixed number; when > 0 it replaces the ratio, as in the Trainer),
    `max_grad_norm` (clip; 0.3 in the guide), `optim`, epochs or `max_steps`.
    Memory: `precision` ("auto" picks bf16/fp16/fp32 from the hardware), `quantization` (None, "nf4" with double
    quantisation = QLoRA, "int8"), `gradient_checkpointing`.
    Batching (causal LM): `padding_free` (default) concatenates a batch's rows into one sequence with position ids
    restarting per row: no padding at all, attention stays inside each row, the loss is the padded batch's loss.
    False pads each batch to its longest row instead. benchmarks/throughput.py measures both.
    """

    name: str
    description: str
    dataset: str
    task: Literal["causal_lm", "seq_cls", "dpo"] = "causal_lm"
    # LoRA
    r: int = 16
    lora_alpha: float = 32
    lora_dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"
    layers_to_transform: tuple[int, ...] | None = None
    use_rslora: bool = False
    use_dora: bool = False
    modules_to_save: tuple[str, ...] | None = None
    # optimisation
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.03
    warmup_steps: int = 0
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 0.3
    weight_decay: float = 0.0
    optim: str = "paged_adamw_8bit"
    # memory
    precision: str = "bf16"
    quantization: str | None = None
    gradient_checkpointing: bool = True
    # data and bookkeeping
    max_length: int = 256
    padding_free: bool = True
    n_train: int | None = None
    n_eval: int | None = None
    logging_steps: int = 5
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    load_best_model_at_end: bool = False
    seed: int = 42
    # preference optimisation (task="dpo"): an SFT stage on `sft_dataset` first, then DPO
    dpo_beta: float = 0.1
    sft_dataset: str | None = None
    sft_learning_rate: float = 2e-4
    sft_epochs: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        for name, single in (("layers_to_transform", int), ("modules_to_save", str)):
            value = getattr(self, name)
            if isinstance(value, (list, single)) and not isinstance(value, bool):
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else (value,))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what is allowed."""
        for name in ("name", "description"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        check_choice("task", self.task, TASKS)
        check_choice("dataset", self.dataset, DATASETS)
        if self.sft_dataset is not None:
            check_choice("sft_dataset", self.sft_dataset, DATASETS)
        for name in ("use_rslora", "use_dora", "gradient_checkpointing", "padding_free", "load_best_model_at_end"):
            check_bool(name, getattr(self, name))
        check_range("r", self.r, 1, 1024, int)
        check_range("lora_alpha", self.lora_alpha, 1e-6, 1e5)
        check_range("lora_dropout", self.lora_dropout, 0.0, 0.5)
        check_range("learning_rate", self.learning_rate, 1e-12, 1.0)
        check_range("warmup_ratio", self.warmup_ratio, 0.0, 0.5)
        check_range("warmup_steps", self.warmup_steps, 0, 10**7, int)
        check_range("max_grad_norm", self.max_grad_norm, 0.0, 1e6)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("num_train_epochs", self.num_train_epochs, 1e-3, 1000)
        if self.max_steps != -1:
            check_range("max_steps", self.max_steps, 1, 10**7, int)
        check_range("per_device_train_batch_size", self.per_device_train_batch_size, 1, 4096, int)
        check_range("gradient_accumulation_steps", self.gradient_accumulation_steps, 1, 4096, int)
        check_range("max_length", self.max_length, 16, 131072, int)
        check_range("logging_steps", self.logging_steps, 1, 10**6, int)
        check_range("dpo_beta", self.dpo_beta, 1e-4, 10.0)
        check_range("sft_learning_rate", self.sft_learning_rate, 1e-12, 1.0)
        check_range("sft_epochs", self.sft_epochs, 1e-3, 1000)
        check_range("seed", self.seed, 0, 2**32 - 1, int)
        for name in ("n_train", "n_eval"):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), 1, MAX_ROWS, int)
        check_choice("lr_scheduler_type", self.lr_scheduler_type, SCHEDULERS)
        check_choice("optim", self.optim, OPTIMIZERS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("quantization", self.quantization, QUANTIZATIONS)
        check_choice("eval_strategy", self.eval_strategy, STRATEGIES)
        check_choice("save_strategy", self.save_strategy, STRATEGIES)
        if self.load_best_model_at_end and (self.eval_strategy, self.save_strategy) != ("epoch", "epoch"):
            raise ValueError("load_best_model_at_end=True needs eval_strategy and save_strategy 'epoch' (a checkpoint "
                             f"per evaluation), got {self.eval_strategy!r} and {self.save_strategy!r}")
        if self.task == "dpo" and self.quantization is not None:
            raise ValueError("quantization must be None for task='dpo' (the DPO stage needs a trainable reference copy)")
        if isinstance(self.target_modules, str):
            self.resolved_target_modules()  # a preset name; module lists are checked against the model in train()
        elif not isinstance(self.target_modules, tuple) or not self.target_modules or \
                not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError(f"target_modules must be a preset {list(TARGET_PRESETS)} or a non-empty list of module "
                             f"names such as {list(LLAMA_LINEAR_MODULES)}, got {self.target_modules!r}")
        if self.modules_to_save is not None:
            check_names("modules_to_save", self.modules_to_save)
        if self.layers_to_transform is not None:
            if not isinstance(self.layers_to_transform, tuple) or not self.layers_to_transform:
                raise ValueError("layers_to_transform must be None (all layers) or a non-empty list of layer indices, "
                                 f"got {self.layers_to_transform!r}")
            if isinstance(self.target_modules, str):
                raise ValueError(
                    "layers_to_transform needs target_modules as a list of module names (e.g. ['q_proj', 'v_proj']), "
                    f"not the string {self.target_modules!r}: peft cannot restrict layers for a preset or regex"
                )
            for layer in self.layers_to_transform:
                check_range("layers_to_transform[i]", layer, 0, 10**4, int)

    def resolved_target_modules(self, model: Any = None) -> str | list[str]:
        """Target modules in peft's form: "all-linear" or a list of module names.

        Names are checked against `model`'s linear layers when a model is given, else against Llama's.
        """
        valid = linear_module_names(model) if model is not None else LLAMA_LINEAR_MODULES
        return resolve_targets(self.target_modules, valid=valid, peft_form=True)

    @property
    def scale(self) -> float:
        """The factor LoRA multiplies B·A by: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def replace(self, **overrides: Any) -> "Recipe":
        """A copy with some fields changed (validated again). Unknown field names raise ValueError."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; valid fields: {sorted(valid)}")
        return dataclasses.replace(self, **overrides)

    def lora_config(self, model: Any = None) -> Any:
        """The peft LoraConfig this recipe describes (target names checked against `model` when given)."""
        from peft import LoraConfig, TaskType

        task_type = TaskType.SEQ_CLS if self.task == "seq_cls" else TaskType.CAUSAL_LM
        return LoraConfig(
            r=self.r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.resolved_target_modules(model),
            layers_to_transform=list(self.layers_to_transform) if self.layers_to_transform else None,
            use_rslora=self.use_rslora,
            use_dora=self.use_dora,
            modules_to_save=list(self.modules_to_save) if self.modules_to_save else None,
            bias="none",
            task_type=task_type,
        )

    def training_kwargs(self, output_dir: str, precision: str, use_cpu: bool, has_eval: bool = True) -> dict[str, Any]:
        """TrainingArguments keyword arguments in the guide's vocabulary (lorakit.compat translates them)."""
        return dict(
            output_dir=output_dir,
            learning_rate=self.learning_rate,
            lr_scheduler_type=self.lr_scheduler_type,
            **({"warmup_steps": self.warmup_steps} if self.warmup_steps else {"warmup_ratio": self.warmup_ratio}),
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            per_device_eval_batch_size=max(self.per_device_train_batch_size, 16),
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_grad_norm=self.max_grad_norm,
            weight_decay=self.weight_decay,
            optim=self.optim,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            gradient_checkpointing=self.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False} if self.gradient_checkpointing else None,
            logging_steps=self.logging_steps,
            logging_first_step=True,
            eval_strategy=self.eval_strategy if has_eval else "no",
            save_strategy=self.save_strategy,
            load_best_model_at_end=self.load_best_model_at_end and has_eval,
            metric_for_best_model="eval_loss" if self.load_best_model_at_end and has_eval else None,
            save_only_model=False,
            report_to=[],
            seed=self.seed,
            data_seed=self.seed,
            use_cpu=use_cpu,
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=False,
        )


QUICKSTART = Recipe(
    name="quickstart",
    description="The 30-second recipe: r=16, alpha=32, all-linear, dropout 0.05, LR 2e-4 cosine with 3% warmup, bf16, "
                "gradient checkpointing, paged 8-bit AdamW, grad clip 0.3, a checkpoint per epoch.",
    dataset="instruction",
    n_train=512,
    n_eval=64,
    num_train_epochs=2,
    learning_rate=2e-4,
)

RECIPES: dict[str, Recipe] = {
    "quickstart": QUICKSTART,
    "instruction": QUICKSTART.replace(
        name="instruction",
        description="Instruction following with QLoRA: NF4 4-bit base with double quantisation, r=16, alpha=32, all-linear, LR 2e-4.",
        quantization="nf4",
        n_train=None,
        n_eval=None,
        num_train_epochs=3,
    ),
    "code": QUICKSTART.replace(
        name="code",
        description="Code generation with QLoRA: higher rank for a harder distribution (r=32, alpha=64), LR 1e-4.",
        dataset="code",
        quantization="nf4",
        r=32,
        lora_alpha=64,
        learning_rate=1e-4,
        max_length=384,
        n_train=None,
        n_eval=None,
        num_train_epochs=2,
    ),
    "domain": QUICKSTART.replace(
        name="domain",
        description="Domain adaptation: much new knowledge, so a high rank (r=64, alpha=128), more dropout (0.1) and a low LR (5e-5).",
        dataset="domain",
        r=64,
        lora_alpha=128,
        lora_dropout=0.1,
        learning_rate=5e-5,
        n_train=None,
        n_eval=None,
        num_train_epochs=3,
    ),
    "classification": QUICKSTART.replace(
        name="classification",
        description="Classification: a small rank on q,v only (r=8, alpha=16), dropout 0.1 and a sequence-classification head trained fully.",
        dataset="classification",
        task="seq_cls",
        r=8,
        lora_alpha=16,
        target_modules="q,v",
        lora_dropout=0.1,
        learning_rate=2e-4,
        n_train=None,
        n_eval=None,
        num_train_epochs=3,
    ),
    "dpo": QUICKSTART.replace(
        name="dpo",
        description="SFT then DPO: supervised fine-tuning on instructions, then preference optimisation at LR 5e-5 (TRL DPOTrainer).",
        dataset="preference",
        task="dpo",
        sft_dataset="instruction",
        learning_rate=5e-5,
        n_train=None,
        n_eval=None,
        num_train_epochs=1,
    ),
}


def get_recipe(name: str | Recipe, **overrides: Any) -> Recipe:
    """Look a recipe up by name (or pass a Recipe through), applying overrides."""
    if isinstance(name, Recipe):
        recipe = name
    elif name in RECIPES:
        recipe = RECIPES[name]
    else:
        raise ValueError(f"recipe must be one of {list(RECIPES)}, got {name!r}")
    return recipe.replace(**overrides) if overrides else recipe
