"""Recipes as data: each one a validated, documented dataclass that yields a peft `LoraConfig` and `TrainingArguments`.

The numbers are the Training Guide's. A recipe holds no model and no data, only choices, so it can be printed,
compared, overridden (`recipe.replace(r=8)`) and checked before anything heavy happens.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Iterable, Literal, Union

from ..data.datasets import DATASETS, MAX_ROWS, TaskData, load_dataset
from .choices import (
    LLAMA_LINEAR_MODULES,
    OPTIMIZERS,
    PRECISIONS,
    QUANTIZATIONS,
    SCHEDULERS,
    STRATEGIES,
    TARGET_PRESETS,
    TASKS,
    check_bool,
    check_choice,
    check_names,
    check_range,
    resolve_targets,
)


def linear_module_names(model: Any) -> tuple[str, ...]:
    """The distinct leaf names of `model`'s linear layers (what target_modules may name), lm_head/score excluded."""
    import torch

    names = {
        full.rsplit(".", 1)[-1]
        for full, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
    }
    return tuple(sorted(names - {"lm_head", "score", "classifier"}))


def option(default: Any = MISSING, *, help: str, bounds: tuple[float, float] | None = None,
           choices: Iterable[Any] | None = None, none: str | None = None, unset: tuple[Any, str] | None = None) -> Any:
    """A Recipe field documented in its `metadata`: `help`, the allowed `bounds` (inclusive; for a list of numbers,
    each number's) or `choices`, what None means where it is allowed (`none`) and a sentinel value with its meaning
    (`unset`, e.g. max_steps=-1). Validation, the docs table and the CLI's `--set` parsing all read it."""
    metadata: dict[str, Any] = {"help": help}
    if bounds is not None:
        metadata["bounds"] = bounds
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if none is not None:
        metadata["none"] = none
    if unset is not None:
        metadata["unset"] = unset
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Recipe:
    """A complete LoRA/QLoRA training recipe: each field's help text and allowed values are its `metadata`
    (`option(...)`), listed by `field_table()` in docs/bad_inputs.md and by `lorakit train --help`."""

    name: str = option(help="the recipe's name")
    description: str = option(help="what the recipe is for, in a sentence")
    dataset: str = option(help="the synthetic dataset to train on (lorakit.load_dataset)", choices=DATASETS)
    task: Literal["causal_lm", "seq_cls", "dpo"] = option(
        "causal_lm", help="causal_lm: next-token loss; seq_cls: a classification head; dpo: SFT then DPO",
        choices=TASKS)
    # LoRA
    r: int = option(16, help="LoRA rank: the inner dimension of B·A", bounds=(1, 1024))
    lora_alpha: float = option(32, help="scale numerator: the update is scaled by alpha/r (alpha/sqrt(r) with "
                                        "use_rslora)", bounds=(1e-6, 1e5))
    lora_dropout: float = option(0.05, help="dropout on the LoRA input; more for smaller data", bounds=(0.0, 0.5))
    target_modules: str | tuple[str, ...] = option(
        "all-linear", help="which linear layers get adapters: a preset or module names")
    layers_to_transform: tuple[int, ...] | None = option(
        None, help="layer indices to adapt (needs target_modules as module names)", bounds=(0, 10**4),
        none="all layers")
    use_rslora: bool = option(False, help="rank-stabilised scaling alpha/sqrt(r)")
    use_dora: bool = option(False, help="DoRA: a learned magnitude per output feature on top of LoRA")
    modules_to_save: tuple[str, ...] | None = option(
        None, help="modules trained fully and saved with the adapter (e.g. a classification head)",
        none="peft's default for the task")
    # optimisation
    learning_rate: float = option(2e-4, help="peak learning rate", bounds=(1e-12, 1.0))
    lr_scheduler_type: str = option("cosine", help="learning-rate schedule after warmup", choices=SCHEDULERS)
    warmup_ratio: float = option(0.03, help="fraction of the steps spent warming up", bounds=(0.0, 0.5))
    warmup_steps: int = option(0, help="a fixed number of warmup steps; when > 0 it replaces warmup_ratio, as in the "
                                       "Trainer", bounds=(0, 10**7))
    num_train_epochs: float = option(1.0, help="passes over the training set (unless max_steps is set)",
                                     bounds=(1e-3, 1000))
    max_steps: int = option(-1, help="optimizer steps to train for, overriding the epochs", bounds=(1, 10**7),
                            unset=(-1, "train by epochs"))
    per_device_train_batch_size: int = option(8, help="rows per forward pass on each device", bounds=(1, 4096))
    gradient_accumulation_steps: int = option(1, help="forward passes per optimizer step", bounds=(1, 4096))
    max_grad_norm: float = option(0.3, help="gradient-norm clip (0.3 in the guide; 0 turns it off)",
                                  bounds=(0.0, 1e6))
    weight_decay: float = option(0.0, help="AdamW weight decay", bounds=(0.0, 1.0))
    optim: str = option("paged_adamw_8bit", help="the Trainer's optimizer name", choices=OPTIMIZERS)
    # memory
    precision: str = option("bf16", help="compute precision; auto picks bf16/fp16/fp32 from the hardware",
                            choices=PRECISIONS)
    quantization: str | None = option(None, help="base weights: nf4 with double quantisation is QLoRA",
                                      choices=QUANTIZATIONS, none="full-precision base weights")
    gradient_checkpointing: bool = option(True, help="recompute activations in the backward pass to save memory")
    # data and bookkeeping
    max_length: int = option(256, help="tokens per row; longer rows are cut", bounds=(16, 131072))
    padding_free: bool = option(True, help="causal LM: concatenate a batch's rows into one sequence with position "
                                           "ids restarting per row (no padding, same loss); False pads each batch "
                                           "to its longest row")
    n_train: int | None = option(None, help="training rows", bounds=(1, MAX_ROWS), none="the dataset's default")
    n_eval: int | None = option(None, help="evaluation rows", bounds=(1, MAX_ROWS), none="the dataset's default")
    logging_steps: int = option(5, help="steps between loss logs", bounds=(1, 10**6))
    eval_strategy: str = option("epoch", help="when to evaluate", choices=STRATEGIES)
    save_strategy: str = option("epoch", help="when to save a checkpoint", choices=STRATEGIES)
    load_best_model_at_end: bool = option(False, help="keep the checkpoint with the lowest eval loss (needs "
                                                      "eval_strategy and save_strategy 'epoch')")
    seed: int = option(42, help="seed for the data order, dropout and the adapter's initialisation",
                       bounds=(0, 2**32 - 1))
    # preference optimisation (task="dpo"): an SFT stage on `sft_dataset` first, then DPO
    dpo_beta: float = option(0.1, help="DPO: how strongly the policy is held to the reference", bounds=(1e-4, 10.0))
    sft_dataset: str | None = option(None, help="DPO: the dataset of the SFT stage", choices=DATASETS,
                                     none="instruction")
    sft_learning_rate: float = option(2e-4, help="DPO: the SFT stage's learning rate", bounds=(1e-12, 1.0))
    sft_epochs: float = option(1.0, help="DPO: the SFT stage's epochs", bounds=(1e-3, 1000))

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        for name, single in (("layers_to_transform", int), ("modules_to_save", str)):
            value = getattr(self, name)
            if isinstance(value, (list, single)) and not isinstance(value, bool):
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else (value,))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what is allowed (its metadata), then check the
        fields that depend on each other."""
        for f in dataclasses.fields(self):
            check_field(f, getattr(self, f.name))
        if self.load_best_model_at_end and (self.eval_strategy, self.save_strategy) != ("epoch", "epoch"):
            raise ValueError("load_best_model_at_end=True needs eval_strategy and save_strategy 'epoch' (a checkpoint "
                             f"per evaluation), got {self.eval_strategy!r} and {self.save_strategy!r}")
        if self.layers_to_transform is not None and isinstance(self.target_modules, str):
            raise ValueError(
                "layers_to_transform needs target_modules as a list of module names (e.g. ['q_proj', 'v_proj']), "
                f"not the string {self.target_modules!r}: peft cannot restrict layers for a preset or regex"
            )

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
        check_known(overrides)
        return dataclasses.replace(self, **overrides)

    def load_data(self, tokenizer: Any, name: str | None = None) -> TaskData:
        """Dataset `name` (default: this recipe's `dataset`) at the recipe's sizes, seed and max_length: the data
        `lorakit.train` trains and evaluates on when it is given none."""
        return load_dataset(name or self.dataset, tokenizer, n_train=self.n_train, n_eval=self.n_eval, seed=self.seed,
                            max_length=self.max_length)

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

    def training_arguments(self, output_dir: str, precision: str, use_cpu: bool, has_eval: bool = True) -> Any:
        """The transformers TrainingArguments of `training_kwargs`, its guide names translated to the installed
        transformers' (`warmup_ratio` → a fractional `warmup_steps`, ...)."""
        from ..compat.versions import training_arguments

        return training_arguments(**self.training_kwargs(output_dir, precision, use_cpu, has_eval))

    def training_kwargs(self, output_dir: str, precision: str, use_cpu: bool, has_eval: bool = True) -> dict[str, Any]:
        """TrainingArguments keyword arguments in the guide's vocabulary (lorakit.compat.versions translates them)."""
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


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Recipe)}


