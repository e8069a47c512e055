"""Resuming an interrupted run from its epoch checkpoint reaches the same final loss as an uninterrupted run.

The interruption is simulated inside the same 2-epoch run (a callback stops it after epoch 1's checkpoint, as a
killed kernel would), so the learning-rate schedule of the resumed run is the one the uninterrupted run had. (A run
trained with num_train_epochs=1 and then resumed with 2 would not match: its cosine schedule already decayed to 0.)
Checkpoints hold the adapter, optimizer and scheduler states and the RNG states, so on CPU the result is exact."""

import pytest
from transformers import TrainerCallback

import lorakit


class StopAfterFirstEpoch(TrainerCallback):
    """Simulates an interruption (Ctrl-C, a killed kernel) right after the first epoch's checkpoint."""

    def on_epoch_end(self, args, state, control, **kwargs):
        if state.epoch >= 1:
            control.should_training_stop = True


@pytest.mark.slow  # three training runs
def test_resume_from_an_interrupted_checkpoint_reaches_the_same_loss(tmp_path):
    settings = dict(num_train_epochs=2, n_train=32, n_eval=8, gradient_checkpointing=False, logging_steps=1,
                    save_strategy="epoch", eval_strategy="no")
    whole = lorakit.train("quickstart", output_dir=tmp_path / "whole", **settings)
    assert [p.name for p in whole.checkpoints()] == ["checkpoint-4", "checkpoint-8"]  # one per epoch
    cut = lorakit.train("quickstart", output_dir=tmp_path / "cut", callbacks=[StopAfterFirstEpoch()], **settings)
    checkpoints = cut.checkpoints()
    assert len(checkpoints) == 1 and cut.train_losses[-1][0] == 4  # 32 rows / batch 8 = 4 steps: stopped at epoch 1
    assert {"optimizer.pt", "scheduler.pt", "trainer_state.json"} <= {p.name for p in checkpoints[0].iterdir()}
    assert cut.train_losses == whole.train_losses[:4]
    resumed = lorakit.train("quickstart", output_dir=tmp_path / "cut", resume_from_checkpoint=str(checkpoints[0]),
                            **settings)
    assert resumed.train_losses[-1][0] == whole.train_losses[-1][0] == 8
    assert [s for s, _ in resumed.train_losses if s > 4] == [5, 6, 7, 8]
    for (_, got), (_, want) in zip(resumed.train_losses[-4:], whole.train_losses[-4:]):
        assert got == pytest.approx(want, rel=1e-5)
