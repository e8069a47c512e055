"""What the guide audit (`lorakit.lessons.guide_audit`) measures and derives: gradient checkpointing's memory and
time on a small Llama, optimizer-state bytes per parameter of AdamW and 8-bit AdamW, two adapters on one base (the
guide's A/B snippet), NF4 bits per weight and the longest sequence under a memory budget (`lorakit.memory.estimator`)."""

from __future__ import annotations

import time
from typing import Any

from ..memory.estimator import PRECISION_BYTES, estimate
from ..models.shapes import LLAMA2_7B, count_base_params

GB = 1e9  # the guide quotes decimal gigabytes


def _small_llama(hidden: int = 128, layers: int = 4, vocab: int = 512) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 11 // 4,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def measure_gradient_checkpointing(steps: int = 7, batch: int = 4, seq: int = 256) -> dict[str, float]:
    """On a small random Llama with LoRA (CPU, fp32, one thread): bytes autograd saves for backward with and without
    gradient checkpointing, and the fastest forward+backward step of each. Steps alternate between the two models so
    that load from other processes hits both alike; the minimum is the least disturbed step."""
    import torch
    from peft import LoraConfig

    from ..compat.versions import get_peft_model
    from ..memory.estimator import saved_activation_bytes

    results: dict[str, float] = {}
    ids = torch.randint(0, 512, (batch, seq), generator=torch.Generator().manual_seed(0))
    models = {}
    for gc in (False, True):
        model = get_peft_model(_small_llama(), LoraConfig(r=8, target_modules="all-linear"))
        if gc:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        results[f"saved_bytes_gc={gc}"] = saved_activation_bytes(model, ids)
        models[gc] = model
    times: dict[bool, list[float]] = {False: [], True: []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: timings on a shared CPU are far steadier
    try:
        for step in range(steps + 1):  # the first round warms up
            for gc, model in models.items():
                start = time.perf_counter()
                model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
                if step:
                    times[gc].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    for gc, seconds in times.items():
        results[f"step_seconds_gc={gc}"] = min(seconds)
    return results


def measure_optimizer_state_bytes() -> dict[str, int]:
    """Bytes of optimizer state after one step, torch AdamW vs bitsandbytes AdamW8bit, on the same LoRA model
    (CPU; every adapter tensor has ≥ 4,096 values so bitsandbytes uses 8-bit states for all of them)."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig

    from ..compat.versions import get_peft_model
    from ..memory.estimator import optimizer_state_bytes

    out = {}
    for name, make in (("adamw", torch.optim.AdamW), ("adamw_8bit", bnb.optim.AdamW8bit)):
        model = get_peft_model(_small_llama(hidden=128, layers=2), LoraConfig(r=64, target_modules="all-linear"))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = make(params, lr=1e-4)
        ids = torch.randint(0, 512, (1, 16), generator=torch.Generator().manual_seed(0))
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        out[name] = optimizer_state_bytes(opt)
        out[f"{name}_params"] = sum(p.numel() for p in params)
    return out


def measure_shared_base(tmp_dir: str) -> dict[str, float]:
    """The guide's A/B snippet on a small random Llama: two adapters saved, then `PeftModel.from_pretrained` twice on
    one base. Returns how far model_a's logits move when model_b is created (0 if the two were independent) and
    whether model_a and model_b share their layers."""
    import torch
    from peft import LoraConfig, PeftModel

    from ..compat.versions import get_peft_model

    ids = torch.randint(0, 512, (1, 12), generator=torch.Generator().manual_seed(0))
    for seed, name in ((1, "adapter_v1"), (2, "adapter_v2")):
        model = _small_llama()
        torch.manual_seed(seed)  # after the base: the two adapters differ
        get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                         init_lora_weights=False)).save_pretrained(f"{tmp_dir}/{name}")
    base = _small_llama()
    model_a = PeftModel.from_pretrained(base, f"{tmp_dir}/adapter_v1")
    with torch.no_grad():
        before = model_a(input_ids=ids).logits
        model_b = PeftModel.from_pretrained(base, f"{tmp_dir}/adapter_v2")
        after = model_a(input_ids=ids).logits
    shared = model_a.base_model.model is model_b.base_model.model
    return {"max_logit_change": float((after - before).abs().max()), "shared_layers": float(shared)}



def nf4_bits_per_weight(double_quant: bool = True) -> float:
    """Bits per linear weight of LLaMA-2-7B stored in NF4 (4 bits + its block constants), from lorakit.memory.estimator."""
    s = LLAMA2_7B
    linear = s.num_layers * sum(i * o for i, o in s.linear_shapes().values())
    others = count_base_params(s) - linear  # embeddings, norms, lm_head: kept 16-bit
    nf4 = estimate(s, precision="bf16", quantization="nf4", double_quant=double_quant).base_weights
    return 8 * (nf4 - PRECISION_BYTES["bf16"] * others) / linear


def longest_seq_under(gb: float, **kwargs: Any) -> int:
    """The longest sequence (multiple of 64, batch 1) whose estimated total stays under `gb` decimal GB (0 if none)."""
    seq = 0
    while seq < 8192 and estimate(LLAMA2_7B, batch=1, seq_len=seq + 64, r=16, **kwargs).total / GB <= gb:
        seq += 64
    return seq