def _kind(hint: Any) -> str:
    """A field's kind from its annotation: bool, int, float, str, names (tuple[str, ...]), indices (tuple[int, ...])
    or targets (a preset string or module names)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        hint, *rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if rest:
            return "targets"
    if typing.get_origin(hint) is tuple:
        return "indices" if typing.get_args(hint)[0] is int else "names"
    return "str" if typing.get_origin(hint) is Literal else hint.__name__


KINDS: dict[str, str] = {name: _kind(hint) for name, hint in typing.get_type_hints(Recipe).items()}


def check_known(overrides: Iterable[str]) -> None:
    """ValueError listing the valid field names when any of `overrides` is not a Recipe field."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown recipe field(s) {unknown}; valid fields: {sorted(FIELDS)}")


def allowed(name: str) -> str:
    """What field `name` accepts, in words, from its metadata (the docs table and `lorakit train --help`)."""
    meta, kind = FIELDS[name].metadata, KINDS[name]
    prefix = f"None ({meta['none']}) or " if "none" in meta else ""
    if "unset" in meta:
        prefix += f"{meta['unset'][0]!r} ({meta['unset'][1]}) or "
    if "choices" in meta:
        return prefix + f"one of {[c for c in meta['choices'] if c is not None]}"
    low, high = meta.get("bounds", (0, 0))
    words = {
        "bool": "True or False",
        "int": f"an integer in [{low:g}, {high:g}]",
        "float": f"a number in [{low:g}, {high:g}]",
        "str": "a non-empty string",
        "names": "a non-empty list of module names",
        "indices": f"a non-empty list of layer indices in [{low:g}, {high:g}]",
        "targets": f"a preset {list(TARGET_PRESETS)} or a non-empty list of module names such as "
                   f"{list(LLAMA_LINEAR_MODULES)}",
    }
    return prefix + words[kind]


