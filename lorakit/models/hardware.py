"""What this machine can do, and the precision a run should use on it.

bf16 only where the GPU supports it natively (Ampere and newer), fp16 on older CUDA GPUs such as Colab's T4,
fp32 on CPU unless a user asks otherwise. Every fallback is announced, never silent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..compat.notes import announce
from ..config.choices import DTYPE_NAMES, PRECISIONS, check_choice

DTYPES = dict(zip(DTYPE_NAMES, (torch.bfloat16, torch.float16, torch.float32)))


@dataclass(frozen=True)
class Hardware:
    """A summary of the accelerator (if any) this process sees."""

    device: str
    name: str
    bf16: bool
    fp16: bool
    total_memory_bytes: int | None
    bitsandbytes: bool

    @property
    def best_precision(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


def _native_bf16() -> bool:
    if not torch.cuda.is_available():
        return False
    return torch.cuda.is_bf16_supported(including_emulation=False)


def detect() -> Hardware:
    """Probe the device: CUDA GPU if present, else CPU."""
    from ..compat.versions import bitsandbytes_available  # lazily: compat imports transformers

    has_bnb = bitsandbytes_available()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, _native_bf16(), True, props.total_memory, has_bnb)
    return Hardware("cpu", "CPU", False, False, None, has_bnb)


def resolve_device(device: str = "auto") -> str:
    """'auto' → 'cuda' when a GPU is present, else 'cpu'; other values are checked and returned.

    Under torchrun / accelerate launch (LOCAL_RANK set) 'auto' is this process's own GPU, 'cuda:<LOCAL_RANK>': each
    rank loads its copy of the model onto its GPU, not all of them onto GPU 0.
    """
    if device == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        local_rank = os.environ.get("LOCAL_RANK", "")
        return f"cuda:{int(local_rank)}" if local_rank.isdigit() else "cuda"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return device


def sharded_launch() -> bool:
    """True under `accelerate launch` with FSDP or DeepSpeed ZeRO-3: the model's parameters will be sharded."""
    env = os.environ
    fsdp = env.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
    deepspeed = env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
    return fsdp or (deepspeed and env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3")


def choose_precision(requested: str = "auto", hardware: Hardware | None = None) -> str:
    """Return the precision to train in: the requested one if the hardware runs it natively, else the best it has."""
    check_choice("precision", requested, PRECISIONS)
    hw = hardware or detect()
    if requested == "auto":
        return hw.best_precision
    if requested == "bf16" and not hw.bf16:
        fallback = "fp16" if hw.fp16 else "fp32"
        announce(f"bf16 requested but {hw.name} has no native bf16: training in {fallback} instead", once=True)
        return fallback
    if requested == "fp16" and not hw.fp16:
        announce(f"fp16 requested but {hw.name} has no fp16 mixed precision: training in fp32 instead", once=True)
        return "fp32"
    return requested


def choose_dtype(device: str = "auto") -> torch.dtype:
    """Weights dtype for loading: bf16 on native-bf16 GPUs, fp16 on other GPUs, fp32 on CPU."""
    device = resolve_device(device)
    if device.startswith("cuda"):
        return torch.bfloat16 if _native_bf16() else torch.float16
    return torch.float32


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")  # cgroup v1: quota (-1: none), period beside it


def usable_cpus() -> int:
    """CPUs this process may really use: its CPU affinity, capped by a container's CPU quota (Binder, Docker).

    torch sizes its thread pool from the cores it sees, which in a container are the host's: 16 threads on a
    2-CPU quota spend their time waiting for each other.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = None
    try:
        if CGROUP_CPU_MAX.exists():
            limit, period = CGROUP_CPU_MAX.read_text().split()[:2]
            quota = None if limit == "max" else int(limit) / int(period)
        elif CGROUP_V1_QUOTA.exists():
            limit = int(CGROUP_V1_QUOTA.read_text())
            period = int((CGROUP_V1_QUOTA.parent / "cpu.cfs_period_us").read_text())
            quota = None if limit <= 0 else limit / period
    except (OSError, ValueError):
        quota = None
    return max(1, min(count, int(quota) if quota else count))


@contextmanager
def cpu_threads_for(device: str, limit: int | None = None) -> Iterator[int]:
    """On CPU, cap torch's threads at `usable_cpus()` (and at `limit` when given) for the duration, then restore
    them; yields the count used."""
    before = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(min(before, usable_cpus(), limit or before))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
