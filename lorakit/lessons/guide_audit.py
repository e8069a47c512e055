"""A verbatim audit of the Training Guide's numbers and claims (chapter 4).

Every entry quotes the guide exactly (`quote` is a substring of the guide's text; tests/lessons/test_guide_audit.py checks it against
a copy of the guide's number-bearing lines, `tests/fixtures/guide_numbers.json`, made by `guide_number_lines`). Each entry
carries the value lorakit computes (`lorakit.models.shapes`, `lorakit.memory.estimator`, torch) or measures on CPU (`measure=True`),
where that value comes from, a verdict and the reason:

- "holds": an approximate figure ("~") within 25 % of the computed or measured one, an exact one equal to it, or a
  fact that the computation confirms;
- "wrong": further off, or the wrong way round;
- "impossible": the stated figure is below a hard floor (e.g. the fp16 weights alone), named in the reason;
- "not measurable here": quality, GPU speed or advice that this CPU-only course cannot measure (the reason says
  what the course does instead, or where the course differs: `lorakit.lessons.deviations`).

Numbers audited at batch 1 × 512 tokens, LLaMA-2-7B (`lorakit.models.shapes.LLAMA2_7B`), decimal GB as the guide uses them.
`inconsistencies()` names the places where the guide contradicts itself.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..memory.estimator import FP32, estimate
from ..models.shapes import LLAMA2_7B, count_base_params, count_lora_params
from .guide_measurements import (
    GB,
    longest_seq_under,
    measure_gradient_checkpointing,
    measure_optimizer_state_bytes,
    nf4_bits_per_weight,
)

HOLDS_WITHIN = 0.25
CLAIM_BATCH, CLAIM_SEQ = 1, 512  # the batch and sequence length the memory claims are audited at
VERDICTS = ("holds", "wrong", "impossible", "not measurable here")
NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?(?:e-\d+)?")
HTML_TAG = re.compile(r"</?[A-Za-z!]")  # an HTML tag or comment (a "<1K" comparison is prose)


@dataclass(frozen=True)
class Claim:
    """One statement of the guide, quoted verbatim, with the value lorakit computes or measures and the verdict."""

    quote: str
    section: str
    stated: float | None
    value: float | None
    unit: str
    verdict: str
    source: str
    reason: str


@dataclass(frozen=True)
class Inconsistency:
    """Two or more verbatim quotes of the guide that contradict each other, and what the course does about it."""

    quotes: tuple[str, ...]
    explanation: str


def verdict(stated: float, value: float | None, floor: float | None = None, exact: bool = False) -> str:
    """'impossible' below a hard floor; 'holds' within 25 % (or equal when `exact`); else 'wrong'."""
    if floor is not None and stated < floor:
        return "impossible"
    if value is None or value != value:  # None or NaN
        return "not measurable here"
    if exact:
        return "holds" if value == stated else "wrong"
    if stated <= 0 or value <= 0:
        return "holds" if stated == value else "wrong"
    return "holds" if abs(value / stated - 1) <= HOLDS_WITHIN else "wrong"


def _number(quote: str, section: str, stated: float, value: float | None, unit: str, source: str, reason: str,
            floor: float | None = None, exact: bool = False) -> Claim:
    return Claim(quote, section, stated, value, unit, verdict(stated, value, floor, exact), source, reason)


def _fact(quote: str, section: str, holds: bool, value: float, unit: str, source: str, reason: str) -> Claim:
    return Claim(quote, section, None, value, unit, "holds" if holds else "wrong", source, reason)


def _gpu_speed(quote: str, section: str, stated: float, cpu_value: float | None, source: str, reason: str) -> Claim:
    """A GPU speed claim with the CPU measurement beside it: never a verdict from a CPU timing."""
    return Claim(quote, section, stated, cpu_value, "%", "not measurable here", source, reason)


def _unmeasurable(quote: str, section: str, reason: str) -> Claim:
    return Claim(quote, section, None, None, "", "not measurable here", "—", reason)


# --------------------------------------------------------------------------------------------------- the guide's text

def guide_number_lines(text: str) -> list[str]:
    """The guide's lines that carry a number: prose, bullets and table rows (not headings, table headers, links or
    images), the comments of its code blocks and the cheat sheet's rows; list numbering is not a number."""
    lines = text.splitlines()
    found: list[str] = []
    in_code = False
    for index, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            part = line[line.index("#"):] if "#" in line else (line if "│" in line else "")
        else:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if line.startswith("#") or "](" in line or HTML_TAG.search(line) or following.startswith("|--"):
                continue
            part = re.sub(r"^\d+\. ", "", line)
        if NUMBER.search(part):
            found.append(part.strip())
    return found


