"""The memory estimator: its formulas, its monotonic behaviour, and its activation term against autograd's
saved tensors measured on CPU."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from lorakit.config.choices import resolve_targets
from lorakit.memory.estimator import estimate, saved_activation_bytes
from lorakit.models.shapes import LLAMA2_7B, ModelShape, count_base_params, count_lora_params

SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2)


def _measured_and_estimated(dtype, targets, gc=False, full=False, batch=2, seq=32):
    config = LlamaConfig(**SMALL)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to({"fp32": torch.float32, "bf16": torch.bfloat16}[dtype])
    if not full:
        model = get_peft_model(model, LoraConfig(r=8, target_modules=resolve_targets(targets), lora_dropout=0.0))
    if gc:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    measured = saved_activation_bytes(model, torch.randint(0, config.vocab_size, (batch, seq)))
    est = estimate(ModelShape.from_config(config), precision=dtype, r=8, targets=targets, gradient_checkpointing=gc,
                   batch=batch, seq_len=seq, full_finetune=full)
    return measured, est.activations + est.logits


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("targets,full,tolerance", [("all-linear", False, 0.05), ("q,v", False, 0.15),
                                                    ("all-linear", True, 0.10)])
def test_activation_estimate_matches_autograd_saved_tensors(dtype, targets, full, tolerance):
    measured, estimated = _measured_and_estimated(dtype, targets, full=full)
    assert abs(estimated - measured) / measured < tolerance, (measured, estimated)


def test_gradient_checkpointing_keeps_only_block_inputs():
    plain, _ = _measured_and_estimated("fp32", "all-linear")
    checkpointed, estimated = _measured_and_estimated("fp32", "all-linear", gc=True)
    assert checkpointed < 0.2 * plain
    assert abs(estimated - checkpointed) / checkpointed < 0.25


def test_weights_formulas_for_7b():
    bf16 = estimate(LLAMA2_7B, precision="bf16")
    assert bf16.base_weights == 2 * count_base_params(LLAMA2_7B)
    nf4 = estimate(LLAMA2_7B, quantization="nf4", double_quant=True)
    nf4_plain = estimate(LLAMA2_7B, quantization="nf4", double_quant=False)
    linear = 32 * sum(i * o for i, o in LLAMA2_7B.linear_shapes().values())
    assert nf4.base_weights < nf4_plain.base_weights < bf16.base_weights / 3
    # double quantisation saves ~0.37 bits per parameter (0.5 bits of fp32 absmax → ~0.127)
    saved_bits = 8 * (nf4_plain.base_weights - nf4.base_weights) / linear
    assert 0.35 < saved_bits < 0.39
    assert estimate(LLAMA2_7B, quantization="int8").base_weights < bf16.base_weights


def test_optimizer_states():
    n = count_lora_params(LLAMA2_7B, 16)
    adam = estimate(LLAMA2_7B, optimizer="adamw").optimizer_states
    adam8 = estimate(LLAMA2_7B, optimizer="paged_adamw_8bit").optimizer_states
    assert adam == 8 * n
    assert 0.25 <= adam8 / adam < 0.26  # 8-bit states are a quarter of 32-bit ones, plus block constants
    assert estimate(LLAMA2_7B, optimizer="sgd").optimizer_states == 0
    full = estimate(LLAMA2_7B, precision="fp16", full_finetune=True, optimizer="adamw")
    assert full.optimizer_states == 12 * count_base_params(LLAMA2_7B)  # fp32 master copy + two fp32 moments
    assert full.base_weights + full.gradients + full.optimizer_states == 16 * count_base_params(LLAMA2_7B)
    assert estimate(LLAMA2_7B, precision="fp32", full_finetune=True, optimizer="adamw").optimizer_states == \
        8 * count_base_params(LLAMA2_7B)


def test_monotonic_in_batch_sequence_and_checkpointing():
    base = estimate(LLAMA2_7B, seq_len=512)
    assert estimate(LLAMA2_7B, seq_len=1024).activations == 2 * base.activations
    assert estimate(LLAMA2_7B, batch=4).activations == 4 * base.activations
    gc = estimate(LLAMA2_7B, gradient_checkpointing=True)
    assert gc.activations < 0.1 * base.activations and gc.total < base.total


def test_kbit_preparation_costs_what_the_estimate_counts():
    """peft's prepare_model_for_kbit_training (lorakit.train's path for a quantized base) up-casts the unquantized
    weights to fp32, and the fp32 residual stream doubles what checkpointing keeps: both as estimated."""
    from lorakit.compat.versions import prepare_model_for_kbit_training
    from lorakit.models.load import load_base

    model, _ = load_base("tiny", quantization="nf4", dtype="bf16", device="cpu")
    shape = ModelShape.from_config(model.config)
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    model = prepare_model_for_kbit_training(model, True)
    after = sum(p.numel() * p.element_size() for p in model.parameters())
    settings = dict(precision="bf16", quantization="nf4", gradient_checkpointing=True, batch=2, seq_len=32, r=8)
    plain, prepared = estimate(shape, **settings), estimate(shape, kbit_prepared=True, **settings)
    assert after - before == prepared.base_weights - plain.base_weights > 0

    model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", lora_dropout=0.0))
    model.train()
    measured = saved_activation_bytes(model, torch.randint(0, shape.vocab_size, (2, 32)))
    assert measured == pytest.approx(prepared.activations + prepared.logits, rel=0.05)
    assert abs(measured - (prepared.activations + prepared.logits)) < abs(measured - (plain.activations + plain.logits))


def test_a_runs_estimate_uses_what_the_run_trained_with(tmp_path):
    import lorakit

    model, tokenizer = lorakit.load_base("tiny", quantization="nf4", device="cpu")
    run = lorakit.train("quickstart", model=model, tokenizer=tokenizer, quantization="nf4", max_steps=1, r=4,
                        per_device_train_batch_size=2, max_length=48, output_dir=tmp_path, progress=False)
    shape = ModelShape.from_config(model.config)
    assert run.precision == "fp32" and run.recipe.quantization == "nf4"
    expected = estimate(shape, precision="fp32", quantization="nf4", optimizer=run.recipe.optim, batch=2, seq_len=48,
                        r=4, targets=run.recipe.target_modules, kbit_prepared=True,
                        gradient_checkpointing=run.recipe.gradient_checkpointing)
    assert lorakit.estimate_run(run, shape) == expected


@pytest.mark.parametrize("kwargs,fragment", [
    ({"precision": "fp8"}, "precision must be one of"),
    ({"optimizer": "lion"}, "optimizer must be one of"),
    ({"quantization": "nf2"}, "quantization must be one of"),
    ({"batch": 0}, "batch must be an integer"),
    ({"seq_len": -5}, "seq_len must be an integer"),
    ({"r": 0}, "r must be an integer"),
    ({"full_finetune": True, "quantization": "nf4"}, "cannot train quantized weights"),
    ({"kbit_prepared": True}, "kbit_prepared=True describes a quantized base"),
])
def test_bad_input(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        estimate(LLAMA2_7B, **kwargs)


def test_benchmark_cpu_smoke_accounts_for_every_byte(repo):
    """benchmarks/memory_grid.py --cpu-smoke: weights + grads + optimizer states + saved activations, counted from
    live storage after a real step, against the estimate (minus its transient overhead term)."""
    from tests.helpers import load_benchmark

    grid = load_benchmark("memory_grid")
    threads = torch.get_num_threads()
    try:
        assert grid.main(["--cpu-smoke"]) < 2.0  # worst |error| in %
    finally:
        torch.set_num_threads(threads)  # the benchmark runs single-threaded; leave later tests as they were
