"""lorakit.models.shapes counts equal peft's on real instantiated models, for many shapes and adapter configurations."""

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from lorakit.config.choices import resolve_targets
from lorakit.models.shapes import (
    LLAMA2_7B,
    LLAMA3_8B,
    SMOLLM2_1_7B,
    ModelShape,
    count_base_params,
    count_lora_params,
    lora_table,
    lora_table_7b,
)

SHAPES = {
    "mha-untied": dict(vocab_size=96, hidden_size=32, intermediate_size=80, num_hidden_layers=3,
                       num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False),
    "gqa-tied": dict(vocab_size=128, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True),
    "gqa-headdim": dict(vocab_size=64, hidden_size=40, intermediate_size=72, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=1, head_dim=16, tie_word_embeddings=False),
}
CASES = [
    dict(r=4, target_modules="all-linear"),
    dict(r=8, target_modules="q,v"),
    dict(r=2, target_modules="q,k,v,o"),
    dict(r=3, target_modules=["down_proj", "k_proj"], layers_to_transform=[1]),
    dict(r=5, target_modules=["gate_proj"], layers_to_transform=0),
    dict(r=4, target_modules="q,v", use_dora=True),
    dict(r=4, target_modules="all-linear", modules_to_save=["lm_head"]),
]


def _peft_kwargs(case):
    kw = dict(case)
    kw["target_modules"] = resolve_targets(case["target_modules"])
    return kw


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_equals_peft_on_causal_lm(shape_name, case):
    config = LlamaConfig(**SHAPES[shape_name])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    shape = ModelShape.from_config(config)
    assert count_base_params(shape) == sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, **_peft_kwargs(case)))
    assert count_lora_params(shape, **case) == peft_model.get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("shape_name", SHAPES)
def test_llama_config_is_the_inverse_of_from_config(shape_name):
    shape = ModelShape.from_config(LlamaConfig(**SHAPES[shape_name]), name="round-trip")
    config = shape.llama_config(max_position_embeddings=512)
    assert ModelShape.from_config(config, name="round-trip") == shape and config.max_position_embeddings == 512


@pytest.mark.parametrize("targets", ["q,v", "all-linear"])
def test_equals_peft_on_sequence_classification(targets):
    config = LlamaConfig(**SHAPES["gqa-tied"], num_labels=5, pad_token_id=0)
    model = LlamaForSequenceClassification(config)
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8,
                                                  target_modules=resolve_targets(targets)))
    expected = count_lora_params(ModelShape.from_config(config), 8, targets, modules_to_save=["score"], num_labels=5)
    assert expected == peft_model.get_nb_trainable_parameters()[0]


def test_the_built_in_model():
    from lorakit.models.load import load_base

    model, _ = load_base("tiny")
    shape = ModelShape.from_config(model.config)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    assert count_lora_params(shape, 16) == peft_model.get_nb_trainable_parameters()[0]


def test_llama2_7b_numbers():
    assert count_base_params(LLAMA2_7B) == 6_738_415_616
    assert count_base_params(LLAMA3_8B) == 8_030_261_248
    assert count_base_params(SMOLLM2_1_7B) == 1_711_376_384  # the 1.71B of SmolLM2-1.7B's model card


def test_a_named_shape_counts_what_transformers_builds():
    with torch.device("meta"):
        model = LlamaForCausalLM(SMOLLM2_1_7B.llama_config())
    assert count_base_params(SMOLLM2_1_7B) == sum(p.numel() for p in model.parameters())
    assert count_lora_params(LLAMA2_7B, 8, "q,v") == 4_194_304
    assert count_lora_params(LLAMA2_7B, 16, "all-linear") == 39_976_960
    table = lora_table()
    assert len(table) == 18
    assert [row["trainable"] for row in table if row["targets"] == "q,v"] == [2**20 * r // 2 for r in (4, 8, 16, 32, 64, 128)]


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(r=0), "r must be an integer"),
    (dict(r=4, target_modules=["q", "v"]), "unknown module name"),
    (dict(r=4, target_modules="attention"), "target_modules must be one of"),
    (dict(r=4, target_modules="q,v", layers_to_transform=[0]), "layers_to_transform needs target_modules as a list"),
    (dict(r=4, target_modules=["q_proj"], layers_to_transform=[40]), "outside 0..31"),
    (dict(r=4, modules_to_save=["embed_tokens"]), "modules_to_save entries"),
])
def test_bad_input(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        count_lora_params(LLAMA2_7B, **kwargs)


def test_bad_shape():
    with pytest.raises(ValueError, match="hidden_size must be an integer"):
        ModelShape(100, -5, 10, 1, 1, 1)
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        ModelShape(100, 64, 10, 1, 4, 3)


def test_lora_table_7b_and_peft_rejects_the_same_input():
    from peft import LoraConfig

    rows = lora_table_7b()
    assert {(row["r"], row["targets"]) for row in rows} == {(r, t) for r in (4, 8, 16, 32, 64, 128)
                                                          for t in ("q,v", "q,k,v,o", "all-linear")}
    row = next(row for row in rows if row["r"] == 16 and row["targets"] == "all-linear")
    assert row["trainable"] == 39_976_960 and abs(row["percent_of_base"] - 0.5933) < 1e-3
    with pytest.raises(ValueError, match="layers_to_transform"):  # peft refuses a string with layers_to_transform
        LoraConfig(r=4, target_modules="q_proj|v_proj", layers_to_transform=[0])
