# %% [markdown]
# # Chapter 4 — Memory: where the bytes go, and what each technique saves
#
# **Learning goals.** After this chapter you can
# 1. split training memory into weights, adapters, gradients, optimizer states, activations and logits;
# 2. say what bf16, 4-bit NF4 (with double quantisation), gradient checkpointing and 8-bit optimizers each save —
#    and measure it on the tiny model;
# 3. estimate the memory of a 7B fine-tune with `lorakit.memory.estimate` and choose settings that fit a GPU;
# 4. check a guide's memory claims against computation and measurement.

# %%
import torch

import lorakit
from lorakit.lessons import audit, claims_table, counts, inconsistencies, nf4_bits_per_weight
from lorakit import get_peft_model  # peft's, without transformers 5's deprecation warning
from lorakit import estimate, saved_activation_bytes
from lorakit import LLAMA2_7B, ModelShape
from peft import LoraConfig  # after a lorakit name: lorakit keeps bitsandbytes' offline import notices out of outputs

torch.manual_seed(0)

# %% [markdown]
# ## 1. Weights: precision and 4-bit NF4
#
# fp32 stores 4 bytes per weight, bf16/fp16 2, NF4 half a byte plus one scale (absmax) per block of 64 weights.
# Double quantisation stores those scales in 8 bits instead of 32. Embeddings, norms and the output head are not
# quantized. Here is the tiny model's real footprint, loaded three ways:

# %% grading="skip"
footprints = {}
for label, kwargs in [("fp32", {}), ("bf16", {"dtype": "bf16"}), ("nf4 + double quant", {"quantization": "nf4"})]:
    m, _ = lorakit.load_base("tiny", **kwargs)
    footprints[label] = m.get_memory_footprint()
    print(f"{label:20s} {footprints[label] / 2**20:6.2f} MiB")
shape = ModelShape.from_config(m.config)
linear_7b = LLAMA2_7B.num_layers * sum(i * o for i, o in LLAMA2_7B.linear_shapes().values())
share_7b = linear_7b / lorakit.count_base_params(LLAMA2_7B)
linear_tiny = shape.num_layers * sum(i * o for i, o in shape.linear_shapes().values())
share_tiny = linear_tiny / lorakit.count_base_params(shape)
embedding_share = shape.vocab_size * shape.hidden_size / lorakit.count_base_params(shape)
print(f"tiny model: embedding table {embedding_share:.0%}, linear layers {share_tiny:.0%}; "
      f"LLaMA-2-7B: linear layers {share_7b:.1%}")
assert 0.2 < embedding_share < 0.3 and share_tiny < share_7b and round(100 * share_7b) == 96  # the sentence below
assert footprints["nf4 + double quant"] < footprints["bf16"] < footprints["fp32"]

# %% [markdown]
# About a quarter of the tiny model's weights are its embedding table (4096 × 256), which NF4 leaves in 16/32 bits,
# so NF4 saves less here than on a 7B model, where the linear layers (the ones NF4 quantises) are 96% of the weights.
#
# ## 2. Activations and gradient checkpointing
#
# Activations are the tensors autograd keeps from the forward pass to compute gradients. `saved_activation_bytes`
# counts them exactly with `torch.autograd.graph.saved_tensors_hooks`. With gradient checkpointing only each block's
# input is kept; the rest is recomputed block by block during the backward pass. transformers 5.23 renamed it
# activation checkpointing: `activation_checkpointing_enable` below is the new name of `gradient_checkpointing_enable`.

