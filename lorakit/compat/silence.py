"""Library noise kept out of lesson outputs, each switch scoped to one library message or one call.

- bitsandbytes (CPU with AVX512-BF16) logs "Failed to load CPU gemm_4bit_forward from kernels-community ..." on
  import when its optional hub kernel cannot be had (no `kernels` package, or offline); it then uses its own kernel.
  Offline, the `kernels` package (which transformers 5.25 installs) first logs "Skipping publisher trust check for
  'kernels-community/quantization-bitsandbytes' ...". `drop_bitsandbytes_kernel_notice` filters exactly those two
  records on the loggers that emit them.
- transformers 5 draws a "Loading weights" progress bar for every `from_pretrained`; `no_loading_bars` turns
  transformers' bars off for the block it wraps and restores the previous setting. TRL's trainers tokenise their
  data with `Dataset.map`, which draws datasets' bars: `no_dataset_bars` does the same for those.
- transformers 5 logs a "LOAD REPORT" table for every load with missing weights; loading a model with a new
  classification head always lists that head as MISSING (it is meant to start random). `new_head_report_dropped`
  drops exactly the reports whose only rows are the head's, for the block it wraps; any other report still shows.
- During training, bitsandbytes warns "Paged optimizers are not supported on CPU" (lorakit has already said so in
  its own note), and TRL and peft call transformers' deprecated `gradient_checkpointing_*` names (FutureWarning).
  `training_notices_dropped` ignores exactly those messages inside the training block; every other warning shows.
- lm-evaluation-harness draws a progress bar per request type and per dataset split, and warns once per task with a
  custom loader about `--metadata`, and its `git describe` (run to record a commit) prints "fatal: not a git
  repository" outside a repository; `harness_output_kept_back` holds back what one harness call and its child
  processes write to stderr and shows it only if the call fails.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_KERNEL_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"
KERNELS_HUB_LOGGER = "kernels._internals.hf_hub"
KERNELS_OFFLINE_NOTICE = "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes'"
HF_LOAD_LOGGER = "transformers.modeling_utils"


def _not_kernel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(BNB_KERNEL_NOTICE)


def _not_offline_kernel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(KERNELS_OFFLINE_NOTICE)


def drop_bitsandbytes_kernel_notice() -> None:
    """Filter bitsandbytes' notices of its hub kernel (idempotent; works before or after the libraries are imported)."""
    for name, keep in ((BNB_CPU_LOGGER, _not_kernel_notice), (KERNELS_HUB_LOGGER, _not_offline_kernel_notice)):
        logger = logging.getLogger(name)
        if keep not in logger.filters:
            logger.addFilter(keep)


def only_the_head_missing(message: str, head: str) -> bool:
    """True for a transformers LOAD REPORT whose table rows all say a `head` weight is MISSING."""
    if "LOAD REPORT" not in message:
        return False
    rows = [line for line in message.splitlines() if "|" in line and not line.startswith(("Key", "-"))]
    return bool(rows) and all(row.split("|")[0].strip().startswith(head) and "MISSING" in row for row in rows)


@contextmanager
def new_head_report_dropped(head: str = "score.") -> Iterator[None]:
    """Inside the block, drop transformers' load reports that only list the new `head` as missing."""
    logger = logging.getLogger(HF_LOAD_LOGGER)

    def keep(record: logging.LogRecord) -> bool:
        return not only_the_head_missing(record.getMessage(), head)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


TRAINING_NOTICES = (
    (UserWarning, r"Paged optimizers are not supported on CPU"),
    (FutureWarning, r"`(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is "
                    r"deprecated"),
)


@contextmanager
def training_notices_dropped() -> Iterator[None]:
    """Ignore the TRAINING_NOTICES (see the module docstring) inside the block; other warnings still show."""
    with warnings.catch_warnings():
        for category, message in TRAINING_NOTICES:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


@contextmanager
def no_loading_bars() -> Iterator[None]:
    """transformers' progress bars off inside the block, back to their previous state after it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def no_dataset_bars() -> Iterator[None]:
    """datasets' progress bars (a trainer tokenising its data with `Dataset.map`) off inside the block, back to their
    previous state after it."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_enabled = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            enable_progress_bars()


@contextmanager
def harness_output_kept_back() -> Iterator[None]:
    """Stderr written inside the block (progress bars, notices, and what child processes write to file descriptor 2,
    such as the "fatal: not a git repository" of the `git describe` lm-eval runs to record a commit) is held back; if
    the block raises, it is written to the real stderr before the error propagates, so nothing that explains a
    failure is lost."""
    held = io.StringIO()
    real = sys.stderr
    real.flush()
    with tempfile.TemporaryFile() as child_stderr:
        saved_fd = os.dup(2)
        os.dup2(child_stderr.fileno(), 2)
        sys.stderr = held
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr = real
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            if failed:
                child_stderr.seek(0)
                real.write(held.getvalue() + child_stderr.read().decode(errors="replace"))
