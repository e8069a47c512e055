"""Chapter 6's DPO stage starts at the SFT model: on an NF4 base, policy and reference both score held-out
instruction rows as the SFT model does (merging the adapter into 4-bit weights would round most of SFT away)."""

import math
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

import lorakit
from lorakit.data.datasets import load_dataset
from lorakit.training.dpo import REFERENCE_ADAPTER, dpo_stage


def eval_loss(model, rows) -> float:
    """The mean answer loss of `model` over tokenised rows, one row at a time, in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        losses = [model(**{k: torch.tensor([row[k]]) for k in ("input_ids", "attention_mask", "labels")}).loss.item()
                  for row in rows]
    model.train(was_training)
    return sum(losses) / len(losses)


@pytest.mark.slow
def test_dpo_starts_at_the_sft_model_on_an_nf4_base(tmp_path):
    model, tokenizer = lorakit.load_base("tiny", quantization="nf4")
    sft = lorakit.train("instruction", model=model, tokenizer=tokenizer, max_steps=8, n_train=32, n_eval=4,
                        learning_rate=1e-3, save_strategy="no", eval_strategy="no", output_dir=tmp_path / "sft",
                        progress=False)
    rows = load_dataset("instruction", tokenizer, n_train=8, n_eval=8, seed=1, max_length=64).eval
    sft_loss = eval_loss(sft.model, rows)
    with sft.model.disable_adapter():
        base_loss = eval_loss(sft.model, rows)
    seen = {}

    class AtStart(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            seen["policy"] = eval_loss(model, rows)
            model.set_adapter(REFERENCE_ADAPTER)
            seen["reference"] = eval_loss(model, rows)
            model.set_adapter("default")
            seen["trainable"] = [n for n, p in model.named_parameters() if p.requires_grad]

    recipe = lorakit.get_recipe("dpo", max_steps=2, per_device_train_batch_size=2, n_train=8, n_eval=4,
                                logging_steps=1, save_strategy="no")
    dpo = dpo_stage(recipe, sft, output_dir=Path(tmp_path), callbacks=[AtStart()], progress=False)
    assert base_loss - sft_loss > 1.0, "SFT must move the loss for the comparison to mean anything"
    assert seen["policy"] == pytest.approx(sft_loss, rel=1e-4)
    assert seen["reference"] == pytest.approx(sft_loss, rel=1e-4)
    assert seen["trainable"] and all(".default." in n for n in seen["trainable"])
    margins = [h["rewards/margins"] for h in dpo.log_history if "rewards/margins" in h]
    assert abs(margins[0]) < 1e-6 and math.isfinite(dpo.final_eval_loss)
    assert getattr(dpo.model.get_base_model(), "is_loaded_in_4bit", False)
    assert list(dpo.model.peft_config) == ["default"]
    assert not (dpo.adapter_dir / REFERENCE_ADAPTER).exists()


@pytest.mark.slow
def test_sft_then_dpo_on_an_nf4_base(tmp_path):
    """`lorakit.train("dpo", quantization="nf4")`: QLoRA SFT, then DPO on the same 4-bit base."""
    result = lorakit.train("dpo", quantization="nf4", output_dir=tmp_path, max_steps=2, n_train=8, n_eval=4,
                           per_device_train_batch_size=2, logging_steps=1, save_strategy="no", progress=False)
    assert getattr(result.model.get_base_model(), "is_loaded_in_4bit", False)
    assert any("rewards/margins" in h for h in result.log_history) and math.isfinite(result.final_eval_loss)
