"""Peak memory of one training run: CUDA's allocator peak on a GPU, the process's peak RSS since the run began on CPU.

On Linux the kernel's peak-RSS mark (VmHWM) is reset by writing 5 to /proc/self/clear_refs, so each run reports its
own peak instead of the process's lifetime maximum. Where that is impossible (not Linux, or not permitted) the
lifetime peak is returned and its kind says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
from pathlib import Path

import torch

CLEAR_REFS, STATUS = Path("/proc/self/clear_refs"), Path("/proc/self/status")


def trim_heap() -> None:
    """(glibc) `malloc_trim(0)`: heap pages already freed leave the process instead of staying resident (< 1 ms)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name and hasattr(ctypes.CDLL(libc_name), "malloc_trim"):
        ctypes.CDLL(libc_name).malloc_trim(0)


def release_memory() -> None:
    """Collect garbage, then `trim_heap`: a model deleted in a notebook stops counting in the kernel's resident memory
    before the next one loads. (The collection is the slow part, ~0.2 s with the training libraries imported.)"""
    gc.collect()
    trim_heap()


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark; False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """VmHWM from /proc/self/status (bytes), or the lifetime ru_maxrss where /proc is missing."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """`meter = PeakMemory(device); meter.start(); ...; peak_bytes, kind = meter.read()`."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.per_run = False

    def start(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            self.per_run = True
        else:
            self.per_run = reset_peak_rss()

    def read(self) -> tuple[int, str]:
        if self.device.startswith("cuda"):
            return torch.cuda.max_memory_allocated(), "cuda max_memory_allocated"
        return peak_rss_bytes(), "peak RSS of this run" if self.per_run else "process lifetime peak RSS"
