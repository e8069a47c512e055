"""Measured training memory of a randomly initialised Llama of a given shape, no download (chapter 4, benchmarks).

`random_checkpoint` writes random bf16 weights as safetensors shards, one shard in memory at a time, so even a 7B
model (13.5 GB in bf16) never exists whole in CPU or GPU memory: `load_checkpoint` reads it shard by shard, in NF4
with double quantisation if asked (what fits a 7B on a 15 GB Colab T4). `measure_loaded` trains a few AdamW steps on
random tokens with LoRA (r, alpha 2r, all-linear, dropout 0) and compares the peak with `lorakit.memory.estimator.estimate`;
`measure` does all of it for one point. On a GPU the peak is `torch.cuda.max_memory_allocated`; on CPU it is the
process's peak RSS, which also counts the libraries (a code-path check, not a measurement to compare).
`add_lora(kbit_prepared=True)` first applies peft's `prepare_model_for_kbit_training` to a quantized model, as
`lorakit.train` does (embeddings, norms and lm_head up-cast to fp32; the estimate counts that with its own
`kbit_prepared`). On a GPU each point also records `torch.cuda.max_memory_reserved`: what the caching allocator held,
allocated or not (fragmentation and cached blocks), still without the CUDA context.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from ..compat.silence import no_loading_bars
from ..compat.versions import get_peft_model, prepare_model_for_kbit_training
from ..models.hardware import DTYPES, choose_dtype
from ..models.shapes import ModelShape
from .estimator import estimate
from .peak import PeakMemory, release_memory

INDEX_FILE = "model.safetensors.index.json"
INIT_STD = 0.02  # transformers' initializer_range for Llama
PRECISION_NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class Measurement:
    """One training point: measured peak memory against lorakit's estimate, and the mean step time."""

    shape: str
    quantization: str  # "none" or "nf4"
    checkpointing: bool
    seq: int
    batch: int
    estimate_bytes: int
    measured_bytes: int
    measured_kind: str
    error_pct: float  # (estimate - measured) / measured
    step_seconds: float
    kbit_prepared: bool = False
    reserved_bytes: int | None = None  # torch.cuda.max_memory_reserved on a GPU; None on CPU


def parameter_shapes(shape: ModelShape) -> dict[str, torch.Size]:
    """Name → size of every parameter of a Llama of `shape` (built on the meta device: no memory); a tied lm_head
    shares the embedding, so it is not listed."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(shape.llama_config())
    return {name: p.shape for name, p in model.named_parameters()}


def shard_plan(sizes: dict[str, torch.Size], shard_bytes: int) -> list[list[str]]:
    """Parameter names grouped in order into shards of at most `shard_bytes` of bf16 (a larger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, size in sizes.items():
        nbytes = 2 * size.numel()
        if shards[-1] and used + nbytes > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += nbytes
    return shards


def random_checkpoint(shape: ModelShape, folder: str | Path, seed: int = 0, shard_bytes: int = 1 << 30) -> Path:
    """Write a random bf16 checkpoint of `shape` (weights normal with std 0.02, 1-D norm weights ones) into `folder`:
    safetensors shards of about `shard_bytes`, their index and config.json. Only one shard is in memory at a time."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = parameter_shapes(shape)
    plan = shard_plan(sizes, shard_bytes)
    generator = torch.Generator().manual_seed(seed)
    weight_map = {}
    for number, names in enumerate(plan, start=1):
        filename = f"model-{number:05d}-of-{len(plan):05d}.safetensors"
        tensors = {name: random_tensor(sizes[name], generator) for name in names}
        save_file(tensors, folder / filename, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(names, filename)
    total = sum(2 * size.numel() for size in sizes.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=1))
    shape.llama_config(max_position_embeddings=4096, dtype=torch.bfloat16).save_pretrained(folder)
    return folder


def random_tensor(size: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Ones for a norm weight (the only 1-D parameters of a Llama), else normal(0, 0.02), in bf16."""
    if len(size) == 1:
        return torch.ones(size, dtype=torch.bfloat16)
    return torch.empty(size, dtype=torch.bfloat16).normal_(0.0, INIT_STD, generator=generator)


def half_dtype(device: str) -> torch.dtype:
    """The 16-bit dtype to train in: bf16 (on CPU too, as on the GPUs it stands in for), but fp16 on CUDA GPUs
    without native bf16 (Colab's T4)."""
    return choose_dtype(device) if device.startswith("cuda") else torch.bfloat16


def load_checkpoint(folder: str | Path, quantization: str | None = None, device: str = "cuda") -> Any:
    """The checkpoint in `folder` on `device`, in `half_dtype(device)` or as NF4 with double quantisation."""
    dtype = half_dtype(device)
    bnb = None
    if quantization == "nf4":
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=dtype)
    elif quantization is not None:
        raise ValueError(f"quantization must be None or 'nf4', got {quantization!r}")
    with no_loading_bars():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=bnb,
                                                    device_map={"": 0 if device == "cuda" else device})


