"""Chapter 3's warmup and best-epoch lessons rest on these: a fixed warmup count (the guide's `warmup_steps=100`)
reaches the Trainer as steps and is drawn by `lr_curve` as the Trainer runs it, and `load_best_model_at_end` keeps
the epoch with the lowest eval loss, not the last one."""

import math

import pytest
import torch
from peft import PeftModel
from transformers import TrainerCallback

import lorakit
from lorakit.compat import versions as compat
from lorakit.config.recipes import RECIPES
from lorakit.data.datasets import load_dataset
from lorakit.evaluation import eval_loss
from lorakit.training import kept_checkpoint, same_adapter
from lorakit.training.schedules import lr_curve
from lorakit.training.stage import Run


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


class ResetLaterEpochs(TrainerCallback):
    """Zeroes every LoRA B matrix at the end of each epoch after the first, before that epoch's evaluation and
    checkpoint: those epochs evaluate as the base model exactly, so the first epoch is the best."""

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if state.epoch >= 2:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if "lora_B" in name:
                        param.zero_()


@pytest.mark.slow  # several epochs with an eval each
def test_load_best_model_at_end_keeps_the_best_epoch_not_the_last(tmp_path):
    model, tokenizer = lorakit.load_base()
    data = load_dataset("instruction", tokenizer, n_train=8, n_eval=8, seed=42)
    result = lorakit.train("quickstart", model=model, tokenizer=tokenizer, data=data, output_dir=tmp_path,
                           num_train_epochs=3, gradient_checkpointing=False, learning_rate=2e-3, progress=False,
                           load_best_model_at_end=True, per_device_train_batch_size=2, callbacks=[ResetLaterEpochs()])
    evals = [loss for _, loss in result.eval_losses]
    assert len(evals) == 3 and evals[0] < evals[1] == pytest.approx(evals[2])  # epochs 2 and 3: the base model
    assert result.best_epoch == 1
    kept = kept_checkpoint(tmp_path)
    assert kept.name == "checkpoint-4"  # 8 rows in batches of 2: four steps an epoch
    assert same_adapter(result.adapter_dir, kept) and not same_adapter(result.adapter_dir, tmp_path / "checkpoint-12")
    kept_loss = eval_loss(result.model, data)  # the model train returns, measured outside the Trainer
    assert math.isclose(kept_loss, evals[0], rel_tol=1e-4) and kept_loss < evals[-1]
    saved = PeftModel.from_pretrained(lorakit.load_base()[0], result.adapter_dir)
    assert math.isclose(eval_loss(saved, data), evals[0], rel_tol=1e-4)


def test_kept_checkpoint_needs_a_run_that_kept_one(tmp_path):
    lorakit.train("quickstart", output_dir=tmp_path, max_steps=1, n_train=8, n_eval=4, progress=False,
                  gradient_checkpointing=False)
    with pytest.raises(ValueError, match="no run trained with load_best_model_at_end=True"):
        kept_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="no run trained with load_best_model_at_end=True"):
        kept_checkpoint(tmp_path / "empty")


def test_a_fresh_run_clears_an_earlier_runs_checkpoints_and_a_resume_keeps_them(tmp_path, monkeypatch):
    notes = []
    monkeypatch.setattr("lorakit.training.checkpoints.announce", notes.append)
    for step in (4, 32):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text('{"best_model_checkpoint": "x"}')
    (tmp_path / "checkpoint-notes").mkdir()  # not a Trainer checkpoint: left alone
    Run.start(RECIPES["quickstart"], tmp_path, resume_from_checkpoint=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-32", "checkpoint-4", "checkpoint-notes"]
    Run.start(RECIPES["quickstart"], tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-notes"]
    assert len(notes) == 2 and "2 checkpoint folder(s) of an earlier run (checkpoint-4 … checkpoint-32): removed" in notes[1]
