"""The one place that knows how transformers, peft, TRL, torch and accelerate versions differ.

Everything else in lorakit speaks one vocabulary (the Training Guide's: `warmup_ratio`, `gradient_checkpointing`,
`evaluation_strategy`) and this module translates it for the libraries at or above pyproject's floors
(transformers 5.23, peft 0.18, TRL 0.29, accelerate 1.6, torch 2.4):

- transformers 5.15 removed `warmup_ratio`: a float < 1 passed as `warmup_steps` means a ratio.
- `evaluation_strategy` became `eval_strategy`; `gradient_checkpointing` became `activation_checkpointing` (5.23;
  the old name is a deprecated alias).
- `torch.OutOfMemoryError` exists from torch 2.5; `torch.cuda.OutOfMemoryError` (the same class there) before:
  `OutOfMemoryError`.
- bitsandbytes counts as installed only at the version transformers itself accepts (`is_bitsandbytes_available`),
  TensorBoard through transformers' own probe.
- FSDP: the full (gathered) state dict for saving, set through accelerate's plugin (`gather_full_state_dict`).
- peft 0.21 still reads `model.is_gradient_checkpointing`, deprecated in transformers 5: `quiet_peft_deprecations()`
  silences that one FutureWarning around the calls that add an adapter (it would land on stderr in the notebook
  cell), and nothing else; `get_peft_model` is peft's, called inside it.
- bitsandbytes 0.50 repacks 4-bit weights for CPUs with AVX512-BF16 at inference and keeps them packed; training
  afterwards gets wrong gradients through the packed kernel, and the repacking fails unless a layer's output size is
  a multiple of 32 (the built-in model's MLP is 688 wide): `keep_4bit_layers_off_cpu_repacking`.
- peft 0.22 renamed `prepare_model_for_kbit_training`'s `gradient_checkpointing_kwargs` to
  `activation_checkpointing_kwargs` and warns on the old name: `prepare_model_for_kbit_training`.
- peft 0.18's `unload()` leaves `peft_config` on the base model: `unload_adapters`.
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
from transformers import TrainingArguments
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


def prepare_model_for_kbit_training(model: Any, use_gradient_checkpointing: bool) -> Any:
    """peft's `prepare_model_for_kbit_training` with non-reentrant checkpointing, under the installed peft's name
    for the checkpointing keyword arguments (`activation_checkpointing_kwargs` from 0.22)."""
    from peft import prepare_model_for_kbit_training as peft_prepare

    parameters = inspect.signature(peft_prepare).parameters
    name = next(n for n in ("activation_checkpointing_kwargs", "gradient_checkpointing_kwargs") if n in parameters)
    return peft_prepare(model, use_gradient_checkpointing=use_gradient_checkpointing, **{name: {"use_reentrant": False}})


def unload_adapters(peft_model: Any) -> Any:
    """peft's `unload()`: the base model with its original layers back and no adapter. peft 0.18 leaves the copied
    `peft_config` attribute on the base model (later releases delete it), which makes the next `get_peft_model` on
    that base warn of "multiple adapters" and lorakit take the base for an adapted model."""
    base = peft_model.unload()
    if hasattr(base, "peft_config"):
        del base.peft_config
    return base


def gather_full_state_dict(trainer: Any) -> None:
    """Under FSDP, make `trainer.save_model` gather the full state dict (a sharded one leaves rank 0 a shard)."""
    trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")


@cache
def _fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def translate_training_kwargs(cls: type = TrainingArguments, **kwargs: Any) -> dict[str, Any]:
    """Rename guide-vocabulary keyword arguments to the ones `cls` (a TrainingArguments subclass) accepts."""
    out = dict(kwargs)
    ratio = out.pop("warmup_ratio", 0)
    if ratio:  # a float below 1 in warmup_steps is read as a fraction of the total steps
        out["warmup_steps"] = float(ratio)
    for old, new in (("evaluation_strategy", "eval_strategy"), ("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        if old in out:
            out[new] = out.pop(old)
    unknown = sorted(set(out) - _fields(cls))
    if unknown:
        raise ValueError(f"unknown training argument(s) {unknown} for {cls.__name__} of the installed transformers")
    return out


def training_arguments(cls: type = TrainingArguments, **kwargs: Any) -> Any:
    """Build `cls` (TrainingArguments, or TRL's DPOConfig) from guide-vocabulary keyword arguments."""
    return cls(**translate_training_kwargs(cls, **kwargs))


def keep_4bit_layers_off_cpu_repacking(model: Any) -> int:
    """Send every 4-bit layer to bitsandbytes' generic CPU kernel instead of its AVX512-BF16 one; returns how many
    layers were switched. GPUs, and CPUs without AVX512-BF16, never take that path, so nothing changes there.

    bitsandbytes 0.50 repacks a layer's weights for that kernel at its first forward in eval mode without gradients
    (an evaluation, a generation) and keeps them packed. The packed kernel has no autograd formula, so training after
    that backpropagates wrongly through the frozen layers (torch warns "an autograd kernel was not registered"; the
    LoRA gradients of the built-in model change by up to 139% after one evaluation), and the repacking fails outright
    on layers whose width is not a multiple of 32 (the built-in model's 688-wide MLP). The generic kernel costs no
    measurable time on the built-in model (an eval forward of 16 × 64 tokens: 54 ms either way)."""
    switched = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            switched += 1
    return switched