def check_field(field_: dataclasses.Field, value: Any) -> None:
    """ValueError naming the field unless `value` is what its annotation and metadata allow."""
    name, meta, kind = field_.name, field_.metadata, KINDS[field_.name]
    if (value is None and "none" in meta) or ("unset" in meta and value == meta["unset"][0]):
        return
    if kind == "bool":
        check_bool(name, value)
    elif "choices" in meta:
        check_choice(name, value, meta["choices"])
    elif kind in ("int", "float"):
        check_range(name, value, *meta["bounds"], int if kind == "int" else float)
    elif kind == "names":
        check_names(name, value)
    elif kind == "str" and not (isinstance(value, str) and value):
        raise ValueError(f"{name} must be {allowed(name)}, got {value!r}")
    elif kind == "targets" and isinstance(value, str):
        resolve_targets(value, name, peft_form=True)  # a preset; module lists are checked against the model later
    elif kind == "targets" and not (isinstance(value, tuple) and value and
                                    all(isinstance(v, str) and v for v in value)):
        raise ValueError(f"{name} must be {allowed(name)}, got {value!r}")
    elif kind == "indices":
        if not isinstance(value, tuple) or not value:
            raise ValueError(f"{name} must be {allowed(name)}, got {value!r}")
        for index in value:
            check_range(f"{name}[i]", index, *meta["bounds"], int)


