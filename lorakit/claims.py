"""An audit of the quantitative claims a typical LoRA/QLoRA guide makes (chapter 4).

Each claim is recomputed from the model's shape (`lorakit.params`, `lorakit.memory`) and, with `measure=True`, measured
on CPU where CPU can measure it (small random Llama models, a few seconds each, < ~30 s in all). Claims that only a
GPU can measure (throughput of NF4 kernels, CUDA peak memory) say so in their note; `benchmarks/memory_grid.py`
measures the memory ones on a GPU.

Verdicts compare the stated figure with the computed one (or the measured one when there is one):
- "holds": within 15 %;
- "off":   within a factor of 1.5 (the order of magnitude is right, the number is not);
- "wrong": further off than that, or the wrong way round;
- "not measured": a claim only a GPU can check (no computed figure either).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .memory import estimate
from .params import LLAMA2_7B, count_base_params, count_lora_params

HOLDS_WITHIN = 0.15
OFF_WITHIN = 1.5
GB = 1e9  # guides quote decimal gigabytes
CLAIM_BATCH, CLAIM_SEQ = 1, 512  # the batch and sequence length the memory claims are audited at


@dataclass(frozen=True)
class Claim:
    """One quantitative statement, what it says, what we compute and (optionally) measure, and the verdict."""

    statement: str
    stated: float
    computed: float
    measured: float | None
    unit: str
    verdict: str
    note: str


def verdict(stated: float, actual: float) -> str:
    """'holds' within 15 %, 'off' within a factor 1.5, else 'wrong' (see the module docstring)."""
    if stated <= 0 or actual <= 0:
        return "holds" if stated == actual else "wrong"
    ratio = actual / stated
    if abs(ratio - 1) <= HOLDS_WITHIN:
        return "holds"
    if 1 / OFF_WITHIN <= ratio <= OFF_WITHIN:
        return "off"
    return "wrong"


def _claim(statement: str, stated: float, computed: float, unit: str, note: str,
           measured: float | None = None) -> Claim:
    actual = measured if measured is not None else computed
    return Claim(statement, stated, computed, measured, unit, verdict(stated, actual), note)


# --------------------------------------------------------------------------------------------------- measurements

def _small_llama(hidden: int = 128, layers: int = 4, vocab: int = 512, dtype: Any = None) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 11 // 4,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    return model.to(dtype) if dtype is not None else model


def measure_peft_count_7b(r: int, targets: list[str]) -> int:
    """peft's own trainable count for a LLaMA-2-7B-shaped model built on the meta device (no weights allocated)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    s = LLAMA2_7B
    config = LlamaConfig(vocab_size=s.vocab_size, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
                         num_hidden_layers=s.num_layers, num_attention_heads=s.num_attention_heads,
                         num_key_value_heads=s.num_key_value_heads)
    with torch.device("meta"):
        model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=r, target_modules=targets))
    return model.get_nb_trainable_parameters()[0]