# %% grading="skip"
ids = torch.randint(0, shape.vocab_size, (4, 128))
saved = {}
for gc in (False, True):
    m, _ = lorakit.load_base("tiny")
    m = get_peft_model(m, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    if gc:
        m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    m.train()
    saved[gc] = saved_activation_bytes(m, ids)
    est = estimate(shape, precision="fp32", r=16, batch=4, seq_len=128, gradient_checkpointing=gc, optimizer="adamw")
    print(f"checkpointing={gc!s:5s} measured {saved[gc] / 2**20:6.2f} MiB   estimated "
          f"{(est.activations + est.logits) / 2**20:6.2f} MiB (activations + logits)")
gc_saving = 100 * (1 - saved[True] / saved[False])
print(f"saving: {gc_saving:.0f}% of saved activations")
assert gc_saving > 60  # "far more than" the guide's ~40% (and its ~60%)

# %% [markdown]
# ## 3. Optimizer states: 32-bit vs 8-bit AdamW
#
# AdamW keeps two moments per trainable parameter, 4 bytes each. bitsandbytes' 8-bit AdamW keeps them in one byte
# each (block-wise quantised), i.e. **75%** less optimizer state, not the "~50%" sometimes quoted. For LoRA the
# states are small anyway: they scale with the adapter, not with the model.

# %%
# NBVAL_CHECK_OUTPUT
states = {}
for optimizer in ("adamw", "adamw_8bit", "sgd"):
    states[optimizer] = estimate(LLAMA2_7B, optimizer=optimizer, r=16).optimizer_states
    print(f"{optimizer:11s} LLaMA-2-7B, LoRA r=16 all-linear: {states[optimizer] / 2**20:7.1f} MiB of optimizer state")
assert round(100 * (1 - states["adamw_8bit"] / states["adamw"])) == 75  # 75% less (74.6: the blocks' constants)

# %% [markdown]
# ## 4. The 7B memory table, recomputed
#
# Batch 1 × 512 tokens. Full fine-tuning with AdamW in mixed precision costs 16 bytes per parameter before any
# activation; LoRA freezes the base, QLoRA also shrinks its linear layers to NF4: 4 bits plus the block constants,
# 4.5 bits per weight with one fp32 absmax per 64 weights, about 4.13 with double quantisation (next cell).

# %%
# NBVAL_CHECK_OUTPUT
bits = {dq: nf4_bits_per_weight(double_quant=dq) for dq in (False, True)}
print(f"NF4 bits per linear weight of LLaMA-2-7B: {bits[False]:.3f} without, {bits[True]:.3f} with double quantisation")
assert round(bits[False], 3) == 4.5 and round(bits[True], 2) == 4.13

# %%
# NBVAL_CHECK_OUTPUT
configs = {
    "full FT fp16 + AdamW": dict(precision="fp16", full_finetune=True, optimizer="adamw"),
    "LoRA fp16": dict(precision="fp16", optimizer="adamw"),
    "LoRA fp16 + GC": dict(precision="fp16", optimizer="adamw", gradient_checkpointing=True),
    "QLoRA": dict(precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit"),
    "QLoRA + GC": dict(precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit", gradient_checkpointing=True),
}
guide_gb = {"full FT fp16 + AdamW": 120, "LoRA fp16": 16, "LoRA fp16 + GC": 12, "QLoRA": 6, "QLoRA + GC": 4.5}
table_7b = {label: estimate(LLAMA2_7B, batch=1, seq_len=512, r=16, **kwargs) for label, kwargs in configs.items()}
print("GB (10^9 bytes)       weights adapter  grads  optim activ. logits transient |  total  guide | total GiB")
for label, b in table_7b.items():
    parts = [b.base_weights, b.adapters, b.gradients, b.optimizer_states, b.activations, b.logits, b.overhead]
    assert sum(parts) == b.total  # the columns add up to the total
    print(f"{label:21s}" + "".join(f"{p / 1e9:7.2f}" for p in parts) + f"    | {b.total / 1e9:6.2f} "
          f"{guide_gb[label]:6g} | {b.total / 2**30:9.2f}")

# %% [markdown]
# **Reading the table.** Every column is in GB, the guide's unit (the last column repeats the total in GiB, 2^30
# bytes, the unit GPU tools report: 4.84 GB is 4.50 GiB). "adapter" is the LoRA weights, "grads" their gradients
# (all weights' for full fine-tuning), "transient" the short-lived buffers of the backward pass through the loss and
# of dequantising one NF4 layer at a time. Two things to notice:
# * LoRA without checkpointing keeps *more* activations than full fine-tuning. peft keeps the adapters in fp32, so
#   each adapted layer saves its own fp32 copy of its 16-bit input for the backward pass (7 modules × 4 bytes per
#   input value), where full fine-tuning saves each 16-bit input once. Checkpointing removes that cost with the rest.
# * The guide's QLoRA + GC figure, ~4.5 GB, is close to this estimate (4.84 GB); its "LoRA + GC ~12 GB" is below the
#   fp16 weights alone (13.48 GB), which the audit in section 5 flags.

# %%
from lorakit.lessons import plot_memory_breakdown

plot_memory_breakdown(table_7b, stated_gb=guide_gb).set_title("LLaMA-2-7B, batch 1 × 512 tokens, LoRA r=16");
lora_act, full_act = table_7b["LoRA fp16"].activations, table_7b["full FT fp16 + AdamW"].activations
assert lora_act > full_act  # the first bullet above
assert abs(table_7b["QLoRA + GC"].total / 1e9 - 4.84) < 0.005 and abs(table_7b["QLoRA + GC"].total / 2**30 - 4.5) < 0.005

# %% [markdown]
# ### The same row, measured (GPU only)
#
# Everything above is arithmetic. On a CUDA GPU (a Colab T4 is enough) the next cell measures the "QLoRA + GC"
# configuration for real: `lorakit.memory.measurement` writes random weights of the LLaMA-2-7B shape to disk one shard at a
# time (no download, and the 13.5 GB of 16-bit weights are never in memory all at once), loads them in NF4 with double
# quantisation, adds LoRA r=16 to every linear layer, turns gradient checkpointing on and trains three AdamW steps on
# random rows of 512 tokens. It prints the GPU's allocation peak in GB (10⁹ bytes, the guide's unit) beside the guide's
# figure and the estimate for the same run (torch's 32-bit AdamW, the optimizer it trains with). Expect a few minutes,
# most of them spent writing the random checkpoint. On a CPU the cell only says that it was skipped.

# %% grading="skip"
from lorakit import measure

if not torch.cuda.is_available():
    print("skipped: no CUDA GPU here: the 7B NF4 measurement runs on a GPU kernel (Colab T4 or better)")
else:
    run_7b = measure(LLAMA2_7B, quantization="nf4", checkpointing=True, seq=512, batch=1, steps=3, r=16)
    peak_gb, guide_gb = run_7b.measured_bytes / 1e9, 4.5
    print("QLoRA 4-bit + gradient checkpointing, LLaMA-2-7B shape, batch 1 × 512 tokens, LoRA r=16, torch AdamW")
    print(f"  measured peak ({run_7b.measured_kind}): {peak_gb:.2f} GB")
    print(f'  the Training Guide: "~4.5 GB" ({100 * (guide_gb / peak_gb - 1):+.0f}% vs measured)')
    print(f"  lorakit's estimate: {run_7b.estimate_bytes / 1e9:.2f} GB ({run_7b.error_pct:+.1f}% vs measured)")

# %% [markdown]
# ### What if…? A calculator to play with
#
# The same estimator behind sliders: pick LLaMA-2-7B, the built-in tiny model or a custom shape, then change the
# rank, the target modules, the base-weight format, the optimizer, gradient checkpointing, the batch and the
# sequence length. Nothing trains; the numbers update as you move a slider. Try to find the cheapest change that
# brings "LoRA fp16" under 16 GiB at a sequence length of 2048.

# %%
from lorakit.lessons import WhatIf

calculator = WhatIf()
calculator

# %% [markdown]
# ### Exercise 4.1 — weight memory by hand (2 points)
#
# Write `linear_weight_bytes(shape)` returning the bytes taken by the weights of the **linear layers only** of a model
# of that shape (`shape.linear_shapes()` in each of `shape.num_layers` layers), as a dict of two ints: `"fp16"` in fp16,
# and `"nf4"` in NF4 *without* double quantisation (half a byte per weight plus one 4-byte absmax per block of 64
# weights; every layer here has a multiple of 64 weights).

# %% [solution] id="ch4-weights"
def linear_weight_bytes(shape: ModelShape) -> dict:
    ### BEGIN SOLUTION
    weights = shape.num_layers * sum(i * o for i, o in shape.linear_shapes().values())
    return {"fp16": 2 * weights, "nf4": weights // 2 + 4 * (weights // 64)}
    ### END SOLUTION

# %% [tests] id="ch4-weights-tests" points=2 forbid=["estimate", "get_memory_footprint", "nf4_bits_per_weight"]
### BEGIN HIDDEN TESTS
from lorakit.grading import collect
from lorakit import LLAMA2_7B, LLAMA2_13B, LLAMA3_8B, ModelShape


def shapes(rng):
    cases = [(rng.choice([LLAMA2_7B, LLAMA2_13B, LLAMA3_8B]),)]
    for _ in range(4):
        heads = rng.choice([8, 16, 32])
        cases.append((ModelShape(vocab_size=32000, hidden_size=heads * rng.choice([64, 128]),
                                 intermediate_size=rng.randrange(1024, 16384, 256), num_layers=rng.randint(2, 48),
                                 num_attention_heads=heads, num_key_value_heads=rng.choice([1, 2, 4, 8])),))
    return cases


collect("ch4-weights-tests", linear_weight_bytes, cases=shapes)
### END HIDDEN TESTS
from lorakit.lessons import check_close, check_equal, self_check
from lorakit import LLAMA2_7B

with self_check("Exercise 4.1"):
    sizes = linear_weight_bytes(LLAMA2_7B)
    linear_weights = LLAMA2_7B.num_layers * sum(i * o for i, o in LLAMA2_7B.linear_shapes().values())
    check_equal(sorted(sizes), ["fp16", "nf4"], "the keys of linear_weight_bytes's dict")
    check_equal(sizes["fp16"], 2 * linear_weights, "LLaMA-2-7B fp16 bytes", hint="fp16 is 2 bytes per weight.")
    check_close(sizes["nf4"] / sizes["fp16"], 0.28125, "LLaMA-2-7B nf4/fp16 ratio", rel=1e-9,
                hint="0.5 byte per weight + 4 bytes per 64 weights = 0.5625 bytes per weight, against 2 in fp16.")

# %% [markdown]
# ### Exercise 4.2 — make it fit a GPU (2 points)
#
# Write `first_fit(shape, budget_gib, batch, seq_len)` that goes down the chapter's list of savings in order and
# stops at the first setting whose `estimate(shape, batch=batch, seq_len=seq_len, r=16, **settings).total` is at
# most `budget_gib` GiB (2**30 bytes):
# 1. plain LoRA in fp16: `dict(precision="fp16", quantization=None, optimizer="adamw", gradient_checkpointing=False)`;
# 2. the same with 4-bit weights (`quantization="nf4"`);
# 3. then also gradient checkpointing (`gradient_checkpointing=True`);
# 4. then also the paged 8-bit optimizer (`optimizer="paged_adamw_8bit"`).
#
# Return that settings dict (the four keys above), or `None` if not even step 4 fits. (Precision stays fp16: a T4,
# say, has no bf16.)

# %% [solution] id="ch4-t4"
def first_fit(shape: ModelShape, budget_gib: float, batch: int, seq_len: int) -> dict | None:
    ### BEGIN SOLUTION
    settings = dict(precision="fp16", quantization=None, optimizer="adamw", gradient_checkpointing=False)
    for change in ({}, {"quantization": "nf4"}, {"gradient_checkpointing": True}, {"optimizer": "paged_adamw_8bit"}):
        settings = {**settings, **change}
        if estimate(shape, batch=batch, seq_len=seq_len, r=16, **settings).total <= budget_gib * 2**30:
            return settings
    return None
    ### END SOLUTION

# %% [tests] id="ch4-t4-tests" points=2
### BEGIN HIDDEN TESTS
from lorakit.grading import collect
from lorakit import LLAMA2_7B, LLAMA2_13B, LLAMA3_8B

collect("ch4-t4-tests", first_fit,
        cases=lambda rng: [(rng.choice([LLAMA2_7B, LLAMA2_13B, LLAMA3_8B]), rng.choice([8, 12, 15, 16, 24, 40, 48, 80]),
                            rng.choice([1, 2, 4, 8]), rng.choice([256, 512, 1024, 2048])) for _ in range(6)])
### END HIDDEN TESTS
from lorakit.lessons import check_equal, self_check
from lorakit import estimate
from lorakit import LLAMA2_7B

with self_check("Exercise 4.2"):
    t4_settings = first_fit(LLAMA2_7B, 15, 4, 1024)
    check_equal(t4_settings is not None and sorted(t4_settings), ["gradient_checkpointing", "optimizer", "precision",
                                                                  "quantization"], "the keys of first_fit's dict")
    t4_total = estimate(LLAMA2_7B, batch=4, seq_len=1024, r=16, **t4_settings).total / 2**30
    print(f"first_fit(LLaMA-2-7B, 15 GiB, batch 4, 1024 tokens) needs {t4_total:.1f} GiB: {t4_settings}")
    check_equal(t4_settings["gradient_checkpointing"], True, "gradient checkpointing on a 15 GiB T4 at batch 4 × 1024",
                hint="4-bit weights alone still leave the activations of 4 × 1024 tokens: the next step is checkpointing.")
    check_equal(first_fit(LLAMA2_7B, 80, 1, 512)["quantization"], None, "on an 80 GiB GPU at batch 1 × 512",
                hint="plain fp16 LoRA already fits: stop at the first setting that fits.")
    check_equal(first_fit(LLAMA2_7B, 2, 1, 512), None, "in 2 GiB", hint="when nothing fits, the answer is None.")

# %% [markdown]
# ## 5. The guide, audited line by line
#
# Every number-bearing line of the Training Guide, quoted exactly, next to the value lorakit computes (from the
# model's shape) or measures here on CPU, and a verdict: **holds** (within 25%, or exact where the guide is exact),
# **wrong**, **impossible** (below a hard floor, named in the reason) or **not measurable here** (quality, GPU
# speed, advice). The memory and parameter rows are worked out for the 7B in this chapter; the gradient-checkpointing
# rows are measured on a small random Llama, timed on one CPU thread. Memory totals need a GPU to measure
# (`benchmarks/memory_grid.py`).

# %% grading="skip"
audited = audit(measure=True)
for row in claims_table(audited):
    if row["verdict"] != "not measurable here":
        print(f"[{row['verdict']}] {row['section']}: {row['quote']}\n    stated {row['stated']}, lorakit "
              f"{row['value']} ({row['source']})\n    {row['reason']}")
tally = counts(audited)
print("\n", tally)
(lora_gc,) = [c for c in audited if c.quote == "| LoRA + gradient checkpointing | ~12 GB |"]
assert lora_gc.verdict == "impossible" and "13.48 GB > ~12 GB" in lora_gc.reason  # the next paragraph

# %% [markdown]
# The 7B table's "LoRA + gradient checkpointing ~12 GB" cannot be right at any batch size: the fp16 weights of the
# model alone take 13.48 GB. And where the guide contradicts itself:

# %%
for item in inconsistencies():
    print(" vs ".join(repr(q) for q in item.quotes), "\n   ", item.explanation)

# %% [markdown]
# ## Check yourself
# - Weights: fp32 4 B, bf16/fp16 2 B, NF4 ≈ 0.52 B per weight (4.13 bits with double quantisation); embeddings
#   stay 16-bit.
# - Gradient checkpointing keeps only block inputs: it saves far more than 40% of activation memory, at the cost of
#   one extra forward pass (the audit shows the extra time on this CPU; the guide's ~20% is a GPU figure, which
#   `benchmarks/gpu_check.py` times on a GPU).
# - 8-bit AdamW stores 2 bytes of state per parameter instead of 8: 75% less.
# - QLoRA + GC is what puts a 7B fine-tune on one consumer GPU.
