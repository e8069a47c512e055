"""Pitfall diagnostics (chapter 5): read a run's logs, name what went wrong, and say how to fix it.

`diagnose(run, ...)` checks five pitfalls with thresholds stated as relative changes (so they do not depend on the
task's loss scale, the model size or the seed):

| pitfall | evidence | threshold |
|---|---|---|
| loss not decreasing | mean train loss of the last fifth vs the first fifth of logged steps | < 10% lower |
| overfitting | eval loss rises after its minimum while train loss keeps falling | last eval > best × 1.05 |
| divergence | a NaN/Inf loss or grad norm, or a final loss above the first | any, or last > first × 1.2 |
| grad-norm spikes | a grad norm (after clipping) far above the median of the 10 logs before it | > 10 × median |
| forgetting | base-corpus perplexity with the adapter vs without | more than tripled (ratio > 3) |
| poor generation | empty, runaway, repetitive or identical answers; pad == eos with no eos label | > 20% / 30% repeated / > 50% same |

Why these numbers: a LoRA run at a sensible learning rate lowers the train loss by far more than 10% between its
first and last fifth (the clean quickstart runs lower it by more than half), while a run 100× too slow moves it by a
few percent; 5% on eval loss is above the epoch-to-epoch noise of a 32-row eval set; a grad norm 10× its recent
median moves the weights 10× further than the steps around it, unless clipping caps both (a run clipped at
max_grad_norm=0.3 whose norms are already above 0.3 takes equal-sized steps, so a spike there is harmless and not
reported); any fine-tune moves base-corpus perplexity somewhat (the clean quickstart runs: ×1.76 and ×1.80 on two
seeds), ×3 means the model lost about 1.6 bits per token of what it knew (the forgetting reproduction: ×5.3). Each
is checked on two seeds in the tests.

When `run` is a `TrainResult`, a flat loss also names the likely cause from the recipe (learning rate below 2e-5,
alpha/r below 1, rank ≤ 2, only one or two module types targeted) and puts that fix first; passing `data` (the
`TaskData` trained on) checks the labels: none left to learn from, or prompts not masked.

`NanGuardCallback` stops a Trainer at the first non-finite loss, grad norm or trainable weight and prints the
diagnosis.
`lorakit.evaluation.pitfalls.reproduce(name)` re-creates each pitfall on the built-in model, for the chapter to detect and then
fix (this module only reads logs; it trains nothing).
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from transformers import TrainerCallback

from ..compat.notes import announce
from ..training.history import history_of, series
from .generation import generation_stats

FIXES: dict[str, list[str]] = {
    "loss not decreasing": [
        "raise the learning rate (×2–3; LoRA usually wants 1e-4–3e-4, tiny models more)",
        "raise lora_alpha to about 2 × r (alpha/r is the adapter's scale: raising r alone at a fixed alpha lowers it); "
        "for more capacity raise r and alpha together",
        "target more modules (all-linear)",
        "check the labels: are all answer tokens masked to -100 by mistake?",
    ],
    "overfitting": [
        "stop earlier: keep the best epoch's checkpoint (save_strategy='epoch')",
        "more lora_dropout (the guide: 0.2 under 1k examples, 0.1 under 10k), lower rank",
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

SEVERITIES = ("critical", "warning")  # critical: the run's weights are unusable; warning: usable, but worse than it should be
_ICONS = {"critical": "✖", "warning": "⚠"}

# Thresholds (relative, see the module docstring).
FLAT_MIN_DROP = 0.10
DIVERGED_RISE = 1.20
OVERFIT_EVAL_RISE = 1.05
SPIKE_FACTOR = 10.0
SPIKE_WINDOW = 10
CHAT_DATASETS = ("instruction", "code", "preference")  # datasets whose answers end with eos
FORGETTING_RATIO = 3.0
EMPTY_RATE, RUNAWAY_RATE, REPETITION_RATE, SAME_ANSWER_RATE = 0.2, 0.2, 0.3, 0.5


@dataclass(frozen=True)
class Finding:
    """One detected pitfall: its name (a key of FIXES), severity ('critical' or 'warning'), numeric evidence and
    the fixes to try, most likely first."""

    pitfall: str
    severity: str
    evidence: str
    fixes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{_ICONS.get(self.severity, '⚠')} {self.pitfall} ({self.severity}): {self.evidence}"
        return head + "".join(f"\n    → {fix}" for fix in self.fixes)

    def _repr_html_(self) -> str:
        color = "#b00020" if self.severity == "critical" else "#a15c00"
        fixes = "".join(f"<li>{html.escape(fix)}</li>" for fix in self.fixes)
        return (f"<div><b style='color:{color}'>{_ICONS.get(self.severity, '⚠')} {html.escape(self.pitfall)}</b> "
                f"<i>({self.severity})</i>: {html.escape(self.evidence)}<ul>{fixes}</ul></div>")


class Findings(list):
    """The list `diagnose` returns: a plain list of Finding that prints as a report (and as HTML in Jupyter)."""

    def __str__(self) -> str:
        return report(self)

    def _repr_html_(self) -> str:
        if not self:
            return "<div style='color:#1b7f3b'>✓ no pitfall found</div>"
        return "".join(f._repr_html_() for f in self)

    @property
    def pitfalls(self) -> set[str]:
        return {f.pitfall for f in self}


def _finding(pitfall: str, evidence: str, severity: str = "warning", first: Sequence[int] = ()) -> Finding:
    """A Finding with FIXES[pitfall], the fixes at indices `first` moved to the front."""
    fixes = FIXES[pitfall]
    ordered = [fixes[i] for i in first] + [f for i, f in enumerate(fixes) if i not in first]
    return Finding(pitfall, severity, evidence, ordered)


def _flat_causes(recipe: Any) -> tuple[list[str], list[int]]:
    """Likely causes of a flat loss read from a recipe, and the indices of the matching fixes."""
    if recipe is None:
        return [], []
    causes, first = [], []
    if recipe.learning_rate < 2e-5:
        causes.append(f"learning_rate {recipe.learning_rate:g} is far below LoRA's usual 1e-4–3e-4")
        first.append(0)
    if recipe.scale < 1 or recipe.r <= 2:
        causes.append(f"r={recipe.r}, lora_alpha={recipe.lora_alpha:g}: scale alpha/r = {recipe.scale:g}")
        first.append(1)
    targets = recipe.target_modules
    if targets != "all-linear" and len(recipe.resolved_target_modules()) <= 2:
        causes.append(f"only {list(recipe.resolved_target_modules())} adapted")
        first.append(2)
    return causes, first


def _check_spikes(history: list[dict[str, float]], recipe: Any = None) -> Finding | None:
    """The worst grad norm relative to the median of the SPIKE_WINDOW logged norms before it, both clipped at the
    recipe's max_grad_norm (when known: with clipping the step size is what matters, and it is capped)."""
    clip = recipe.max_grad_norm if recipe is not None and recipe.max_grad_norm > 0 else math.inf
    logged = series(history, "grad_norm", axis="step")
    worst = None
    for i in range(3, len(logged)):
        median = statistics.median(min(n, clip) for _, n in logged[max(0, i - SPIKE_WINDOW):i])
        step, norm = logged[i]
        if median > 0 and (worst is None or min(norm, clip) / median > worst[0]):
            worst = (min(norm, clip) / median, step, norm, median)
    if worst is None or worst[0] <= SPIKE_FACTOR:
        return None
    ratio, step, norm, median = worst
    clipping = f"clipped at {clip:g}" if math.isfinite(clip) else "no clipping"
    return _finding("grad-norm spikes", f"grad norm {norm:.3g} at step {step}, {ratio:.0f}× the median {median:.3g} "
                                        f"of the logs before it ({clipping})")