def add_lora(model: Any, r: int = 16, kbit_prepared: bool = False) -> Any:
    """`model` with a LoRA adapter: rank r, alpha 2r, every linear layer, no dropout; with `kbit_prepared`, after
    peft's `prepare_model_for_kbit_training` (a quantized model, as `lorakit.train` prepares it)."""
    if kbit_prepared:
        model = prepare_model_for_kbit_training(model, True)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def release(device: str) -> None:
    """Free what Python no longer references, and CUDA's cached blocks on a GPU."""
    release_memory()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def set_checkpointing(model: Any, on: bool) -> None:
    """Gradient checkpointing (non-reentrant, with input gradients for the frozen embeddings) on or off."""
    if on:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    else:
        model.activation_checkpointing_disable()
        model.disable_input_require_grads()


def measure_loaded(model: Any, shape: ModelShape, quantization: str | None = None, checkpointing: bool = True,
                   seq: int = 512, batch: int = 1, steps: int = 3, r: int = 16, device: str = "cuda",
                   kbit_prepared: bool = False) -> Measurement:
    """Train `steps` torch AdamW steps of `model` (from `load_checkpoint` + `add_lora(r, kbit_prepared)`) on random
    tokens; its peak memory, the mean time of the last half of the steps, and the estimate for the same settings."""
    set_checkpointing(model, checkpointing)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    release(device)
    meter = PeakMemory(device)
    meter.start()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, shape.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    measured, kind = meter.read()
    reserved = torch.cuda.max_memory_reserved() if device.startswith("cuda") else None
    del optimizer
    est = estimate(shape, precision=PRECISION_NAMES[model.config.dtype], quantization=quantization, optimizer="adamw",
                   gradient_checkpointing=checkpointing, batch=batch, seq_len=seq, r=r, targets="all-linear",
                   kbit_prepared=kbit_prepared)
    return Measurement(shape.name, quantization or "none", checkpointing, seq, batch, est.total, measured, kind,
                       100 * (est.total - measured) / measured, statistics.mean(times[-max(1, steps // 2):]),
                       kbit_prepared, reserved)


def measure(shape: ModelShape, quantization: str | None = None, checkpointing: bool = True, seq: int = 512,
            batch: int = 1, steps: int = 3, r: int = 16, device: str = "cuda",
            folder: str | Path | None = None) -> Measurement:
    """Load a random model of `shape` (from `folder`, written by `random_checkpoint`; None writes one to a temporary
    folder and deletes it), add LoRA r and train: see `measure_loaded`."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="lorakit-random-") as tmp:
            return measure(shape, quantization, checkpointing, seq, batch, steps, r, device,
                           random_checkpoint(shape, tmp))
    model = add_lora(load_checkpoint(folder, quantization, device), r)
    try:
        return measure_loaded(model, shape, quantization, checkpointing, seq, batch, steps, r, device)
    finally:
        del model
        release(device)