def measure_gradient_checkpointing(steps: int = 5, batch: int = 4, seq: int = 256) -> dict[str, float]:
    """On a small random Llama with LoRA (CPU, fp32): bytes autograd saves for backward with and without gradient
    checkpointing, and the time of a forward+backward step with and without it (median of `steps`)."""
    import torch

    results: dict[str, float] = {}
    ids = torch.randint(0, 512, (batch, seq), generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: timings on a shared CPU are far steadier
    try:
        _gc_runs(results, ids, steps)
    finally:
        torch.set_num_threads(threads)
    return results


def _gc_runs(results: dict[str, float], ids: Any, steps: int) -> None:
    from peft import LoraConfig, get_peft_model

    from .memory import saved_activation_bytes

    for gc in (False, True):
        model = get_peft_model(_small_llama(), LoraConfig(r=8, target_modules="all-linear"))
        if gc:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        results[f"saved_bytes_gc={gc}"] = saved_activation_bytes(model, ids)
        times = []
        for step in range(steps + 1):  # first step warms up
            start = time.perf_counter()
            model(input_ids=ids, labels=ids).loss.backward()
            if step:
                times.append(time.perf_counter() - start)
        results[f"step_seconds_gc={gc}"] = sorted(times)[len(times) // 2]


def measure_optimizer_state_bytes() -> dict[str, int]:
    """Bytes of optimizer state after one step, torch AdamW vs bitsandbytes AdamW8bit, on the same LoRA model
    (CPU; every adapter tensor has ≥ 4,096 values so bitsandbytes uses 8-bit states for all of them)."""
    import torch
    from peft import LoraConfig, get_peft_model

    out = {}
    for name in ("adamw", "adamw_8bit"):
        model = get_peft_model(_small_llama(hidden=128, layers=2), LoraConfig(r=64, target_modules="all-linear"))
        params = [p for p in model.parameters() if p.requires_grad]
        if name == "adamw":
            opt = torch.optim.AdamW(params, lr=1e-4)
        else:
            import bitsandbytes as bnb

            opt = bnb.optim.AdamW8bit(params, lr=1e-4)
        ids = torch.randint(0, 512, (1, 16), generator=torch.Generator().manual_seed(0))
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        seen: dict[int, int] = {}
        for state in opt.state.values():
            for value in state.values():
                if torch.is_tensor(value) and value.numel() > 1:
                    seen.setdefault(value.untyped_storage().data_ptr(), value.untyped_storage().nbytes())
        out[name] = sum(seen.values())
        out[f"{name}_params"] = sum(p.numel() for p in params)
    return out


# --------------------------------------------------------------------------------------------------- the audit

def audit(measure: bool = False) -> list[Claim]:
    """Every quantitative claim of the guide, recomputed (and measured on CPU when `measure=True`)."""
    s = LLAMA2_7B
    base = count_base_params(s)
    claims: list[Claim] = []

    # --- trainable parameters -------------------------------------------------------------------------------
    qv8 = count_lora_params(s, 8, "q,v")
    claims.append(_claim(
        "LoRA r=8 on q_proj,v_proj of LLaMA-2-7B trains ~4.2M parameters (~0.06 % of the model)", 4.2e6, qv8,
        "params", f"32 layers × 2 modules × 8 × (4096 + 4096) = {qv8:,} = {100 * qv8 / base:.3f} % of {base:,}",
        measured=measure_peft_count_7b(8, ["q_proj", "v_proj"]) if measure else None))
    all16 = count_lora_params(s, 16, "all-linear")
    measured_all16 = measure_peft_count_7b(16, "all-linear") if measure else None
    claims.append(_claim(
        "LoRA r=16 on all linear layers of LLaMA-2-7B trains ~4M parameters", 4e6, all16, "params",
        f"all seven projections: 16 × Σ(in+out) = 16 × 78,080 per layer × 32 = {all16:,}; the 4M figure is the "
        "q,v count at r=8, not all-linear", measured=measured_all16))
    claims.append(_claim(
        "LoRA r=16 on all linear layers of LLaMA-2-7B trains ~20M parameters", 20e6, all16, "params",
        f"{all16:,}: twice the quoted figure (the MLP projections are 2.7× wider than the attention ones)",
        measured=measured_all16))
    claims.append(_claim(
        "Doubling the rank doubles the trainable parameters", 2.0, count_lora_params(s, 32) / all16, "ratio",
        "exact: every adapter is r·(in+out)"))

    # --- memory for 7B at batch 1 × 512 tokens ----------------------------------------------------------------
    kw = dict(batch=CLAIM_BATCH, seq_len=CLAIM_SEQ)
    where = f"(batch {CLAIM_BATCH} × {CLAIM_SEQ} tokens; estimate, needs a GPU to measure: benchmarks/memory_grid.py)"
    full = estimate(s, precision="fp16", full_finetune=True, optimizer="adamw", **kw)
    claims.append(_claim(
        "Full fine-tuning of a 7B model in FP16 with Adam needs ~112 GB", 112, full.total / GB, "GB",
        f"16 bytes/param (fp16 weights 2 + grads 2 + fp32 master 4 + Adam 8) = {16 * base / GB:.0f} GB before "
        f"activations {where}"))
    lora = estimate(s, precision="fp16", optimizer="adamw", r=16, **kw)
    claims.append(_claim(
        "LoRA (r=16, all-linear) on a 7B model in FP16 needs ~16 GB", 16, lora.total / GB, "GB",
        f"weights {lora.base_weights / GB:.1f} GB + activations {lora.activations / GB:.1f} GB dominate {where}"))
    lora_gc = estimate(s, precision="fp16", optimizer="adamw", r=16, gradient_checkpointing=True, **kw)
    claims.append(_claim(
        "... and with gradient checkpointing ~14 GB", 14, lora_gc.total / GB, "GB",
        f"activations drop to {lora_gc.activations / GB:.2f} GB; the fp16 weights ({lora_gc.base_weights / GB:.1f} GB) "
        f"are the floor {where}"))
    qlora = estimate(s, precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit", r=16, **kw)
    claims.append(_claim(
        "QLoRA (NF4 + double quant, paged 8-bit AdamW) fine-tunes a 7B model in ~6 GB", 6, qlora.total / GB, "GB",
        f"NF4 weights {qlora.base_weights / GB:.1f} GB, but without checkpointing the activations "
        f"({qlora.activations / GB:.1f} GB) exceed them {where}"))
    qlora_gc = estimate(s, precision="bf16", quantization="nf4", optimizer="paged_adamw_8bit", r=16,
                        gradient_checkpointing=True, **kw)
    claims.append(_claim(
        "QLoRA with gradient checkpointing fits a 7B model in ~5 GB", 5, qlora_gc.total / GB, "GB",
        f"NF4 weights {qlora_gc.base_weights / GB:.2f} GB (embeddings and lm_head stay 16-bit: "
        f"{2 * 2 * s.vocab_size * s.hidden_size / GB:.2f} GB of it) {where}"))
    linear = s.num_layers * sum(i * o for i, o in s.linear_shapes().values())
    dq = estimate(s, quantization="nf4", double_quant=True).base_weights
    no_dq = estimate(s, quantization="nf4", double_quant=False).base_weights
    claims.append(_claim(
        "Double quantisation saves ~0.37 bits per parameter (~3 GB on a 65B model, ~0.3 GB on 7B)", 0.37,
        8 * (no_dq - dq) / linear, "bits/param",
        f"absmax per 64 weights: fp32 = 0.5 bit/param → 8-bit + fp32 per 256 blocks ≈ 0.127; on 7B: "
        f"{(no_dq - dq) / GB:.2f} GB"))

    # --- gradient checkpointing -------------------------------------------------------------------------------
    plain_act = lora.activations
    gc_act = lora_gc.activations + lora_gc.overhead - lora.overhead  # kept block inputs + the block recomputed
    computed_saving = 100 * (1 - gc_act / plain_act)
    measured_saving = measured_time = None
    gc_note = (f"estimate at 7B, 512 tokens: {plain_act / GB:.2f} GB → {gc_act / GB:.2f} GB of activations "
               f"(only each block's input is kept, one block is recomputed at a time)")
    if measure:
        m = measure_gradient_checkpointing()
        measured_saving = 100 * (1 - m["saved_bytes_gc=True"] / m["saved_bytes_gc=False"])
        measured_time = 100 * (m["step_seconds_gc=True"] / m["step_seconds_gc=False"] - 1)
        gc_note += (f"; measured on a 4-layer random Llama (CPU, fp32, LoRA): saved tensors "
                    f"{m['saved_bytes_gc=False'] / 2**20:.1f} MiB → {m['saved_bytes_gc=True'] / 2**20:.1f} MiB")
    claims.append(_claim(
        "Gradient checkpointing saves ~40 % of activation memory", 40, computed_saving, "%", gc_note,
        measured=measured_saving))
    claims.append(_claim(
        "Gradient checkpointing costs ~20 % more training time", 20, 100 / 3, "%",
        "computed: one extra forward per step ≈ 1/3 of forward+backward (backward ≈ 2× forward), less where the "
        "frozen base's weight gradients are skipped (LoRA); measured: forward+backward step time on CPU"
        + (f", {measured_time:.0f} % slower" if measured_time is not None else ""),
        measured=measured_time))

    # --- optimizer ----------------------------------------------------------------------------------------------
    adam = estimate(s, optimizer="adamw", r=16).optimizer_states
    adam8 = estimate(s, optimizer="adamw_8bit", r=16).optimizer_states
    measured_opt = None
    opt_note = "AdamW keeps two fp32 moments (8 bytes/param); 8-bit AdamW two uint8 moments + one fp32 absmax per 256"
    if measure:
        o = measure_optimizer_state_bytes()
        measured_opt = 100 * (1 - o["adamw_8bit"] / o["adamw"])
        opt_note += (f"; measured on CPU: {o['adamw'] / o['adamw_params']:.2f} → "
                     f"{o['adamw_8bit'] / o['adamw_8bit_params']:.3f} bytes/param")
    claims.append(_claim(
        "An 8-bit optimizer saves ~50 % of optimizer memory", 50, 100 * (1 - adam8 / adam), "%",
        opt_note + "; the saving on total memory is tiny for LoRA (the states of 40M adapters are 0.3 GB)",
        measured=measured_opt))

    # --- speed that only a GPU can measure ---------------------------------------------------------------------
    claims.append(Claim(
        "QLoRA trains ~10 % slower than LoRA (4-bit dequantisation on the fly)", 10, float("nan"), None, "%",
        "not measured",
        "needs a GPU: on CPU bitsandbytes' 4-bit path is a reference implementation whose speed says nothing about "
        "CUDA kernels. The QLoRA paper reports slower steps from dequantisation and paging; measure it with "
        "benchmarks/memory_grid.py --time on a GPU"))
    return claims


def claims_table(claims: list[Claim]) -> list[dict[str, Any]]:
    """Rows (plain dicts, no pandas needed) with formatted figures, ready for a notebook table."""
    def fmt(value: float | None, unit: str) -> str:
        if value is None or value != value:  # None or NaN
            return "—"
        if unit == "params":
            return f"{value / 1e6:,.2f}M"
        return f"{value:,.2f} {unit}" if unit != "ratio" else f"{value:.2f}×"

    return [{"claim": c.statement, "stated": fmt(c.stated, c.unit), "computed": fmt(c.computed, c.unit),
             "measured": fmt(c.measured, c.unit), "verdict": c.verdict, "note": c.note} for c in claims]
