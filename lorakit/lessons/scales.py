"""One switch for the whole course: which models and how much training a chapter uses.

`LORAKIT_SCALE=cpu|gpu|auto` (or `course_scale("gpu")`) picks one of two scales:

| scale | quick runs and sweeps | lessons that need a real LM | training |
|---|---|---|---|
| cpu | the built-in tiny Llama (3.95M) | SmolLM2-135M-Instruct, offline (`smollm2-135m`) | as written in the chapter |
| gpu | the built-in tiny Llama | SmolLM2-1.7B-Instruct in NF4 (Apache-2.0, from the hub) | `steps`/`rows` × 4 |

Quick runs stay on the built-in model at both scales: chapters 1–5 teach with sweeps and reproduced pitfalls whose
settings and asserted outcomes (the LR that diverges, the run that overfits, the parameter counts by hand) are the
built-in model's, and a sweep point must take seconds on any machine. What a GPU changes is the real-LM lessons.

The GPU-scale model is SmolLM2-1.7B-Instruct, the larger sibling of the CPU scale's model: the same tokenizer at
both scales, and a family measured inside fp16's range, which matters on a T4 (no bf16, so QLoRA's linear layers
compute in fp16; the residual stream is fp32 after k-bit preparation). Qwen2/Qwen2.5 models, the earlier choice, are
reported upstream to overflow to NaN or garbage in fp16. tests/models/test_fp16_safety.py measures SmolLM2-135M on
the course's prompts: its largest linear-layer input or output is about 24,900, 38% of fp16's 65,504. The 1.7B
itself cannot be measured offline; benchmarks/gpu_check.py runs chapter 6's path forced to fp16 on its shape.

Each scale has a memory limit that chapter 6 asserts every real-model run stays under: at CPU scale Binder's 2 GiB
(1.9 GiB, since the notebook server shares it), at GPU scale a Colab T4's 15 GiB.

`auto` (the default) is `gpu` on a CUDA machine that may reach the hub, else `cpu`. Asking for `gpu` without CUDA is
one clear ValueError. Chapters call `model_for("quick")` / `model_for("real")`, `steps(n)` and `rows(n)` and print
`describe()`, so the text can say which scale produced what the learner sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..models.load import hub_offline

SCALE_ENV = "LORAKIT_SCALE"
SCALE_NAMES = ("cpu", "gpu", "auto")
ROLES = ("quick", "real")
GPU_REAL_MODEL = "HuggingFaceTB/SmolLM2-1.7B-Instruct"  # Apache-2.0, ungated, 1.71B parameters (SMOLLM2_1_7B)


@dataclass(frozen=True)
class Scale:
    """The models and training sizes of one scale (see the module docstring)."""

    name: str
    quick_model: str
    real_model: str
    real_quantization: str | None
    factor: int
    memory_limit_bytes: int
    memory_limit_reason: str

    def model_for(self, role: str) -> str:
        """The base-model name for a role: 'quick' (sweeps, fast demos) or 'real' (lessons that need a real LM)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
        return self.quick_model if role == "quick" else self.real_model

    def steps(self, n: int) -> int:
        """A chapter's step count at this scale."""
        return n * self.factor

    def rows(self, n: int) -> int:
        """A chapter's number of training rows at this scale."""
        return n * self.factor

    def describe(self) -> str:
        """One line naming the scale and its models, for the chapter's output."""
        quant = f" in {self.real_quantization.upper()}" if self.real_quantization else ""
        return (f"scale {self.name}: quick runs on {self.quick_model!r}, real-LM lessons on {self.real_model!r}"
                f"{quant}, steps and rows × {self.factor}")


SCALES = {
    "cpu": Scale("cpu", quick_model="tiny", real_model="smollm2-135m", real_quantization=None, factor=1,
                 memory_limit_bytes=int(1.9 * 2**30),
                 memory_limit_reason="Binder's 2 GiB, which the notebook server shares with the kernel"),
    "gpu": Scale("gpu", quick_model="tiny", real_model=GPU_REAL_MODEL, real_quantization="nf4", factor=4,
                 memory_limit_bytes=15 * 2**30, memory_limit_reason="a Colab T4's 15 GiB of GPU memory"),
}


def course_scale(name: str | None = None) -> Scale:
    """The Scale for `name` ('cpu', 'gpu', 'auto'); None reads $LORAKIT_SCALE (default 'auto')."""
    import torch

    chosen = name if name is not None else (os.environ.get(SCALE_ENV) or "auto")
    if chosen not in SCALE_NAMES:
        raise ValueError(f"scale ({SCALE_ENV} or the argument) must be one of {list(SCALE_NAMES)}, got {chosen!r}")
    cuda = torch.cuda.is_available()
    if chosen == "auto":
        chosen = "gpu" if cuda and not hub_offline() else "cpu"
    if chosen == "gpu" and not cuda:
        raise ValueError(f"scale 'gpu' needs a CUDA GPU and none is visible: set {SCALE_ENV}=cpu (or auto), "
                         "or run on a GPU kernel")
    return SCALES[chosen]
