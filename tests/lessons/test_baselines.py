"""A run's baselines are measured on its own eval rows: the base model's loss equals a fresh base model's."""

import types

import pytest

import lorakit
from lorakit import load_dataset
from lorakit.evaluation import eval_loss, uniform_loss
from lorakit.lessons import baselines_of


def test_the_base_models_loss_is_the_runs_base_on_the_runs_eval_rows(tmp_path):
    run = lorakit.train("quickstart", learning_rate=1e-3, max_steps=3, n_train=32, n_eval=16, save_strategy="no",
                        gradient_checkpointing=False, progress=False, output_dir=tmp_path)
    reference = baselines_of(run)
    base, tokenizer = lorakit.load_base("tiny")
    same_rows = load_dataset("instruction", tokenizer, n_train=32, n_eval=16, seed=run.recipe.seed)
    assert reference.base_model == pytest.approx(eval_loss(base, same_rows), rel=1e-6)
    assert reference.base_model != pytest.approx(run.final_eval_loss, abs=1e-3)  # the adapter was really off
    assert (reference.uniform, reference.vocab_size) == (uniform_loss(tokenizer), len(tokenizer))
    assert list(reference.lines().values()) == [reference.uniform, reference.base_model]
    assert [label.split(" =")[0] for label in reference.lines()] == [f"uniform ln {len(tokenizer)}",
                                                                       f"base model eval {reference.base_model:.2f}"]


def test_a_classification_run_has_no_per_token_baselines():
    with pytest.raises(ValueError, match="run must be a causal_lm run"):
        baselines_of(types.SimpleNamespace(recipe=lorakit.get_recipe("classification")))
