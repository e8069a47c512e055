"""Training under faults: a `lorakit train` killed (SIGKILL) or interrupted (SIGINT) mid-run resumes with `--resume`
without losing a finished epoch, an unwritable output folder fails before training in one line, and a GPU
out-of-memory error lists remedies with the memory estimator's figures."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from transformers import AutoConfig

import lorakit
from lorakit.cli import main
from lorakit.memory.estimator import estimate
from lorakit.memory.oom_advice import TrainingOutOfMemoryError
from lorakit.models.load import TINY_DIR
from lorakit.models.shapes import ModelShape
from lorakit.training.checkpoints import last_checkpoint
from lorakit.training.pipeline import LorakitTrainer

# 64 rows / batch 8 = 8 steps per epoch (long enough for a signal to land inside an epoch), 3 epochs:
# checkpoint-8, -16, -24
TINY = dict(n_train=64, n_eval=4, num_train_epochs=3, eval_strategy="no", gradient_checkpointing=False,
            logging_steps=1, optim="adamw_torch", per_device_train_batch_size=8, save_strategy="epoch")
TINY_ARGS = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]


def _start(output_dir, log, *extra):
    command = [sys.executable, "-m", "lorakit.cli", "train", "--output-dir", str(output_dir), *TINY_ARGS, *extra]
    out, err = open(f"{log}.out", "w"), open(f"{log}.err", "w")
    # a shell that started the test suite in the background ignores SIGINT, and children inherit that (Python then
    # installs no KeyboardInterrupt handler): restore the default, as in a terminal
    return subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_checkpoint(process, checkpoint, timeout=180):
    """Poll until the Trainer has written `checkpoint` completely (trainer_state.json is its last file)."""
    deadline = time.monotonic() + timeout
    while last_checkpoint(checkpoint.parent) != checkpoint:
        assert process.poll() is None, f"the run ended (rc {process.returncode}) before {checkpoint.name}"
        assert time.monotonic() < deadline, f"no {checkpoint.name} after {timeout} s"
        time.sleep(0.02)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_killed_and_interrupted_runs_resume_without_losing_an_epoch(tmp_path):
    out = tmp_path / "run"
    first = _start(out, tmp_path / "first")
    _wait_for_checkpoint(first, out / "checkpoint-8")
    first.send_signal(signal.SIGKILL)
    assert first.wait(60) == -signal.SIGKILL
    assert last_checkpoint(out) == out / "checkpoint-8" and not (out / "adapter").exists()
    epoch_1 = _digest(out / "checkpoint-8/adapter_model.safetensors")
    # a kill while epoch 2's checkpoint was being written leaves a folder without trainer_state.json
    (out / "checkpoint-16").mkdir(exist_ok=True)
    (out / "checkpoint-16/adapter_model.safetensors").write_bytes(b"half written")

    second = _start(out, tmp_path / "second", "--resume")
    _wait_for_checkpoint(second, out / "checkpoint-16")
    second.send_signal(signal.SIGINT)
    assert second.wait(60) == 130
    stderr = (tmp_path / "second.err").read_text()
    assert "Traceback" not in stderr
    assert "\nlorakit: interrupted: completed epochs are saved; rerun the same command with --resume\n" in stderr
    assert f"resuming from {out / 'checkpoint-8'} (epoch 1, step 8)" in (tmp_path / "second.out").read_text()

    third = _start(out, tmp_path / "third", "--resume")
    assert third.wait(300) == 0, (tmp_path / "third.err").read_text()[-3000:]
    assert f"resuming from {out / 'checkpoint-16'} (epoch 2, step 16)" in (tmp_path / "third.out").read_text()
    assert (out / "adapter/adapter_model.safetensors").is_file()
    assert _digest(out / "checkpoint-8/adapter_model.safetensors") == epoch_1  # epoch 1 kept, not retrained
    state = json.loads((out / "checkpoint-24/trainer_state.json").read_text())
    assert (state["global_step"], state["epoch"]) == (24, 3)
    assert [h["step"] for h in state["log_history"] if "loss" in h] == list(range(1, 25))  # each step trained once


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--output-dir", str(tmp_path), "--resume", *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no complete checkpoint-N folder" in err
    with pytest.raises(ValueError, match="resume_from_checkpoint .* is not a checkpoint folder"):
        lorakit.train(output_dir=tmp_path, resume_from_checkpoint=tmp_path / "nowhere", **TINY)


def test_unwritable_output_dir_fails_before_training_in_one_line(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr("lorakit.models.load.load_base", lambda *a, **k: loaded.append(a))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["train", "--output-dir", str(blocker / "run"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert err == f"lorakit: error: output_dir {str(blocker / 'run')!r} is not writable: Not a directory\n"
    assert loaded == []


def _simulated_oom(self, *args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 MiB (GPU 0; 15.77 GiB total)")


def _mib(**changes):
    shape = ModelShape.from_config(AutoConfig.from_pretrained(TINY_DIR))
    settings = dict(precision=lorakit.choose_precision("bf16"), quantization=None, optimizer="adamw",
                    gradient_checkpointing=False, batch=8, seq_len=256, r=16, targets="all-linear")
    return f"{estimate(shape, **{**settings, **changes}).total / 2**20:,.0f} MiB"


def test_gpu_out_of_memory_lists_remedies_with_estimates(tmp_path, monkeypatch):
    monkeypatch.setattr(LorakitTrainer, "train", _simulated_oom)
    with pytest.raises(TrainingOutOfMemoryError) as caught:
        lorakit.train(output_dir=tmp_path, **TINY)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    lines = str(caught.value).splitlines()
    assert lines[0] == ("GPU out of memory while training recipe 'quickstart' (CUDA out of memory. Tried to allocate "
                        "64.00 MiB (GPU 0; 15.77 GiB total)).")
    assert f"puts this run at {_mib()} (batch 8 × max_length 256" in lines[1]
    assert lines[2:7] == [
        f"  - per_device_train_batch_size=4, gradient_accumulation_steps=2 (same effective batch, 8): {_mib(batch=4)}",
        f"  - gradient_checkpointing=True: {_mib(gradient_checkpointing=True)}",
        f"  - quantization='nf4' (4-bit NF4 base weights: QLoRA): {_mib(quantization='nf4')}",
        f"  - max_length=128 (longer rows are cut): {_mib(seq_len=128)}",
        f"  - all of these together: "
        f"{_mib(batch=4, gradient_checkpointing=True, quantization='nf4', seq_len=128)}",
    ]
    current = float(_mib().split()[0].replace(",", ""))
    assert all(float(line.rsplit(": ", 1)[1].split()[0].replace(",", "")) < current for line in lines[2:7])


def test_out_of_memory_in_the_cli_is_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(LorakitTrainer, "train", _simulated_oom)
    assert main(["train", "--output-dir", str(tmp_path), *TINY_ARGS, "--set", "gradient_checkpointing=True"]) == 1
    err = capsys.readouterr().err
    assert "\nlorakit: error: GPU out of memory while training recipe 'quickstart'" in "\n" + err and "Traceback" not in err
    assert "gradient_checkpointing=True:" not in err and "quantization='nf4'" in err  # only changes not yet made
