"""Chapter 3's warmup and best-epoch lessons rest on these: a fixed warmup count (the guide's `warmup_steps=100`)
reaches the Trainer as steps and is drawn by `lr_curve` as the Trainer runs it, and `load_best_model_at_end` keeps
the epoch with the lowest eval loss, not the last one."""

import math

import pytest
import torch
from peft import PeftModel
from transformers import TrainerCallback

import lorakit
from lorakit import compat
from lorakit.baselines import base_eval_loss
from lorakit.data import load_dataset
from lorakit.schedules import lr_curve


def trainer_warmup(total_steps, **overrides):
    """The warmup steps the Trainer derives for a run of `total_steps` from the quickstart recipe with overrides."""
    recipe = lorakit.get_recipe("quickstart", **overrides)
    args = compat.training_arguments(**recipe.training_kwargs("runs/test-warmup", "fp32", use_cpu=True))
    return args.get_warmup_steps(total_steps)


def test_a_fixed_warmup_longer_than_the_run_never_reaches_the_peak():
    curve = lr_curve("cosine", 40, peak_lr=2e-4, fixed_warmup_steps=100)
    assert all(a < b for a, b in zip(curve, curve[1:]))  # still climbing at the last step
    assert max(curve) == pytest.approx(2e-4 * 39 / 100, rel=1e-12)
    assert trainer_warmup(40, warmup_steps=100) == 100


def test_a_fixed_warmup_replaces_the_ratio_and_zero_keeps_it():
    assert trainer_warmup(40, warmup_steps=7, warmup_ratio=0.1) == 7
    assert trainer_warmup(40, warmup_ratio=0.1) == 4
    assert trainer_warmup(40, warmup_ratio=0.0) == 0
    ratio_curve = lr_curve("cosine", 40, warmup_ratio=0.1)
    assert lr_curve("cosine", 40, warmup_ratio=0.5, fixed_warmup_steps=4) == ratio_curve


def test_bad_fixed_warmup_and_best_epoch_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="fixed_warmup_steps must be an integer"):
        lr_curve("cosine", 40, fixed_warmup_steps=2.5)
    with pytest.raises(ValueError, match="warmup_steps must be an integer"):
        lorakit.get_recipe("quickstart", warmup_steps=-1)
    with pytest.raises(ValueError, match="load_best_model_at_end=True needs eval_strategy and save_strategy 'epoch'"):
        lorakit.get_recipe("quickstart", load_best_model_at_end=True, save_strategy="no")


class SpoilLaterEpochs(TrainerCallback):
    """Adds large noise to the adapter at the start of every epoch after the first, so the first epoch is best."""

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if state.epoch >= 1:
            with torch.no_grad():
                for param in model.parameters():
                    if param.requires_grad:
                        param.add_(torch.randn_like(param))


def test_load_best_model_at_end_keeps_the_best_epoch_not_the_last(tmp_path):
    model, tokenizer = lorakit.load_base()
    data = load_dataset("instruction", tokenizer, n_train=8, n_eval=8, seed=42)
    result = lorakit.train("quickstart", model=model, tokenizer=tokenizer, data=data, output_dir=tmp_path,
                           num_train_epochs=3, gradient_checkpointing=False, learning_rate=2e-3,
                           load_best_model_at_end=True, callbacks=[SpoilLaterEpochs()])
    evals = [loss for _, loss in result.eval_losses]
    assert len(evals) == 3 and evals[0] < min(evals[1:])  # the spoiled epochs 2 and 3 are worse
    assert result.best_epoch == 1
    kept = base_eval_loss(result.model, data)  # the model train returns, and saved as the adapter
    assert math.isclose(kept, evals[0], rel_tol=1e-4) and kept < evals[-1]
    saved = PeftModel.from_pretrained(lorakit.load_base()[0], result.adapter_dir)
    assert math.isclose(base_eval_loss(saved, data), evals[0], rel_tol=1e-4)