def numbers_in(text: str) -> list[str]:
    """The number tokens of a guide line (a number glued to letters, as in bf16 or adamw_8bit, is a name)."""
    return NUMBER.findall(text)


# --------------------------------------------------------------------------------------------------- the audit

def audit(measure: bool = False, tmp_dir: str | None = None) -> list[Claim]:
    """Every number and claim of the guide, computed (and measured on CPU when `measure=True`, ~20 s)."""
    s = LLAMA2_7B
    base = count_base_params(s)
    claims: list[Claim] = []
    add = claims.append
    quick = _quickstart()

    add(_unmeasurable("Memory optimization tricks (gradient checkpointing, 8-bit optimizers, mixed precision)",
                      "what you'll learn", "a list of topics, no claim; chapter 4 measures each technique"))

    # --- TL;DR and 5.1 rank ---------------------------------------------------------------------------------------
    add(_unmeasurable("This works for 90% of tasks", "TL;DR",
                      "a share of all tasks cannot be measured on one CPU model; the course measures its own tasks"))
    add(_unmeasurable("Start with **`r=16, alpha=32, lr=2e-4", "TL;DR",
                      f"advice; the course follows it (lorakit quickstart: r={quick.r}, alpha={quick.lora_alpha:g}, "
                      f"lr={quick.learning_rate:g})"))
    rank_rows = ((4, "| 4 | Simple classification, sentiment | ~1M |", 1e6), (8, "| 8 | Standard fine-tuning | ~2M |", 2e6),
                 (16, "| 16 | Instruction tuning, chat | ~4M |", 4e6), (32, "| 32 | Complex reasoning, code | ~8M |", 8e6),
                 (64, "| 64 | Domain adaptation, multilingual | ~16M |", 16e6),
                 (128, "| 128+ | Near full fine-tuning quality | ~32M+ |", 32e6))
    for r, quote, stated in rank_rows:
        qv, one = count_lora_params(s, r, "q,v"), count_lora_params(s, r, ["q_proj"])
        add(_number(quote, "5.1 rank table", stated, qv, "params",
                    f"lorakit.models.shapes.count_lora_params(LLAMA2_7B, {r}, 'q,v')",
                    f"even on q,v only (the smallest set the guide names) r={r} trains {qv:,}; all-linear "
                    f"{count_lora_params(s, r):,}. The column matches one module per layer (q_proj alone: {one:,})"))
    add(_unmeasurable("Minimal but effective for narrow tasks", "5.1 rank table", "quality on a 7B task"))
    add(_unmeasurable("**Rule of Thumb**: Start with `r=16`", "5.1 rank",
                      "advice; chapter 1 sweeps r = 4/16/64 on the built-in model"))
    for quote, alpha, r, stated in (("`alpha = r` | Scale = 1.0", 16, 16, 1.0), ("`alpha = 2r` | Scale = 2.0", 32, 16, 2.0)):
        value = quick.replace(r=r, lora_alpha=alpha).scale
        add(_number(quote, "5.1 alpha table", stated, value, "scale", f"Recipe(r={r}, lora_alpha={alpha}).scale",
                    "alpha / r, whatever the rank", exact=True))
    scales = [quick.replace(r=r, lora_alpha=16).scale for r in (4, 16, 64)]
    add(_fact("`alpha = 16` (fixed) | Scale varies with r", "5.1 alpha table", len(set(scales)) == 3, scales[-1],
              "scale at r=64", "Recipe(lora_alpha=16).scale at r = 4, 16, 64",
              f"scales {', '.join(f'{x:g}' for x in scales)}: they fall as r grows"))
    add(_unmeasurable("Set `alpha = 2 * r`", "5.1 alpha", "advice; the course's recipes all use alpha = 2r"))
    add(_unmeasurable("│ Alpha:      2 × rank", "cheat sheet", "advice; the course's recipes all use alpha = 2r"))
    add(_unmeasurable("**Always set `alpha = 2 × r`**", "takeaways", "advice; chapter 1 compares the three strategies"))
    for quote in ("| 0.0 | Large datasets (>100K examples)", "| 0.05 | Medium datasets", "| 0.1 | Small datasets (<10K",
                  "| 0.2 | Very small datasets (<1K"):
        add(_unmeasurable(quote, "5.1 dropout table", "advice on data sizes the course does not train at; "
                          "chapter 1's table and lorakit.lessons.deviations say what the course uses"))

    # --- 5.2 target modules ---------------------------------------------------------------------------------------
    rows = (("| Q, V only | ~2M", "q,v", 2e6), ("| Q, K, V, O | ~4M", "q,k,v,o", 4e6),
            ("| All attention + FFN | ~10M", "all-linear", 10e6), ('| `"all-linear"` | ~10M', "all-linear", 10e6))
    for quote, targets, stated in rows:
        at16, at4 = count_lora_params(s, 16, targets), count_lora_params(s, 4, targets)
        add(_number(quote, "5.2 targets table", stated, at16, "params",
                    f"count_lora_params(LLAMA2_7B, 16, {targets!r}) (r=16, the guide's starting rank)",
                    f"{at16:,} at r=16; the column holds at r=4 only ({at4:,})"))
    add(_unmeasurable("| Good | Minimum viable LoRA |", "5.2 targets table", "quality on a 7B task; chapter 2 "
                      "compares target sets on the built-in model"))
    kept = list(range(16, 32))
    add(_fact("# Only last 16 layers of a 32-layer model", "5.2 layers", len(kept) == 16 and kept[-1] == 31, len(kept),
              "layers", "len(range(16, 32)); LLaMA-2-7B has 32 layers", "indices 16–31: the last 16 of 32"))
    add(_unmeasurable("Later layers tend to be more task-specific", "5.2 layers", "a property of large pre-trained "
                      "models; the built-in 4-layer model cannot show it"))

    # --- 5.3 learning rate ----------------------------------------------------------------------------------------
    for quote in ("| Full fine-tuning | 1e-5 to 5e-5 |", "| LoRA | **1e-4 to 3e-4** |", "| QLoRA | **1e-4 to 2e-4** |",
                  "| DoRA | **5e-5 to 2e-4** |"):
        add(_unmeasurable(quote, "5.3 LR table", "ranges for 7B models; the built-in model wants more (chapter 3 "
                          "sweeps it), lorakit.lessons.deviations lists the course's ranges"))
    add(_unmeasurable("**3-5% of total steps** for warmup is standard", "5.3 warmup",
                      f"advice; the course uses warmup_ratio {quick.warmup_ratio:g}"))
    add(_unmeasurable("For small datasets: use 10% warmup", "5.3 warmup", "advice; chapter 3 shows warmup steps"))
    add(_number("# 3% warmup", "5.3 warmup", 3, 100 * 0.03, "%", "100 × the line's warmup_ratio=0.03",
                "a ratio of 0.03 is 3 % of the steps", exact=True))

    # --- 5.4 memory techniques -------------------------------------------------------------------------------------
    kw = dict(batch=CLAIM_BATCH, seq_len=CLAIM_SEQ, r=16)
    lora = estimate(s, precision="fp16", optimizer="adamw", **kw)
    lora_gc = estimate(s, precision="fp16", optimizer="adamw", gradient_checkpointing=True, **kw)
    kept_act = lora_gc.activations + lora_gc.overhead - lora.overhead  # block inputs + the block being recomputed
    gc_saving, gc_source = 100 * (1 - kept_act / lora.activations), "lorakit.memory.estimator.estimate, 7B, 1 × 512 tokens"
    gc_time, time_source = None, "needs audit(measure=True)"
    if measure:
        m = measure_gradient_checkpointing()
        gc_saving = 100 * (1 - m["saved_bytes_gc=True"] / m["saved_bytes_gc=False"])
        gc_source = (f"measured: autograd's saved tensors on a 4-layer random Llama with LoRA, CPU fp32: "
                     f"{m['saved_bytes_gc=False'] / 2**20:.1f} → {m['saved_bytes_gc=True'] / 2**20:.1f} MiB")
        gc_time = 100 * (m["step_seconds_gc=True"] / m["step_seconds_gc=False"] - 1)
        time_source = (f"measured: fastest forward+backward step of 7, alternating, one CPU thread: "
                       f"{m['step_seconds_gc=False']:.3f} s → {m['step_seconds_gc=True']:.3f} s")
    add(_number("| Gradient checkpointing | ~40% less activation memory", "5.4 techniques", 40, gc_saving, "%",
                gc_source, "only each block's input is kept; one block is recomputed at a time"))
    time_reason = ("a GPU speed claim: checkpointing adds one extra forward pass per step, whose share of the step "
                   "differs on a GPU, so this one-thread CPU figure is shown but judges nothing "
                   "(benchmarks/gpu_check.py times it on a GPU)")
    add(_gpu_speed("~20% slower | All models", "5.4 techniques", 20, gc_time, time_source, time_reason))
    fp32_w = estimate(s, precision="fp32").base_weights
    bf16_w = estimate(s, precision="bf16").base_weights
    add(_number("| Mixed precision (bf16) | ~50% less weight memory", "5.4 techniques", 50, 100 * (1 - bf16_w / fp32_w),
                "%", "estimate(precision='bf16' vs 'fp32').base_weights", "2 bytes per weight instead of 4"))
    add(_unmeasurable("Faster on Ampere+", "5.4 techniques", "GPU speed; no GPU here"))
    nf4_w = estimate(s, precision="bf16", quantization="nf4").base_weights
    add(_number("| 4-bit quantization (QLoRA) | ~75% less weight memory", "5.4 techniques", 75,
                100 * (1 - nf4_w / bf16_w), "%", "estimate(quantization='nf4').base_weights vs bf16",
                f"NF4 with double quantisation is {nf4_bits_per_weight():.3f} bits per linear weight "
                f"({100 * (1 - nf4_bits_per_weight() / 16):.1f} % less); embeddings and lm_head stay 16-bit"))
    add(_unmeasurable("~10% slower training", "5.4 techniques", "CUDA 4-bit kernels; bitsandbytes on CPU is a "
                      "reference path whose speed says nothing about them (benchmarks/memory_grid.py on a GPU)"))
    adam = estimate(s, optimizer="adamw", r=16).optimizer_states
    adam8 = estimate(s, optimizer="adamw_8bit", r=16).optimizer_states
    opt_saving, opt_source = 100 * (1 - adam8 / adam), "estimate(optimizer='adamw_8bit' vs 'adamw').optimizer_states"
    if measure:
        o = measure_optimizer_state_bytes()
        opt_saving = 100 * (1 - o["adamw_8bit"] / o["adamw"])
        opt_source = (f"measured on CPU after one step: torch AdamW {o['adamw'] / o['adamw_params']:.2f} → "
                      f"bitsandbytes AdamW8bit {o['adamw_8bit'] / o['adamw_8bit_params']:.3f} bytes/param")
    add(_number("| 8-bit optimizer | ~50% less optimizer memory", "5.4 techniques", 50, opt_saving, "%", opt_source,
                "two 1-byte moments (plus an fp32 absmax per 256) instead of two fp32 moments"))
    add(_unmeasurable("| Minimal | Via bitsandbytes |", "5.4 techniques", "GPU speed of 8-bit optimizer kernels"))
    add(_unmeasurable("| Multi-GPU |", "5.4 techniques", "one machine, no GPUs (docs/launch.md)"))
    from transformers.training_args import OptimizerNames

    paged = "paged_adamw_8bit" in {o.value for o in OptimizerNames}
    add(_fact("# 8-bit optimizer with paging", "5.4 code", paged, float(paged), "known to transformers",
              "transformers.training_args.OptimizerNames", "optim='paged_adamw_8bit' is bitsandbytes' paged 8-bit AdamW"))
    add(_number("# Effective batch = 32", "5.4 code", 32, 2 * 16, "rows",
                "per_device_train_batch_size × gradient_accumulation_steps of the same block (2 × 16)", "2 × 16 = 32",
                exact=True))

    # --- 5.4 the 7B memory table -------------------------------------------------------------------------------------
    where = f"lorakit.memory.estimator.estimate(LLAMA2_7B, batch={CLAIM_BATCH}, seq_len={CLAIM_SEQ}, r=16, ...)"
    table = (
        ("| Full FP16 fine-tuning | ~120 GB |", 120, dict(precision="fp16", full_finetune=True, optimizer="adamw")),
        ("| LoRA FP16 | ~16 GB |", 16, dict(precision="fp16", optimizer="adamw")),
        ("| LoRA + gradient checkpointing | ~12 GB |", 12,
         dict(precision="fp16", optimizer="adamw", gradient_checkpointing=True)),
        ("| QLoRA 4-bit | ~6 GB |", 6, dict(precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit")),
        ("| QLoRA 4-bit + gradient checkpointing | **~4.5 GB** |", 4.5,
         dict(precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit", gradient_checkpointing=True)),
    )
    for quote, stated, kwargs in table:
        e = estimate(s, **kw, **kwargs)
        floor, fmt = e.base_weights / GB, "fp16" if "quantization" not in kwargs else "NF4"
        states = (e.base_weights + e.adapters + e.gradients + e.optimizer_states) / GB
        reason = (f"{e.total / GB:.2f} GB at 1 × 512 tokens; {states:.2f} GB before any activation "
                  f"({fmt} weights alone {floor:.2f} GB)")
        if stated < floor:
            reason = f"the {fmt} weights of a 7B alone are {floor:.2f} GB > ~{stated:g} GB; " + reason
        elif verdict(stated, e.total / GB) == "wrong":
            seq = longest_seq_under(stated * (1 + HOLDS_WITHIN), **kwargs)
            reason += f"; within 25 % only up to {seq} tokens per step" if seq else ""
        add(_number(quote, "5.4 7B memory table", stated, e.total / GB, "GB", where + " (a GPU measures it: "
                    "benchmarks/memory_grid.py)", reason, floor=floor))

    # --- 5.5 pitfalls ------------------------------------------------------------------------------------------------
    for quote in ("| Learning rate too low | Increase to 1e-4 or 2e-4 |", "| Rank too low | Increase r from 8 to 16 or 32 |",
                  "| Alpha too low | Set alpha = 2 * r |", "Reduce rank (r=16 → r=8)", "Increase dropout (0.05 → 0.1)",
                  "Add weight decay (0.01-0.1)", "Add gradient clipping (`max_grad_norm=0.3`)"):
        add(_unmeasurable(quote, "5.5 pitfalls", "a fix to try; chapter 5 reproduces each pitfall and its fix on the "
                          "built-in model, at the built-in model's own values"))
    import torch

    ratio = torch.finfo(torch.bfloat16).max / torch.finfo(torch.float16).max
    add(_fact("bf16 has wider dynamic range", "5.5 pitfalls", ratio > 1, ratio, "× fp16's largest value",
              "torch.finfo(bfloat16).max / torch.finfo(float16).max", f"bf16 reaches {torch.finfo(torch.bfloat16).max:.3g},"
              f" fp16 {torch.finfo(torch.float16).max:.0f}"))

    # --- 5.6 recipes ---------------------------------------------------------------------------------------------
    for quote in ("# LR: 2e-4, Epochs: 3, Batch: 32 (via accumulation)", "# LR: 1e-4, Epochs: 2-3, Max seq length: 2048+",
                  "# LR: 5e-5, Epochs: 5-10, Mix with general data", "# LR: 2e-4, Epochs: 5-10",
                  "# First: SFT with LR 2e-4", "# Then: DPO with LR 5e-5 (lower for alignment phase)"):
        add(_unmeasurable(quote, "5.6 recipes", "settings for 7B models on real data; lorakit.lessons.deviations lists "
                          "where the course's recipes differ and why"))

    # --- cheat sheet -----------------------------------------------------------------------------------------------
    sheet = (("│ Rank:       16 (start here)", quick.r), ("│ Dropout:    0.05", quick.lora_dropout),
             ("│ LR:         2e-4", quick.learning_rate), ("│ Warmup:     3%", 100 * quick.warmup_ratio),
             ("│ Grad clip:  0.3", quick.max_grad_norm))
    for quote, ours in sheet:
        add(_unmeasurable(quote, "cheat sheet", f"a setting, not a fact; lorakit's quickstart recipe uses {ours:g}"))

    # --- key takeaways -----------------------------------------------------------------------------------------------
    add(_unmeasurable("**Rank 16 is the sweet spot** — covers 90% of use cases", "takeaways",
                      "a share of all use cases cannot be measured here"))
    all16, qv16 = count_lora_params(s, 16), count_lora_params(s, 16, "q,v")
    add(_fact("the marginal parameter cost is small", "takeaways", all16 / base < 0.01, 100 * all16 / base,
              "% of the model", "count_lora_params(LLAMA2_7B, 16) / count_base_params(LLAMA2_7B)",
              f"all-linear r=16 is {all16:,} ({100 * all16 / base:.2f} % of {base:,}), {all16 / qv16:.1f}× q,v"))
    add(_number("cuts optimizer memory by 75%", "takeaways", 75, opt_saving, "%", opt_source,
                "two 1-byte moments instead of two 4-byte ones"))
    add(_gpu_speed("trades ~20% speed", "takeaways", 20, gc_time, time_source, time_reason))
    add(_number("~60% memory savings", "takeaways", 60, gc_saving, "%", gc_source,
                f"of activation memory; of the 7B total at 1 × 512 tokens it is "
                f"{100 * (1 - lora_gc.total / lora.total):.0f} %"))
    add(_unmeasurable("**Learning rate 2e-4** is the default — lower (1e-5) for DPO, higher (3e-4) for small datasets",
                      "takeaways", "advice for real models; chapter 3 tries the small-data raise on the tiny model "
                      "(32 rows vs 320: the same best rate); see inconsistencies() for the DPO rate"))
    add(_unmeasurable("**Train for 1-3 epochs**", "takeaways", "advice; see inconsistencies() for the recipes' 5–10"))
    adapter_mb = all16 * FP32 / 1e6
    add(_fact("LoRA checkpoints are tiny", "takeaways", all16 * FP32 < 0.02 * base * 2, adapter_mb, "MB",
              "count_lora_params(LLAMA2_7B, 16) × 4 bytes (peft saves fp32 adapters)",
              f"{adapter_mb:.0f} MB against {base * 2 / GB:.2f} GB of fp16 weights"))
    add(_unmeasurable("the best epoch is rarely the last", "takeaways",
                      "a frequency over many runs; chapter 5's overfitting run shows one case"))
    return claims


def _quickstart() -> Any:
    from ..config.recipes import RECIPES

    return RECIPES["quickstart"]


def inconsistencies() -> list[Inconsistency]:
    """Places where the guide contradicts itself, quoted verbatim, and what the course does."""
    from ..config.recipes import RECIPES

    return [
        Inconsistency(("lower (1e-5) for DPO", "# Then: DPO with LR 5e-5 (lower for alignment phase)"),
                      f"two DPO learning rates, 5× apart; the course's dpo recipe uses {RECIPES['dpo'].learning_rate:g}"),
        Inconsistency(("**Train for 1-3 epochs**", "# LR: 5e-5, Epochs: 5-10, Mix with general data",
                       "# LR: 2e-4, Epochs: 5-10"),
                      "the takeaway says 1–3 epochs, two of its own recipes say 5–10"),
        Inconsistency(("~40% less activation memory", "~60% memory savings"),
                      "the same technique saves ~40 % in the table and ~60 % in the takeaway; measured, it saves more "
                      "than either (audit)"),
        Inconsistency(("~50% less optimizer memory", "cuts optimizer memory by 75%"),
                      "50 % in the table, 75 % in the takeaway; 8-bit moments are a quarter of fp32 ones: 75 % holds"),
        Inconsistency(('model_a = PeftModel.from_pretrained(base, "./adapter_v1")',
                       'model_b = PeftModel.from_pretrained(base, "./adapter_v2")'),
                      "both wrap the same `base`, whose layers peft changes in place: model_b shares model_a's layers "
                      "and creating model_b changes model_a's outputs (measure_shared_base); the snippet then loads adapter_v2 into "
                      "model_a a second time. Load one PeftModel and switch with load_adapter/set_adapter (chapter 7)"),
        Inconsistency(("| 16 | Instruction tuning, chat | ~4M", '| `"all-linear"` | ~10M'),
                      "r=16 with all-linear is the recommended start, yet one table gives r=16 ~4M and the other "
                      "all-linear ~10M: no single rank makes both hold (the true count is 39,976,960)"),
    ]


def counts(claims: list[Claim]) -> dict[str, int]:
    """How many entries have each verdict, in VERDICTS order."""
    seen = Counter(c.verdict for c in claims)
    return {v: seen.get(v, 0) for v in VERDICTS}


def claims_table(claims: list[Claim]) -> list[dict[str, Any]]:
    """Rows (plain dicts) with formatted figures, ready for a notebook table."""
    def fmt(value: float | None, unit: str) -> str:
        if value is None or value != value:
            return "—"
        if unit == "params":
            return f"{value / 1e6:,.2f}M"
        return f"{value:,.3g} {unit}"

    return [{"section": c.section, "quote": c.quote, "stated": fmt(c.stated, c.unit), "value": fmt(c.value, c.unit),
             "verdict": c.verdict, "source": c.source, "reason": c.reason} for c in claims]
