"""The one place that knows how transformers, peft and TRL versions differ.

Everything else in lorakit speaks one vocabulary (the Training Guide's: `warmup_ratio`, `gradient_checkpointing`,
`eval_strategy`, `tokenizer`) and this module translates it for the installed libraries:

- transformers 5.x removed `warmup_ratio`: a float < 1 passed as `warmup_steps` means a ratio.
- `evaluation_strategy` became `eval_strategy` (4.41+).
- `gradient_checkpointing` became `activation_checkpointing` (5.x; the old name is a deprecated alias).
- `Trainer(tokenizer=...)` became `Trainer(processing_class=...)`; TRL followed.
- `torch.OutOfMemoryError` exists from torch 2.5; `torch.cuda.OutOfMemoryError` (the same class there) before:
  `OutOfMemoryError`.
- bitsandbytes counts as installed only at the version transformers itself accepts (`is_bitsandbytes_available`),
  TensorBoard through transformers' own probe.
- FSDP: the full (gathered) state dict for saving, set through accelerate's plugin (`gather_full_state_dict`).
- peft 0.21 still reads `model.is_gradient_checkpointing`, deprecated in transformers 5: `quiet_peft_deprecations()`
  silences that one FutureWarning around the calls that add an adapter (it would land on stderr in the notebook
  cell), and nothing else; `get_peft_model` is peft's, called inside it.
- bitsandbytes 0.50 repacks 4-bit weights for CPUs with AVX512-BF16 at inference and fails unless a layer's output
  size is a multiple of 32 and its input size a multiple of 64 (the built-in model's MLP is 688 wide):
  `keep_4bit_layers_off_cpu_repacking`.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.integrations import is_tensorboard_available
from transformers.utils import is_bitsandbytes_available



def out_of_memory_error(torch_module: Any = torch) -> type[BaseException]:
    """The out-of-memory exception of `torch_module`: torch.OutOfMemoryError from torch 2.5, torch.cuda's before."""
    return getattr(torch_module, "OutOfMemoryError", None) or torch_module.cuda.OutOfMemoryError


OutOfMemoryError: type[BaseException] = out_of_memory_error()


def bitsandbytes_available() -> bool:
    """bitsandbytes is installed at a version the installed transformers can use."""
    return is_bitsandbytes_available()


def tensorboard_available() -> bool:
    """TensorBoard (or tensorboardX) is installed, so the Trainer can write event files."""
    return is_tensorboard_available()


@contextmanager
def quiet_peft_deprecations() -> Iterator[None]:
    """Silence peft's read of the deprecated `is_gradient_checkpointing` (transformers 5) for the duration."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def get_peft_model(model: Any, peft_config: Any, **kwargs: Any) -> Any:
    """peft's `get_peft_model(model, peft_config, **kwargs)`, without the deprecation warning of its read of
    `is_gradient_checkpointing` (transformers 5)."""
    from peft import get_peft_model as peft_get_peft_model

    with quiet_peft_deprecations():
        return peft_get_peft_model(model, peft_config, **kwargs)


def gather_full_state_dict(trainer: Any) -> None:
    """Under FSDP, make `trainer.save_model` gather the full state dict (a sharded one leaves rank 0 a shard)."""
    trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")


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
    unknown = sorted(set(out) - fields)
    if unknown:
        raise ValueError(f"unknown training argument(s) {unknown} for {cls.__name__} of the installed transformers")
    return out


def training_arguments(cls: type = TrainingArguments, **kwargs: Any) -> Any:
    """Build `cls` (TrainingArguments, or TRL's DPOConfig) from guide-vocabulary keyword arguments."""
    return cls(**translate_training_kwargs(cls, **kwargs))


def trainer_kwargs(trainer_cls: type = Trainer, tokenizer: Any = None) -> dict[str, Any]:
    """The keyword under which `trainer_cls` wants the tokenizer (`processing_class` in transformers 5 and TRL)."""
    if tokenizer is None:
        return {}
    if "processing_class" not in inspect.signature(trainer_cls.__init__).parameters:
        raise TypeError(f"{trainer_cls.__name__} takes no processing_class: it predates transformers 5 / TRL 0.20")
    return {"processing_class": tokenizer}


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
