"""Evaluation helpers, adapter save/load round trip, and resuming an interrupted run."""

import math

import pytest
import torch
from peft import PeftModel
from transformers import TrainerCallback

import lorakit
from lorakit.data import load_dataset
from lorakit.evaluate import (classification_accuracy, compare_adapters, exact_match, forgetting,
                              generation_stats, merged_matches_unmerged, perplexity)

FAST = dict(n_train=48, n_eval=16, gradient_checkpointing=False, logging_steps=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return lorakit.train("quickstart", learning_rate=1e-3, max_steps=12, save_strategy="no", output_dir=out, **FAST)


def test_adapter_round_trip_gives_the_same_outputs(trained):
    inputs = trained.tokenizer(["def add(a, b):", "The for statement"], return_tensors="pt", padding=True)
    trained.model.eval()
    with torch.no_grad():
        expected = trained.model(**inputs).logits
        base, _ = lorakit.load_base("tiny")
        base_logits = base(**inputs).logits
        reloaded = PeftModel.from_pretrained(base, str(trained.adapter_dir)).eval()
        assert torch.allclose(reloaded(**inputs).logits, expected, atol=1e-5)
        assert not torch.allclose(base_logits, expected, atol=1e-3)  # the adapter really changes the model


def test_merged_equals_unmerged(trained):
    inputs = trained.tokenizer(["class A:", "import os"], return_tensors="pt", padding=True)
    equal, diff = merged_matches_unmerged(trained.model, inputs, atol=1e-4)
    assert equal and diff < 1e-4


def test_perplexity_and_forgetting(trained):
    texts = ["The for statement is used to iterate over the elements of a sequence."] * 2
    ppl = perplexity(trained.model, trained.tokenizer, texts)
    assert math.isfinite(ppl) and ppl > 1
    numbers = forgetting(trained.model, trained.tokenizer, texts)
    with trained.model.disable_adapter():
        assert numbers["base_perplexity"] == pytest.approx(perplexity(trained.model, trained.tokenizer, texts))
    assert numbers["ratio"] == pytest.approx(numbers["adapted_perplexity"] / numbers["base_perplexity"])
    with pytest.raises(ValueError, match="texts must not be empty"):
        perplexity(trained.model, trained.tokenizer, [])


def test_exact_match_and_ab_table(trained, tmp_path):
    rows = load_dataset("instruction", trained.tokenizer, n_train=4, n_eval=12).raw_eval
    base, tokenizer = lorakit.load_base("tiny")
    assert exact_match(base, tokenizer, rows) == 0.0
    other = lorakit.train("quickstart", learning_rate=1e-5, max_steps=2, save_strategy="no", output_dir=tmp_path,
                          **FAST)
    model = PeftModel.from_pretrained(base, str(trained.adapter_dir), adapter_name="A")
    table = compare_adapters(model, tokenizer, {"A": str(trained.adapter_dir), "B": str(other.adapter_dir)}, rows)
    assert len(table) == len(rows) + 1 and table[-1]["prompt"] == "accuracy"
    assert table[-1]["A"] == exact_match(trained.model, trained.tokenizer, rows)
    assert {"prompt", "expected", "A", "B"} <= set(table[0])


def test_generation_stats():
    stats = generation_stats(["a b", "", "x x x x", "a b"])
    assert stats["empty_rate"] == 0.25 and stats["same_answer_rate"] == 0.5
    assert stats["repetition_rate"] == pytest.approx((0 + 0.75 + 0) / 3)


def test_classification_accuracy_on_a_trained_head(tmp_path):
    result = lorakit.train("classification", learning_rate=1e-3, max_steps=40, save_strategy="no",
                           output_dir=tmp_path, n_train=320, n_eval=60, gradient_checkpointing=False)
    data = load_dataset("classification", result.tokenizer, n_train=4, n_eval=60)
    assert classification_accuracy(result.model, result.tokenizer, data.raw_eval) > 0.5  # 6 classes: chance 1/6


class StopAfterFirstEpoch(TrainerCallback):
    """Simulates an interruption (Ctrl-C, a killed kernel) right after the first epoch's checkpoint."""

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.epoch >= 1:
            control.should_training_stop = True


def test_resume_from_an_interrupted_checkpoint_reaches_the_same_loss(tmp_path):
    settings = dict(num_train_epochs=2, n_train=32, n_eval=8, gradient_checkpointing=False, logging_steps=1,
                    save_strategy="epoch", eval_strategy="no")
    whole = lorakit.train("quickstart", output_dir=tmp_path / "whole", **settings)
    cut = lorakit.train("quickstart", output_dir=tmp_path / "cut", callbacks=[StopAfterFirstEpoch()], **settings)
    checkpoints = cut.checkpoints()
    assert len(checkpoints) == 1 and cut.train_losses[-1][0] == 4  # 32 rows / batch 8 = 4 steps: stopped at epoch 1
    resumed = lorakit.train("quickstart", output_dir=tmp_path / "cut", resume_from_checkpoint=str(checkpoints[0]),
                            **settings)
    assert resumed.train_losses[-1][0] == whole.train_losses[-1][0] == 8
    assert resumed.train_losses[-1][1] == pytest.approx(whole.train_losses[-1][1], rel=1e-4)
