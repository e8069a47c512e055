"""The GPU-scale model family runs in fp16 (a T4 has no bf16) without overflow on the course's prompts.

The course's GPU-scale model is SmolLM2-1.7B-Instruct (lorakit.lessons.scales), which cannot be loaded offline; its
sibling SmolLM2-135M-Instruct, same family, tokenizer and training recipe, can. In lorakit's QLoRA path on a T4 the
linear layers compute in fp16 while the residual stream is fp32 (peft's prepare_model_for_kbit_training up-casts the
embeddings; see tests/memory/test_estimator.py), so what must fit fp16's range (65,504) is what enters and leaves each
linear layer. On the course's instruction prompts the 135M's largest such value is about 24,900 (a down_proj output in
layer 11: one of the "massive activations" of LLMs), 38% of fp16's maximum: inside it, but not by a wide margin.
"""

from __future__ import annotations

import pytest
import torch

FP16_MAX = torch.finfo(torch.float16).max


def largest_linear_value(model, rows) -> float:
    """The largest |value| entering or leaving any linear layer of `model` over the tokenised `rows`."""
    largest = 0.0

    def record(module, inputs, output):
        nonlocal largest
        largest = max(largest, inputs[0].detach().abs().max().item(), output.detach().abs().max().item())

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            for row in rows:
                model(input_ids=torch.tensor([row["input_ids"]]))
    finally:
        for hook in hooks:
            hook.remove()
    return largest


@pytest.fixture(scope="module")
def model_and_prompts():
    import lorakit

    model, tokenizer = lorakit.load_base("smollm2-135m", device="cpu", dtype="fp32")
    data = lorakit.load_dataset("instruction", tokenizer, n_train=8, n_eval=16, max_length=64)
    return model, list(data.eval)


def test_linear_layers_stay_inside_fp16_range_on_the_course_prompts(model_and_prompts):
    model, rows = model_and_prompts
    largest = largest_linear_value(model, rows)
    assert largest < FP16_MAX / 2, f"largest linear input/output {largest:,.0f} vs fp16's maximum {FP16_MAX:,.0f}"


def test_fp16_forward_is_finite_and_agrees_with_fp32(model_and_prompts):
    model, rows = model_and_prompts
    ids = torch.tensor([rows[0]["input_ids"]])
    with torch.no_grad():
        reference = model(input_ids=ids).logits
        half = model.to(torch.float16)(input_ids=ids).logits.float()
    model.to(torch.float32)
    assert torch.isfinite(half).all()
    agreement = (half.argmax(-1) == reference.argmax(-1)).float().mean().item()
    assert agreement >= 0.9, f"fp16 picks the fp32 next token at {agreement:.0%} of positions"


def test_the_check_sees_an_overflowing_layer(model_and_prompts):
    """The measurement can fail: scale one linear layer's weights up and its output leaves fp16's range."""
    model, rows = model_and_prompts
    down_proj = model.model.layers[11].mlp.down_proj
    original = down_proj.weight.detach().clone()
    try:
        with torch.no_grad():
            down_proj.weight.mul_(4.0)
        assert largest_linear_value(model, rows[:2]) > FP16_MAX
    finally:
        with torch.no_grad():
            down_proj.weight.copy_(original)
