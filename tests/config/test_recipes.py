import dataclasses
import math
import re

import pytest

from lorakit.config.choices import LLAMA_LINEAR_MODULES
from lorakit.config.recipes import (
    FIELDS,
    KINDS,
    RECIPES,
    TASK_DEFAULTS,
    TASK_RECIPES,
    Recipe,
    allowed,
    get_recipe,
    linear_module_names,
    parse_field,
)


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


def test_every_field_is_documented_with_what_it_allows():
    for name, field in FIELDS.items():
        assert field.metadata["help"], name
        if KINDS[name] in ("int", "float") and "choices" not in field.metadata:
            low, high = field.metadata["bounds"]
            assert low < high, name
    assert allowed("r") == "an integer in [1, 1024]"
    assert allowed("max_steps") == "-1 (train by epochs) or an integer in [1, 1e+07]"
    assert allowed("quantization") == "None (full-precision base weights) or one of ['nf4', 'int8']"


@pytest.mark.parametrize("name", ["r", "lora_dropout", "optim", "precision", "layers_to_transform", "seed", "description"])
def test_the_validation_error_says_what_the_metadata_allows(name):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be {allowed(name)}, got 7.5")):
        get_recipe("quickstart", target_modules=["q_proj"], **{name: 7.5})


@pytest.mark.parametrize("name,text,value", [
    ("r", "8", 8), ("learning_rate", "1e-4", 1e-4), ("num_train_epochs", "3", 3.0), ("use_dora", "true", True),
    ("gradient_checkpointing", "False", False), ("quantization", "None", None), ("quantization", "nf4", "nf4"),
    ("max_steps", "-1", -1), ("target_modules", "q,v", "q,v"), ("target_modules", "q_proj, v_proj", ("q_proj", "v_proj")),
    ("target_modules", "['q_proj']", ("q_proj",)), ("layers_to_transform", "0,1", (0, 1)), ("n_train", "none", None),
])
def test_parse_field_reads_text_by_the_fields_type(name, text, value):
    parsed = parse_field(name, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name,text,message", [
    ("r", "eight", r"r must be an integer in \[1, 1024\], got 'eight'"),
    ("r", "0", r"r must be an integer in \[1, 1024\], got 0"),
    ("use_dora", "yes", "use_dora must be True or False, got 'yes'"),
    ("optim", "lion", r"optim must be one of \['adamw_torch'"),
    ("seed", "None", r"seed must be an integer in \[0, "),
    ("layers_to_transform", "a,b", r"layers_to_transform must be None \(all layers\) or a non-empty list"),
    ("rank", "8", r"unknown recipe field\(s\) \['rank'\]"),
])
def test_parse_field_refuses_with_the_field_and_what_is_allowed(name, text, message):
    with pytest.raises(ValueError, match=message):
        parse_field(name, text)


def test_task_recipes_are_the_quickstart_with_their_declared_changes():
    quickstart = dataclasses.asdict(RECIPES["quickstart"])
    for name, changes in TASK_RECIPES.items():
        expected = {**quickstart, **TASK_DEFAULTS, "name": name, **changes}
        assert dataclasses.asdict(RECIPES[name]) == expected
