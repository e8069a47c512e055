"""Padding-free batches compute the same loss as padded ones, so does projecting only the scored positions, and the
throughput benchmark runs end to end."""

import json
import subprocess
import sys

import pytest
import torch

import lorakit
from lorakit.config.recipes import RECIPES
from lorakit.training.pipeline import data_collator, scored_positions_only
from tests.helpers import REPO


@pytest.fixture(scope="module")
def tiny(tiny_base):
    model, tokenizer = tiny_base
    data = lorakit.load_dataset("instruction", tokenizer, n_train=8, n_eval=1, seed=3)
    return model, tokenizer, data


def _loss(model, batch):
    with torch.no_grad():
        return model(**batch, use_cache=False).loss.item()


def test_padding_free_loss_equals_padded_loss(tiny):
    model, _, data = tiny
    rows = [data.train[i] for i in range(8)]
    assert len({len(r["input_ids"]) for r in rows}) > 1, "rows of different lengths, so the padded batch has padding"
    padded = data_collator(RECIPES["quickstart"].replace(padding_free=False), data)(rows)
    flat = data_collator(RECIPES["quickstart"], data)(rows)
    assert flat["input_ids"].shape[0] == 1 and "attention_mask" not in flat
    assert flat["input_ids"].numel() == sum(len(r["input_ids"]) for r in rows) < padded["input_ids"].numel()
    assert _loss(model, flat) == pytest.approx(_loss(model, padded), rel=1e-5)


def test_without_restarting_positions_the_rows_would_see_each_other(tiny):
    """The check above can fail: the same flat batch without position ids attends across rows and scores worse."""
    model, _, data = tiny
    rows = [data.train[i] for i in range(8)]
    flat = data_collator(RECIPES["quickstart"], data)(rows)
    padded = data_collator(RECIPES["quickstart"].replace(padding_free=False), data)(rows)
    leaked = {k: v for k, v in flat.items() if k != "position_ids"}
    assert abs(_loss(model, leaked) - _loss(model, padded)) > 1e-3



@pytest.mark.parametrize("padding_free", [True, False])
def test_scoring_only_the_answer_positions_keeps_the_loss_and_drops_most_logits(tiny, padding_free):
    """The model's loss over the kept positions (logits_to_keep + shift_labels) equals its loss over every position,
    with the same num_items_in_batch normalisation, while the prompt positions never reach the LM head."""
    model, _, data = tiny
    rows = [data.train[i] for i in range(8)]
    batch = data_collator(RECIPES["quickstart"].replace(padding_free=padding_free), data)(rows)
    scored = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        full = model(**batch, use_cache=False)
        kept = model(**scored_positions_only(batch), use_cache=False)
        full_sum = model(**batch, use_cache=False, num_items_in_batch=torch.tensor(1)).loss
        kept_sum = model(**scored_positions_only(batch), use_cache=False, num_items_in_batch=torch.tensor(1)).loss
    assert kept.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    assert kept_sum.item() == pytest.approx(full_sum.item(), rel=1e-5)
    positions = kept.logits.shape[1]
    assert scored <= positions * batch["labels"].shape[0] and positions < full.logits.shape[1] / 2

def test_padding_free_is_validated():
    with pytest.raises(ValueError, match="padding_free"):
        RECIPES["quickstart"].replace(padding_free="yes")


def test_padding_free_is_only_for_causal_lm(tiny):
    _, _, data = tiny
    assert RECIPES["classification"].padding_free
    assert data_collator(RECIPES["classification"], data) is data.collator


def test_with_a_kv_cache_transformers_would_let_packed_rows_see_each_other(tiny):
    """With a KV cache in the forward pass the per-row mask is skipped; training is safe because Trainer sets
    `use_cache` from TrainingArguments (False by default), which the next test checks end to end."""
    model, _, data = tiny
    rows = [data.train[i] for i in range(8)]
    flat = data_collator(RECIPES["quickstart"], data)(rows)
    with torch.no_grad():
        cached = model(**flat, use_cache=True).loss.item()
    assert abs(cached - _loss(model, flat)) > 1e-3


def test_a_padding_free_run_starts_from_the_same_loss_as_a_padded_one(tmp_path):
    """Same rows, same order, no dropout: the first logged loss (before any update) must match."""
    kwargs = dict(n_train=32, n_eval=8, max_steps=2, lora_dropout=0.0, gradient_checkpointing=False,
                  save_strategy="no", eval_strategy="no", logging_steps=1, progress=False)
    padded = lorakit.train("quickstart", padding_free=False, output_dir=tmp_path / "padded", **kwargs)
    flat = lorakit.train("quickstart", output_dir=tmp_path / "flat", **kwargs)
    assert flat.train_losses[0][1] == pytest.approx(padded.train_losses[0][1], rel=1e-4)


@pytest.mark.slow
def test_throughput_benchmark_runs_and_reports():
    """A small run of benchmarks/throughput.py: the guide-style script padding to max_length pads most positions,
    the dynamic-padding baseline some, lorakit's none; all train on the same real tokens."""
    reports = {}
    for variant in ("plain-max-length", "plain", "lorakit"):
        out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--n-train", "24",
                              "--n-eval", "8", "--variant", variant], capture_output=True, text=True, check=True)
        reports[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    padded, plain, ours = reports["plain-max-length"], reports["plain"], reports["lorakit"]
    assert padded["real_tokens"] == plain["real_tokens"] == ours["real_tokens"] == ours["processed_tokens"] > 0
    assert padded["processed_tokens"] == 24 * 256 > plain["processed_tokens"] > plain["real_tokens"]
    for report in reports.values():
        assert 0 < report["eval_loss"] < 20 and report["tokens_per_s"] > 0 and report["peak_bytes"] > 0
