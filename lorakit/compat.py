"""The one place that knows how transformers, peft and TRL versions differ.

Everything else in lorakit speaks one vocabulary (the Training Guide's: `warmup_ratio`, `gradient_checkpointing`,
`eval_strategy`, `tokenizer`) and this module translates it for the installed libraries:

- transformers 5.x removed `warmup_ratio`: a float < 1 passed as `warmup_steps` means a ratio.
- `evaluation_strategy` became `eval_strategy` (4.41+).
- `gradient_checkpointing` became `activation_checkpointing` (5.x; the old name is a deprecated alias).
- `no_cuda` became `use_cpu`.
- `Trainer(tokenizer=...)` became `Trainer(processing_class=...)`; TRL followed.
- peft 0.21 still reads `model.is_gradient_checkpointing`, deprecated in transformers 5: the FutureWarning it
  prints on every `get_peft_model` is silenced here (it lands on stderr in each notebook cell that adds an adapter).
- bitsandbytes 0.50 repacks 4-bit weights for CPUs with AVX512-BF16 at inference and fails unless a layer's output
  size is a multiple of 32 and its input size a multiple of 64 (the built-in model's MLP is 688 wide):
  `keep_4bit_layers_off_cpu_repacking`.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from functools import cache
from typing import Any

from transformers import Trainer, TrainingArguments

warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)


@cache
def _fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def translate_training_kwargs(cls: type = TrainingArguments, **kwargs: Any) -> dict[str, Any]:
    """Rename guide-vocabulary keyword arguments to the ones `cls` (a TrainingArguments subclass) accepts."""
    fields = _fields(cls)
    out = dict(kwargs)
    if "warmup_ratio" in out:
        ratio = out.pop("warmup_ratio")
        if "warmup_ratio" in fields:
            out["warmup_ratio"] = ratio
        elif ratio:
            # transformers >= 5: a float below 1 in warmup_steps is read as a fraction of the total steps.
            out["warmup_steps"] = float(ratio)
    if "evaluation_strategy" in out and "evaluation_strategy" not in fields:
        out["eval_strategy"] = out.pop("evaluation_strategy")
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        if old in out and new in fields:
            out[new] = out.pop(old)
    if "use_cpu" in out and "use_cpu" not in fields:
        out["no_cuda"] = out.pop("use_cpu")
    unknown = sorted(set(out) - fields)
    if unknown:
        raise ValueError(f"unknown training argument(s) {unknown} for {cls.__name__} of the installed transformers")
    return out


def training_arguments(cls: type = TrainingArguments, **kwargs: Any) -> Any:
    """Build `cls` (TrainingArguments, or TRL's DPOConfig) from guide-vocabulary keyword arguments."""
    return cls(**translate_training_kwargs(cls, **kwargs))


def trainer_kwargs(trainer_cls: type = Trainer, tokenizer: Any = None) -> dict[str, Any]:
    """The keyword under which `trainer_cls` wants the tokenizer: `processing_class` (new) or `tokenizer` (old)."""
    if tokenizer is None:
        return {}
    params = inspect.signature(trainer_cls.__init__).parameters
    return {"processing_class" if "processing_class" in params else "tokenizer": tokenizer}


def gradient_checkpointing_enabled(args: Any) -> bool:
    """Whether TrainingArguments `args` asks for gradient (activation) checkpointing, under either name."""
    return bool(getattr(args, "activation_checkpointing", None) or getattr(args, "gradient_checkpointing", None))


BNB_CPU_PACK_BLOCK = 32  # bitsandbytes' block_n for the AVX512-BF16 CPU repacking


def keep_4bit_layers_off_cpu_repacking(model: Any) -> int:
    """Send 4-bit layers that bitsandbytes' AVX512-BF16 CPU repacking can't handle (see `cpu_repackable`; it fails
    on them in eval mode) to its generic CPU kernel; returns how many layers were switched. Other layers, and GPUs,
    are untouched."""
    switched = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False) and not cpu_repackable(module):
            module.support_avx512bf16_for_cpu = False
            switched += 1
    return switched


def cpu_repackable(module: Any) -> bool:
    """Whether bitsandbytes' CPU repacking handles this 4-bit layer: output size a multiple of 32, input size a
    multiple of the quantisation block (64)."""
    state = getattr(module.weight, "quant_state", None)
    blocksize = getattr(state, "blocksize", 64)
    return module.out_features % BNB_CPU_PACK_BLOCK == 0 and module.in_features % blocksize == 0
