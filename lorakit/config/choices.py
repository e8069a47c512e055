"""The ground floor: the input checks and the shared vocabulary every other lorakit module speaks.

Nothing here imports torch or another lorakit module, so params, memory, schedules, recipes, hardware and training
can all build on it. Each name is defined once:

- the checks (`check_range`, `check_bool`, `check_choice`, `check_names`): a ValueError naming the field and what
  is allowed;
- Llama's linear module names, the target presets and the one target-module resolver (`resolve_targets`);
- tasks, quantizations, precisions (`DTYPE_NAMES`: the weight/compute dtypes), optimizers (the Trainer's names, each
  mapped to how the memory estimator counts its state), LR schedulers and eval/save strategies.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

LLAMA_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET_PRESETS: dict[str, tuple[str, ...] | str] = {
    "q,v": ("q_proj", "v_proj"),
    "q,k,v,o": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear": "all-linear",
}
MODEL_TASKS = ("causal_lm", "seq_cls")  # the heads load_base can put on a model
TASKS = (*MODEL_TASKS, "dpo")  # what a recipe can train (dpo: a causal LM, SFT then DPO)
QUANTIZATIONS = (None, "nf4", "int8")
DTYPE_NAMES = ("bf16", "fp16", "fp32")
PRECISIONS = ("auto", *DTYPE_NAMES)
# The Trainer's optimizer names, each mapped to the optimizer-state accounting of lorakit.memory.estimator.estimate
# (adafactor and paged 32-bit AdamW are counted as AdamW: an upper bound for adafactor).
OPTIMIZER_STATES = {
    "adamw_torch": "adamw",
    "adamw_8bit": "adamw_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
    "paged_adamw_32bit": "adamw",
    "adafactor": "adamw",
    "sgd": "sgd",
}
OPTIMIZERS = tuple(OPTIMIZER_STATES)
STATE_OPTIMIZERS = tuple(dict.fromkeys(OPTIMIZER_STATES.values()))  # the estimator's names: adamw, adamw_8bit, ...
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
STRATEGIES = ("no", "epoch", "steps")


def check_range(name: str, value: Any, low: float, high: float, kind: type = float) -> None:
    """ValueError unless `value` is a finite number (an integer, not 2.0, when kind is int) in [low, high]."""
    number = numbers.Integral if kind is int else numbers.Real
    ok = isinstance(value, number) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what} in [{low:g}, {high:g}], got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """ValueError unless `value` is True or False (not 0/1)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_names(name: str, value: Any) -> None:
    """ValueError unless `value` is a non-empty tuple or list of non-empty strings."""
    if not isinstance(value, (tuple, list)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a non-empty list of module names, got {value!r}")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """ValueError unless `value` is one of `allowed`."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def resolve_targets(target_modules: str | Iterable[str], field: str = "target_modules",
                    valid: Iterable[str] = LLAMA_LINEAR_MODULES, peft_form: bool = False) -> str | list[str]:
    """Module names for a preset ("q,v", "q,k,v,o", "all-linear") or a list of names, each checked against `valid`
    (Llama's linear layers unless given); anything else raises a ValueError naming `field`.

    "all-linear" becomes every name in `valid`, or stays the string peft reads when `peft_form` is set.
    """
    valid = tuple(valid)
    presets = list(TARGET_PRESETS)
    if isinstance(target_modules, str):
        if target_modules not in TARGET_PRESETS:
            raise ValueError(f"{field} must be one of {presets} or a list of module names, got {target_modules!r}")
        preset = TARGET_PRESETS[target_modules]
        if isinstance(preset, str):
            return preset if peft_form else list(valid)
        return list(preset)
    if not isinstance(target_modules, (list, tuple)) or not target_modules:
        raise ValueError(f"{field} must be a preset {presets} or a non-empty list of module names, "
                         f"got {target_modules!r}")
    names = list(target_modules)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"{field} has unknown module name(s) {unknown}; valid names: {list(valid)} "
                         f"or a preset {presets}")
    return names
