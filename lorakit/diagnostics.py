"""Pitfall diagnostics (chapter 5): read a run's logs, name what went wrong, and say how to fix it.

`diagnose(run, ...)` checks five pitfalls with thresholds stated as relative changes (so they do not depend on the
task's loss scale):

| pitfall | evidence | threshold |
|---|---|---|
| loss not decreasing | mean train loss of the last fifth vs the first fifth of logged steps | < 10% lower |
| overfitting | eval loss rises after its minimum while train loss keeps falling | last eval > best × 1.05 |
| divergence | a NaN/Inf loss or grad norm, or a final loss above the first | any, or last > first × 1.2 |
| grad-norm spikes | a grad norm far above the run's median | > 10 × median |
| forgetting | base-corpus perplexity with the adapter vs without | more than doubled (ratio > 2) |
| poor generation | empty, runaway, repetitive or identical answers; pad == eos | > 20% / 30% repeated / > 50% same |

`NanGuardCallback` stops a Trainer at the first non-finite loss or grad norm and prints the diagnosis.
`reproduce(name)` re-creates each pitfall on the built-in model, for the chapter to detect and then fix.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from transformers import TrainerCallback

from .hardware import announce

FIXES: dict[str, list[str]] = {
    "loss not decreasing": [
        "raise the learning rate (×2–3; LoRA usually wants 1e-4–3e-4, tiny models more)",
        "raise lora_alpha or the rank (alpha/r is the adapter's scale)",
        "target more modules (all-linear)",
        "check the labels: are all answer tokens masked to -100 by mistake?",
    ],
    "overfitting": [
        "stop earlier: keep the best epoch's checkpoint (save_strategy='epoch')",
        "more lora_dropout (0.1 for < 1k examples), lower rank",
        "more or more varied training data",
    ],
    "divergence": [
        "lower the learning rate (÷3–10) and keep warmup (3%)",
        "clip gradients (max_grad_norm=0.3)",
        "use bf16 rather than fp16 where the GPU supports it",
    ],
    "grad-norm spikes": [
        "clip gradients (max_grad_norm=0.3)",
        "lower the learning rate; check for corrupt or very long examples",
    ],
    "forgetting": [
        "lower the learning rate or train fewer steps",
        "lower the rank / target fewer modules",
        "mix some general (pre-training style) text into the fine-tuning data",
    ],
    "poor generation": [
        "mask the prompt tokens in the labels (train on answers only)",
        "give the tokenizer a pad token distinct from eos, and end every answer with eos",
        "limit max_new_tokens; use a repetition penalty when sampling",
    ],
}


@dataclass(frozen=True)
class Finding:
    """One detected pitfall with its numeric evidence and the fixes to try."""

    pitfall: str
    evidence: str
    fixes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"⚠ {self.pitfall}: {self.evidence}\n" + "\n".join(f"    → {fix}" for fix in self.fixes)


def _finding(pitfall: str, evidence: str) -> Finding:
    return Finding(pitfall, evidence, FIXES[pitfall])


def _history(run: Any) -> list[dict[str, float]]:
    history = getattr(run, "log_history", run)
    if not isinstance(history, (list, tuple)):
        raise ValueError("run must be a TrainResult or a list of log dicts (trainer.state.log_history)")
    return list(history)


def _check_losses(history: list[dict[str, float]]) -> list[Finding]:
    found = []
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    bad = [(h.get("step"), k) for h in history for k in ("loss", "grad_norm", "eval_loss")
           if k in h and not math.isfinite(h[k])]
    if bad:
        step, key = bad[0]
        found.append(_finding("divergence", f"{key} became non-finite at step {step}"))
        return found
    if len(train) >= 5:
        fifth = max(1, len(train) // 5)
        first = statistics.mean(loss for _, loss in train[:fifth])
        last = statistics.mean(loss for _, loss in train[-fifth:])
        if last > 1.2 * first:
            found.append(_finding("divergence", f"train loss rose from {first:.3f} to {last:.3f}"))
        elif last > 0.9 * first:
            found.append(_finding("loss not decreasing",
                                  f"train loss {first:.3f} → {last:.3f} ({100 * (1 - last / first):.1f}% lower) over "
                                  f"{train[-1][0]} steps"))
    norms = [h["grad_norm"] for h in history if "grad_norm" in h]
    if len(norms) >= 5:
        median = statistics.median(norms)
        peak = max(norms)
        if median > 0 and peak > 10 * median:
            found.append(_finding("grad-norm spikes", f"grad norm peaked at {peak:.3g}, {peak / median:.0f}× its "
                                                      f"median {median:.3g}"))
    evals = [(h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if len(evals) >= 3:
        best_epoch, best = min(evals, key=lambda e: e[1])
        last_epoch, last_eval = evals[-1]
        falling = len(train) >= 2 and train[-1][1] < train[0][1]
        if last_eval > 1.05 * best and falling and best_epoch < last_epoch:
            found.append(_finding("overfitting", f"eval loss fell to {best:.3f} at epoch {best_epoch:g}, then rose "
                                                 f"to {last_eval:.3f} by epoch {last_epoch:g} while train loss kept "
                                                 "falling"))
    return found


def diagnose(run: Any, forgetting: dict[str, float] | None = None, answers: Sequence[str] | None = None,
             tokenizer: Any = None) -> list[Finding]:
    """Findings for a run (TrainResult or log history), plus optional forgetting numbers (from
    `lorakit.evaluate.forgetting`), generated answers and the tokenizer. An empty list means no pitfall found."""
    from .evaluate import generation_stats

    found = _check_losses(_history(run))
    if forgetting is not None and forgetting["ratio"] > 2.0:
        found.append(_finding("forgetting", f"base-corpus perplexity {forgetting['base_perplexity']:.1f} → "
                                            f"{forgetting['adapted_perplexity']:.1f} (×{forgetting['ratio']:.2f})"))
    problems = []
    if answers:
        stats = generation_stats(answers)
        if stats["empty_rate"] > 0.2:
            problems.append(f"{stats['empty_rate']:.0%} empty answers")
        if stats["runaway_rate"] > 0.2:
            problems.append(f"{stats['runaway_rate']:.0%} runaway answers")
        if stats["repetition_rate"] > 0.3:
            problems.append(f"{stats['repetition_rate']:.0%} repeated words per answer")
        if len(answers) >= 10 and stats["same_answer_rate"] > 0.5:
            common = Counter(answers).most_common(1)[0][0]
            problems.append(f"{stats['same_answer_rate']:.0%} of answers are the same ({common!r}): the model collapsed")
    tokenizer = tokenizer or getattr(run, "tokenizer", None)
    if tokenizer is not None and tokenizer.pad_token_id == tokenizer.eos_token_id:
        problems.append("pad token == eos token (eos gets masked with the padding, so the model never learns to stop)")
    if problems:
        found.append(_finding("poor generation", "; ".join(problems)))
    return found


def report(findings: Sequence[Finding]) -> str:
    """A printable report; says so when nothing was found."""
    return "\n".join(map(str, findings)) if findings else "✓ no pitfall found"


class NanGuardCallback(TrainerCallback):
    """Stop training at the first NaN/Inf loss or grad norm, and announce the diagnosis."""

    def __init__(self) -> None:
        self.finding: Finding | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                self.finding = _finding("divergence", f"{key} = {value} at step {state.global_step}: training stopped")
                announce(str(self.finding))
                control.should_training_stop = True
                return


PITFALLS = ("flat", "overfit", "nan", "forgetting", "unmasked")


def reproduce(pitfall: str, output_dir: str = "runs/pitfalls", seed: int = 42) -> Any:
    """Re-create one pitfall on the built-in model with plain lorakit calls (see PITFALLS). Returns a TrainResult."""
    from .training import train

    if pitfall not in PITFALLS:
        raise ValueError(f"pitfall must be one of {list(PITFALLS)}, got {pitfall!r}")
    common = dict(gradient_checkpointing=False, save_strategy="no", seed=seed, output_dir=f"{output_dir}/{pitfall}")
    if pitfall == "flat":  # a learning rate 200× too low
        return train("quickstart", learning_rate=1e-6, max_steps=60, n_train=480, n_eval=32, logging_steps=4, **common)
    if pitfall == "overfit":  # 8 examples, 60 epochs, a high LR, no dropout
        return train("quickstart", learning_rate=5e-3, lora_dropout=0.0, n_train=8, n_eval=32, num_train_epochs=60,
                     warmup_ratio=0.0, logging_steps=2, **common)
    if pitfall == "nan":  # a learning rate of 1 without clipping, on fp16 weights
        from .base import load_base

        model, tokenizer = load_base("tiny", dtype="fp16")
        return train("quickstart", model=model, tokenizer=tokenizer, learning_rate=1.0, max_grad_norm=0.0,
                     max_steps=40, n_train=320, n_eval=16, warmup_ratio=0.0, logging_steps=1,
                     callbacks=[NanGuardCallback()], **common)
    if pitfall == "forgetting":  # long, high-LR domain training
        return train("domain", learning_rate=3e-3, max_steps=120, n_eval=32, logging_steps=20, **common)
    from .base import load_tokenizer  # "unmasked": the loss also trains on the prompt tokens
    from .data import load_dataset

    data = load_dataset("instruction", load_tokenizer("tiny"), n_train=1200, n_eval=48, seed=0, mask_prompt=False)
    return train("quickstart", data=data, learning_rate=1e-3, max_steps=150, logging_steps=10, **common)