def parse_field(name: str, text: str) -> Any:
    """The value `text` stands for in field `name` (as typed in `lorakit train --set name=text`), read by the
    field's type and checked against its metadata: "8", "1e-4", "true", "None", "q_proj,v_proj" or "[0, 1]"."""
    check_known([name])
    kind, text = KINDS[name], text.strip()
    if text in ("None", "none") and (
            "none" in FIELDS[name].metadata or None in FIELDS[name].metadata.get("choices", ())):
        return None
    readers = {
        "bool": lambda: {"true": True, "false": False}[text.lower()],
        "int": lambda: int(text),
        "float": lambda: float(text),
        "str": lambda: text,
        "names": lambda: _list_items(text),
        "indices": lambda: tuple(int(i) for i in _list_items(text)),
        "targets": lambda: text if text in TARGET_PRESETS else _list_items(text),
    }
    try:
        value = readers[kind]()
    except (KeyError, ValueError, SyntaxError, TypeError):
        raise ValueError(f"{name} must be {allowed(name)}, got {text!r}") from None
    check_field(FIELDS[name], value)
    return value


def _list_items(text: str) -> tuple:
    """A Python list or tuple literal ("[0, 1]"), or comma-separated words ("q_proj,v_proj"), as a tuple."""
    if text[:1] in "[(":
        return tuple(ast.literal_eval(text))
    return tuple(part.strip() for part in text.split(",") if part.strip())


def field_table() -> str:
    """The recipe fields as a Markdown table (field, default, allowed values, meaning), from their metadata."""
    rows = ["| field | default | allowed | meaning |", "|---|---|---|---|"]
    for f in FIELDS.values():
        default = "(required)" if f.default is MISSING else f"`{f.default!r}`"
        rows.append(f"| `{f.name}` | {default} | {allowed(f.name)} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"


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
# the task recipes: the quickstart's choices on each dataset's default size for 3 epochs, with their differences
TASK_DEFAULTS: dict[str, Any] = dict(n_train=None, n_eval=None, num_train_epochs=3)
TASK_RECIPES = {
    "instruction": dict(
        description="Instruction following with QLoRA: NF4 4-bit base with double quantisation, r=16, alpha=32, "
                    "all-linear, LR 2e-4.",
        quantization="nf4"),
    "code": dict(
        description="Code generation with QLoRA: higher rank for a harder distribution (r=32, alpha=64), LR 1e-4.",
        dataset="code", quantization="nf4", r=32, lora_alpha=64, learning_rate=1e-4, max_length=384,
        num_train_epochs=2),
    "domain": dict(
        description="Domain adaptation: much new knowledge, so a high rank (r=64, alpha=128), more dropout (0.1) and "
                    "a low LR (5e-5).",
        dataset="domain", r=64, lora_alpha=128, lora_dropout=0.1, learning_rate=5e-5),
    "classification": dict(
        description="Classification: a small rank on q,v only (r=8, alpha=16), dropout 0.1 and a "
                    "sequence-classification head trained fully.",
        dataset="classification", task="seq_cls", r=8, lora_alpha=16, target_modules="q,v", lora_dropout=0.1),
    "dpo": dict(
        description="SFT then DPO: supervised fine-tuning on instructions, then preference optimisation at LR 5e-5 "
                    "(TRL DPOTrainer).",
        dataset="preference", task="dpo", sft_dataset="instruction", learning_rate=5e-5, num_train_epochs=1),
}
RECIPES: dict[str, Recipe] = {
    "quickstart": QUICKSTART,
    **{name: QUICKSTART.replace(**{**TASK_DEFAULTS, "name": name, **changes}) for name, changes in TASK_RECIPES.items()},
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
