"""Bad inputs across the public API: every case in tests/helpers/bad_inputs.py raises a ValueError or TypeError that names
the field, docs/bad_inputs.md is the table generated from those cases, and property tests try random values of
each config field: whatever they are, a public function either accepts the value (and what it returns works) or
raises ValueError/TypeError naming the field, never anything else."""

import dataclasses
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lorakit
from lorakit.compat import versions as compat
from lorakit.config.choices import LLAMA_LINEAR_MODULES
from lorakit.config.recipes import Recipe
from lorakit.data.datasets import DEFAULT_SIZES
from lorakit.models.shapes import LLAMA2_7B, ModelShape, count_base_params
from tests.helpers.bad_inputs import CASES, DOC, call_text, outcome, render

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ["q_proj", "v_proj", "all-linear", "q,v", "nf4", "int8", "bf16", "fp32", "auto", "cosine", "epoch",
         "instruction", "code", "score", "lm_head", "adamw_torch", "sgd", "", "None"]
ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 5000), st.integers(), st.floats(), st.sampled_from(WORDS),
    st.text(max_size=6), st.complex_numbers(max_magnitude=10),
    st.lists(st.one_of(st.integers(-3, 40), st.sampled_from(LLAMA_LINEAR_MODULES + ("score",)), st.text(max_size=4)),
             max_size=3),
    st.dictionaries(st.sampled_from(LLAMA_LINEAR_MODULES), st.integers(0, 3), max_size=2),
)
SCRATCH = str(Path(tempfile.gettempdir()) / "lorakit-bad-inputs")


def _names(field: str, error: Exception) -> bool:
    return re.search(rf"(?<![\w]){re.escape(field)}(?![\w])", str(error)) is not None


def _accepts_or_names(field, call, check_result):
    """Run `call`: a ValueError/TypeError must name `field`; a result must pass `check_result`."""
    try:
        result = call()
    except (ValueError, TypeError) as err:
        assert _names(field, err), f"{type(err).__name__} does not name {field!r}: {err}"
        return
    check_result(result)


@pytest.mark.parametrize("case", CASES, ids=call_text)
def test_bad_input_raises_an_error_naming_the_field(case):
    kind, message = outcome(case)
    assert kind in ("ValueError", "TypeError"), f"{call_text(case)} → {kind}: {message}"
    assert _names(case.field, message), f"{call_text(case)}: message does not name {case.field!r}: {message}"


def test_docs_table_is_generated_from_the_cases():
    assert DOC.read_text(encoding="utf-8") == render(), "docs/bad_inputs.md is out of date: run `python -m tests.helpers.bad_inputs`"


RECIPE_FIELDS = [f.name for f in dataclasses.fields(Recipe)]


@SETTINGS
@given(field=st.sampled_from(RECIPE_FIELDS), value=ANY)
def test_recipe_overrides_are_accepted_whole_or_refused_by_name(field, value):
    def configs():  # module names are checked by lora_config (against Llama's here, the model's in train)
        recipe = lorakit.get_recipe("quickstart", **{field: value})
        return recipe.lora_config(), compat.training_arguments(**recipe.training_kwargs(SCRATCH, "fp32", use_cpu=True))

    _accepts_or_names(field, configs, lambda made: None)


ESTIMATE_FIELDS = ["precision", "quantization", "double_quant", "optimizer", "gradient_checkpointing", "batch",
                   "seq_len", "r", "targets", "full_finetune"]


def _sane_breakdown(breakdown):
    parts = dataclasses.astuple(breakdown)
    assert all(isinstance(p, int) and p >= 0 for p in parts) and breakdown.total > 0


@SETTINGS
@given(field=st.sampled_from(ESTIMATE_FIELDS), value=ANY)
def test_estimate_arguments(field, value):
    _accepts_or_names(field, lambda: lorakit.estimate(LLAMA2_7B, **{field: value}), _sane_breakdown)


SHAPE = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=None, tie_word_embeddings=False, name="small")


@SETTINGS
@given(field=st.sampled_from(list(SHAPE)), value=ANY)
def test_model_shape_fields(field, value):
    def usable(shape):
        assert count_base_params(shape) > 0 and lorakit.count_lora_params(shape, 8) > 0
        _sane_breakdown(lorakit.estimate(shape))

    _accepts_or_names(field, lambda: ModelShape(**{**SHAPE, field: value}), usable)


COUNT_FIELDS = ["r", "target_modules", "layers_to_transform", "use_dora", "modules_to_save", "num_labels"]


@SETTINGS
@given(field=st.sampled_from(COUNT_FIELDS), value=ANY)
def test_count_lora_params_arguments(field, value):
    arguments = {"r": 8, "target_modules": ["q_proj", "v_proj"], "modules_to_save": ["score"], "num_labels": 3}

    def usable(count):
        assert isinstance(count, int) and count > 0

    _accepts_or_names(field, lambda: lorakit.count_lora_params(LLAMA2_7B, **{**arguments, field: value}), usable)


LOAD_FIELDS = ["name", "n_train", "n_eval", "seed", "max_length", "mask_prompt"]


@SETTINGS
@given(field=st.sampled_from(LOAD_FIELDS), value=ANY)
def test_load_dataset_arguments(field, value):
    arguments = {"name": "instruction", "n_train": 4, "n_eval": 2, **{field: value}}

    def usable(data):
        n_train = arguments["n_train"]
        assert len(data.train) == (DEFAULT_SIZES[arguments["name"]][0] if n_train is None else n_train)

    _accepts_or_names(field, lambda: lorakit.load_dataset(**arguments), usable)
