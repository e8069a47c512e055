"""Learning-rate schedules exactly as the Trainer applies them (chapter 3)."""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from ..config.choices import SCHEDULERS, check_choice, check_range

# Typical peak learning rates by method (the Training Guide's ranges, in our words): LoRA adapters are small and
# start at zero, so they tolerate ~10x the LR of full fine-tuning; preference optimisation is the most delicate.
LR_RANGES: dict[str, tuple[float, float]] = {
    "full fine-tuning": (1e-5, 5e-5),
    "LoRA": (1e-4, 3e-4),
    "QLoRA": (1e-4, 2e-4),
    "DoRA": (5e-5, 2e-4),
    "domain adaptation (LoRA, high rank)": (2e-5, 1e-4),
    "DPO": (5e-7, 5e-5),
}


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warmup steps the Trainer derives from a ratio: ceil(total × ratio)."""
    check_range("total_steps", total_steps, 1, 10**9, int)
    check_range("warmup_ratio", warmup_ratio, 0.0, 1.0)
    return math.ceil(total_steps * warmup_ratio)


def lr_curve(scheduler: str, total_steps: int, peak_lr: float = 2e-4, warmup_ratio: float = 0.03,
             fixed_warmup_steps: int = 0, **scheduler_kwargs: float) -> list[float]:
    """The LR at each optimizer step 0…total_steps-1, from transformers' own scheduler implementation.

    fixed_warmup_steps > 0 replaces the ratio by that many steps (the Trainer's `warmup_steps=100`), even when it
    is longer than the run.
    """
    check_choice("scheduler", scheduler, SCHEDULERS)
    check_range("peak_lr", peak_lr, 1e-12, 10.0)
    check_range("fixed_warmup_steps", fixed_warmup_steps, 0, 10**9, int)
    warmup = fixed_warmup_steps or warmup_steps(total_steps, warmup_ratio)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak_lr)
    sched = get_scheduler(scheduler, optimizer, num_warmup_steps=warmup,
                          num_training_steps=total_steps, scheduler_specific_kwargs=scheduler_kwargs or None)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        sched.step()
    return lrs
