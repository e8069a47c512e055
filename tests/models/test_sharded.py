"""QLoRA under a sharded launch (FSDP / DeepSpeed ZeRO-3): one dtype for every frozen parameter, nothing up-cast.

FSDP itself needs GPUs (accelerate refuses FSDP on CPU), so this checks what lorakit controls: the environment
`accelerate launch` exports, the base as loaded, and the adapter-wrapped model handed to Trainer.
"""

import pytest
import torch

import lorakit
from lorakit.config.recipes import RECIPES
from lorakit.models.hardware import sharded_launch
from lorakit.training.pipeline import prepare_model

FSDP_ENV = {"ACCELERATE_USE_FSDP": "true"}


@pytest.mark.parametrize("env, expected", [
    ({}, False),
    (FSDP_ENV, True),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, True),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, False),
])
def test_sharded_launch_is_read_from_the_launcher_environment(monkeypatch, env, expected):
    for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sharded_launch() is expected


def _frozen_dtypes(model):
    return {p.dtype for name, p in model.named_parameters() if "lora_" not in name}


def test_nf4_base_under_fsdp_has_one_dtype_and_keeps_it_through_lora(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    model, _ = lorakit.load_base("tiny", quantization="nf4", dtype="bf16")
    packed = model.model.layers[0].self_attn.q_proj.weight
    assert type(packed).__name__ == "Params4bit" and packed.dtype == torch.bfloat16
    assert _frozen_dtypes(model) == {torch.bfloat16}
    wrapped = prepare_model(RECIPES["instruction"], model)
    assert _frozen_dtypes(wrapped) == {torch.bfloat16}
    assert wrapped.get_nb_trainable_parameters()[0] > 0
    batch = torch.tensor([[5, 6, 7, 8]])
    wrapped(input_ids=batch, labels=batch).loss.backward()  # gradients reach every trainable (adapter) weight
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if p.requires_grad)


def test_without_a_sharded_launch_the_usual_kbit_preparation_mixes_dtypes(monkeypatch):
    """The check above can fail: single-process QLoRA packs weights in uint8 and up-casts norms to fp32."""
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    model, _ = lorakit.load_base("tiny", quantization="nf4", dtype="bf16")
    wrapped = prepare_model(RECIPES["instruction"], model)
    assert {torch.uint8, torch.float32} <= _frozen_dtypes(wrapped)
