import dataclasses
import math

import pytest

from lorakit.recipes import RECIPES, Recipe, get_recipe, linear_module_names
from lorakit.vocab import LLAMA_LINEAR_MODULES


def test_guide_numbers_of_the_quickstart_recipe():
    r = RECIPES["quickstart"]
    assert (r.r, r.lora_alpha, r.lora_dropout, r.target_modules) == (16, 32, 0.05, "all-linear")
    assert (r.learning_rate, r.lr_scheduler_type, r.warmup_ratio) == (2e-4, "cosine", 0.03)
    assert (r.precision, r.gradient_checkpointing, r.optim, r.max_grad_norm) == ("bf16", True, "paged_adamw_8bit", 0.3)
    assert r.save_strategy == "epoch"


@pytest.mark.parametrize("name,r,alpha,lr", [
    ("instruction", 16, 32, 2e-4), ("code", 32, 64, 1e-4), ("domain", 64, 128, 5e-5),
    ("classification", 8, 16, 2e-4), ("dpo", 16, 32, 5e-5),
])
def test_task_recipes(name, r, alpha, lr):
    recipe = RECIPES[name]
    assert (recipe.r, recipe.lora_alpha, recipe.learning_rate) == (r, alpha, lr)
    assert recipe.scale == alpha / r


def test_domain_and_classification_specifics():
    assert RECIPES["domain"].lora_dropout == 0.1
    cls = RECIPES["classification"]
    assert cls.task == "seq_cls" and set(cls.resolved_target_modules()) == {"q_proj", "v_proj"}
    assert cls.lora_config().task_type == "SEQ_CLS"
    assert RECIPES["instruction"].quantization == "nf4"


def test_rslora_scale():
    assert get_recipe("quickstart", use_rslora=True).scale == pytest.approx(32 / math.sqrt(16))


@pytest.mark.parametrize("field,value,fragment", [
    ("r", 0, "r must be an integer in [1, 1024]"),
    ("r", 2.5, "r must be an integer"),
    ("lora_alpha", 0, "lora_alpha must be"),
    ("lora_dropout", 0.9, "lora_dropout must be a number in [0, 0.5]"),
    ("learning_rate", 0, "learning_rate must be"),
    ("learning_rate", float("nan"), "learning_rate must be"),
    ("warmup_ratio", 2, "warmup_ratio"),
    ("lr_scheduler_type", "cosine_annealing", "lr_scheduler_type must be one of"),
    ("optim", "adam", "optim must be one of"),
    ("precision", "fp8", "precision must be one of"),
    ("quantization", "nf3", "quantization must be one of"),
    ("target_modules", "attention", "target_modules must be one of"),
    ("target_modules", [], "target_modules must be a preset"),
])
def test_bad_values_name_the_field(field, value, fragment):
    with pytest.raises(ValueError) as err:
        get_recipe("quickstart", **{field: value})
    assert fragment in str(err.value)


def test_layers_to_transform_needs_module_list():
    with pytest.raises(ValueError, match="layers_to_transform needs target_modules as a list"):
        get_recipe("quickstart", layers_to_transform=[0, 1])
    recipe = get_recipe("quickstart", target_modules=["q_proj"], layers_to_transform=[0])
    assert recipe.lora_config().layers_to_transform == [0]


def test_unknown_recipe_and_field():
    with pytest.raises(ValueError, match="recipe must be one of .*quickstart"):
        get_recipe("qlora-magic")
    with pytest.raises(ValueError, match="unknown recipe field"):
        get_recipe("quickstart", rank=8)


def test_unknown_module_names_list_the_models_valid_ones():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    assert linear_module_names(model) == tuple(sorted(LLAMA_LINEAR_MODULES))
    recipe = get_recipe("quickstart", target_modules=["q_proj", "query"])
    with pytest.raises(ValueError, match=r"unknown module name\(s\) \['query'\]; valid names: .*'down_proj'"):
        recipe.lora_config(model)


def test_replace_is_validated_and_recipes_are_immutable():
    recipe = RECIPES["quickstart"]
    assert recipe.replace(r=8).r == 8 and recipe.r == 16
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'r'"):
        recipe.r = 4
    assert isinstance(recipe, Recipe)