def _check_losses(history: list[dict[str, float]], recipe: Any = None) -> list[Finding]:
    found = []
    train = series(history, "loss", axis="step")
    bad = [(h.get("step"), k, h[k]) for h in history for k in ("loss", "grad_norm", "eval_loss")
           if k in h and not math.isfinite(h[k])]
    if bad:
        step, key, value = bad[0]
        before = [f"{loss:.3g}" for s, loss in train if s is not None and step is not None and s < step][-4:]
        before = f" (train loss before: {', '.join(before)})" if before else ""
        found.append(_finding("divergence", f"{key} = {value} at step {step}{before}", "critical"))
        return found
    if len(train) >= 5:
        fifth = max(1, len(train) // 5)
        first = statistics.mean(loss for _, loss in train[:fifth])
        last = statistics.mean(loss for _, loss in train[-fifth:])
        if last > DIVERGED_RISE * first:
            found.append(_finding("divergence", f"train loss rose from {first:.3f} (first fifth of steps) to "
                                                f"{last:.3f} (last fifth), ×{last / first:.2f}", "critical"))
        elif last > (1 - FLAT_MIN_DROP) * first:
            causes, order = _flat_causes(recipe)
            likely = f"; likely: {'; '.join(causes)}" if causes else ""
            found.append(_finding("loss not decreasing",
                                  f"train loss {first:.3f} → {last:.3f} ({100 * (1 - last / first):.1f}% lower, "
                                  f"< {FLAT_MIN_DROP:.0%}) over {train[-1][0]} steps{likely}", first=order))
    spike = _check_spikes(history, recipe)
    if spike is not None:
        found.append(spike)
    evals = [(epoch, step, loss) for (epoch, loss), (step, _) in
             zip(series(history, "eval_loss", axis="epoch"), series(history, "eval_loss", axis="step"))]
    if len(evals) >= 3:
        best_epoch, best_step, best = min(evals, key=lambda e: e[2])
        last_epoch, _, last_eval = evals[-1]
        at_best = [loss for s, loss in train if s <= best_step][-3:]
        at_end = [loss for _, loss in train][-3:]
        falling = bool(at_best) and statistics.mean(at_end) < statistics.mean(at_best)
        if last_eval > OVERFIT_EVAL_RISE * best and falling and best_epoch < last_epoch:
            found.append(_finding("overfitting", f"eval loss fell to {best:.3f} at epoch {best_epoch:g}, then rose "
                                                 f"to {last_eval:.3f} (×{last_eval / best:.2f}) by epoch "
                                                 f"{last_epoch:g} while train loss fell from "
                                                 f"{statistics.mean(at_best):.3f} to {statistics.mean(at_end):.3f}"))
    return found


def _check_labels(data: Any) -> tuple[list[Finding], list[str]]:
    """A flat-loss finding when no label is left to learn from; a generation problem when prompts are not masked."""
    rows = data.train if hasattr(data, "train") else data
    rows = [rows[i] for i in range(min(len(rows), 64))] if rows is not None else []
    rows = [r for r in rows if "labels" in r and "input_ids" in r]
    if not rows:
        return [], []
    learned = sum(sum(label != -100 for label in r["labels"]) for r in rows)
    real = sum(sum(1 for m in r.get("attention_mask", [1] * len(r["input_ids"])) if m) for r in rows)
    if learned == 0:
        return [_finding("loss not decreasing", f"every label of {len(rows)} training rows is -100: nothing to learn",
                         "critical", first=[3])], []
    chat = getattr(data, "name", None) in CHAT_DATASETS
    if chat and real and learned >= real:
        return [], [f"labels cover all {learned} tokens of {len(rows)} rows, prompts included (mask_prompt=False)"]
    return [], []


def _pad_is_eos(tokenizer: Any) -> bool:
    pad = getattr(tokenizer, "pad_token_id", None)
    return pad is not None and pad == tokenizer.eos_token_id


def _eos_is_learned(data: Any, eos_id: int) -> bool:
    """Whether eos appears among the labels of the first 64 training rows of a chat dataset (or of plain rows).

    pad == eos only hurts when the labels lose eos with the padding: lorakit's collators pad labels with -100 by
    position, so eos stays a label; transformers' DataCollatorForLanguageModeling masks by id and drops it. Text
    continuation (domain) and classification rows never needed to learn to stop: they count as learned.
    """
    if getattr(data, "name", "instruction") not in CHAT_DATASETS:
        return True
    rows = data.train if hasattr(data, "train") else data
    rows = [rows[i] for i in range(min(len(rows), 64))] if rows is not None else []
    labelled = [r["labels"] for r in rows if "labels" in r]
    return not labelled or any(label == eos_id for labels in labelled for label in labels)


def diagnose(run: Any, forgetting: dict[str, float] | None = None, answers: Sequence[str] | None = None,
             tokenizer: Any = None, data: Any = None, finished: Sequence[bool] | None = None) -> Findings:
    """Findings for a run, most severe first; an empty list means no pitfall found.

    run: a `TrainResult` or a log history (list of dicts, as `trainer.state.log_history`).
    forgetting: the dict from `lorakit.evaluation.metrics.forgetting` (base-corpus perplexity without/with the adapter).
    answers: generated answers (`lorakit.evaluation.metrics.generate_answers`); `finished`: for each, whether it ended at the
    end-of-turn token (`generate_answers(..., return_finished=True)`); unfinished ones count as runaway.
    tokenizer: taken from `run.tokenizer` when not given. data: the `TaskData` (or tokenised rows) trained on, to
    check its labels: none left to learn, prompts not masked, or pad == eos with no eos label left (without `data`
    pad == eos is not flagged: it only hurts when the collator masked eos with the padding).
    """

    found = _check_losses(history_of(run), getattr(run, "recipe", None))
    problems: list[str] = []
    if data is not None:
        flat, label_problems = _check_labels(data)
        if flat and not any(f.pitfall == "loss not decreasing" for f in found):
            found += flat
        problems += label_problems
    if forgetting is not None and forgetting["ratio"] > FORGETTING_RATIO:
        found.append(_finding("forgetting", f"base-corpus perplexity {forgetting['base_perplexity']:.1f} → "
                                            f"{forgetting['adapted_perplexity']:.1f} (×{forgetting['ratio']:.2f}, "
                                            f"> ×{FORGETTING_RATIO:g})"))
    if answers:
        stats = generation_stats(answers, finished=finished)
        if stats["empty_rate"] > EMPTY_RATE:
            problems.append(f"{stats['empty_rate']:.0%} empty answers")
        if stats["runaway_rate"] > RUNAWAY_RATE:
            problems.append(f"{stats['runaway_rate']:.0%} runaway answers (no end-of-turn)")
        if stats["repetition_rate"] > REPETITION_RATE:
            problems.append(f"{stats['repetition_rate']:.0%} repeated words per answer")
        if len(answers) >= 10 and stats["same_answer_rate"] > SAME_ANSWER_RATE:
            common = Counter(answers).most_common(1)[0][0]
            problems.append(f"{stats['same_answer_rate']:.0%} of answers are the same ({common!r}): the model collapsed")
    tokenizer = tokenizer or getattr(run, "tokenizer", None)
    if data is not None and _pad_is_eos(tokenizer) and not _eos_is_learned(data, tokenizer.eos_token_id):
        problems.append("pad token == eos token and no label is eos (a collator that masks the padding by token id "
                        "masked every eos too), so the model never learns to stop")
    if problems:
        first = [0] if any("mask_prompt" in p for p in problems) else [1] if "pad token" in problems[-1] else []
        found.append(_finding("poor generation", "; ".join(problems), first=first))
    return Findings(sorted(found, key=lambda f: SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 9))


def report(findings: Sequence[Finding]) -> str:
    """A printable report; says so when nothing was found."""
    return "\n".join(map(str, findings)) if findings else "✓ no pitfall found"


class NanGuardCallback(TrainerCallback):
    """Stop training at the first NaN/Inf loss, grad norm or trainable weight, and announce the diagnosis (kept in
    `.finding`). The weights are checked because the logged loss can hide a NaN: the Trainer's default
    `logging_nan_inf_filter=True` logs a NaN step as the mean of the finite ones (0.0 when there are none)."""

    def __init__(self) -> None:
        self.finding: Finding | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, model: Any = None,
               **kwargs: Any) -> None:
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                self._stop(f"{key} = {value} at step {state.global_step}", control)
                return
        broken = next((name for name, weight in (model.named_parameters() if model is not None else ())
                       if weight.requires_grad and not bool(weight.detach().isfinite().all())), None)
        if broken is not None:
            self._stop(f"trainable weight {broken} is not finite at step {state.global_step}", control)

    def _stop(self, evidence: str, control: Any) -> None:
        self.finding = _finding("divergence", f"{evidence}: training stopped", "critical")
        announce(str(self.finding))
        control.should_training_stop = True
