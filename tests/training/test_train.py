"""Every recipe trains a few steps on CPU through the real path (NF4 + double quant + 8-bit optimizer where the
recipe says so), saves its adapter, and logs what the course shows."""

import math
import subprocess
import sys

import pytest
import torch

import lorakit
from lorakit.config.recipes import RECIPES
from lorakit.models.shapes import ModelShape, count_lora_params

FAST = dict(max_steps=3, n_train=24, n_eval=8, logging_steps=1, gradient_checkpointing=True)


@pytest.mark.parametrize("name", ["quickstart", "instruction", pytest.param("code", marks=pytest.mark.slow), "domain",
                                  "classification"])  # code: the longest rows
def test_recipe_trains_through_the_real_path(name, tmp_path):
    result = lorakit.train(name, output_dir=tmp_path, **FAST)
    recipe = RECIPES[name]
    losses = [loss for _, loss in result.train_losses]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert result.final_eval_loss is not None and math.isfinite(result.final_eval_loss)
    assert any("eval_perplexity" in h for h in result.log_history)
    assert all("grad_norm" in h and "learning_rate" in h for h in result.log_history if "loss" in h)
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert list(result.output_dir.rglob("events.out.tfevents.*")), "TensorBoard event files are written offline"
    shape = ModelShape.from_config(result.model.get_base_model().config)
    by_shape = (count_lora_params(shape, recipe.r, recipe.target_modules, modules_to_save=["score"], num_labels=6)
                if recipe.task == "seq_cls" else count_lora_params(shape, recipe.r, recipe.target_modules))
    assert result.trainable_params == result.model.get_nb_trainable_parameters()[0] == by_shape
    assert result.precision == "fp32"  # bf16 requested, CPU has none: announced fallback
    assert any("bf16 → fp32" in n for n in result.notes)
    q_proj = result.model.get_base_model().model.layers[0].self_attn.q_proj
    if recipe.quantization == "nf4":
        import bitsandbytes as bnb

        assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
        assert q_proj.base_layer.weight.quant_state.nested
    assert result.checkpoints(), "an epoch-end checkpoint (max_steps ends the epoch) must be saved"


def test_8bit_optimizer_is_the_real_bitsandbytes_one(tmp_path):
    import bitsandbytes as bnb
    from transformers import TrainerCallback

    seen = {}

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            inner = getattr(optimizer, "optimizer", optimizer)
            seen["optimizer"] = inner

    result = lorakit.train("quickstart", output_dir=tmp_path, callbacks=[Spy()], save_strategy="no", **FAST)
    optimizer = seen["optimizer"]
    assert isinstance(optimizer, bnb.optim.optimizer.Optimizer8bit) and optimizer.is_paged
    states = [s for s in optimizer.state.values() if "state1" in s]
    assert any(s["state1"].dtype == torch.uint8 for s in states)  # 8-bit moments
    if not torch.cuda.is_available():
        assert any("paging" in n and "needs CUDA" in n for n in result.notes)


def test_classification_head_is_trained_fully(tmp_path):
    result = lorakit.train("classification", output_dir=tmp_path, save_strategy="no", **FAST)
    head = result.model.base_model.model.score
    trainable_head = sum(p.numel() for n, p in result.model.named_parameters() if "score" in n and p.requires_grad)
    assert trainable_head == head.modules_to_save["default"].weight.numel()
    lora_names = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in result.model.named_parameters() if "lora_A" in n}
    assert lora_names == {"q_proj", "v_proj"}


def test_sft_then_dpo(tmp_path):
    result = lorakit.train("dpo", output_dir=tmp_path, max_steps=2, n_train=16, n_eval=4, logging_steps=1,
                           gradient_checkpointing=False, save_strategy="no")
    assert any("rewards/margins" in h for h in result.log_history)
    assert any(n.startswith("SFT stage") for n in result.notes)
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert (tmp_path / "sft" / "adapter" / "adapter_config.json").exists()


def test_dpo_stage_evaluates_at_the_training_batch_size(tmp_path):
    """The SFT stage evaluates 16 rows at a time; the DPO stage (policy and reference over both answers of each pair)
    uses the training batch, which kept SmolLM2's DPO run in chapter 6 under 2 GB."""
    from transformers import TrainerCallback

    seen = []

    class Record(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.append((type(args).__name__, args.per_device_eval_batch_size))

    lorakit.train("dpo", output_dir=tmp_path, max_steps=1, n_train=8, n_eval=2, per_device_train_batch_size=2,
                  gradient_checkpointing=False, save_strategy="no", callbacks=[Record()], progress=False)
    assert seen == [("TrainingArguments", 16), ("DPOConfig", 2)]


@pytest.mark.slow
def test_lora_visibly_improves_eval_loss_and_accuracy(tmp_path):
    """The instruction data is learnable: at the guide's LR the answer loss falls far below the base model's; at the
    LR the tiny model prefers (1e-3, chapter 3's sweep) exact-match accuracy rises well above the base's 0%."""
    from lorakit.data.datasets import load_dataset
    from lorakit.evaluation import exact_match

    model, tokenizer = lorakit.load_base()
    data = load_dataset("instruction", tokenizer, n_train=1600, n_eval=64)
    assert exact_match(model, tokenizer, data.raw_eval) == 0.0
    runs = {lr: lorakit.train("quickstart", model=lorakit.load_base()[0], tokenizer=tokenizer, data=data,
                              learning_rate=lr, max_steps=200, gradient_checkpointing=False, save_strategy="no",
                              output_dir=tmp_path / str(lr)) for lr in (2e-4, 1e-3)}
    first_eval = [h["eval_loss"] for h in runs[2e-4].log_history if "eval_loss" in h]
    base_loss = lorakit.train("quickstart", model=model, tokenizer=tokenizer, data=data, learning_rate=1e-12,
                              max_steps=1, save_strategy="no", output_dir=tmp_path / "base").final_eval_loss
    assert first_eval[-1] < 0.5 * base_loss
    assert exact_match(runs[1e-3].model, tokenizer, data.raw_eval) >= 0.3


def test_unknown_target_module_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown module name\(s\) \['qkv'\]; valid names: \[.*'q_proj'"):
        lorakit.train("quickstart", output_dir=tmp_path, target_modules=["qkv"], **FAST)


def test_empty_dataset_is_a_clear_error(tmp_path):
    from lorakit.data.datasets import load_dataset

    model, tokenizer = lorakit.load_base()
    data = load_dataset("instruction", tokenizer, n_train=4, n_eval=2)
    data.train = data.train.select([])
    with pytest.raises(ValueError, match="data.train is empty"):
        lorakit.train("quickstart", model=model, tokenizer=tokenizer, data=data, output_dir=tmp_path)


def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="is not writable"):
        lorakit.train("quickstart", output_dir=blocker / "run", **FAST)


def test_sft_then_dpo_resumes_each_stage_from_its_own_checkpoint(tmp_path, monkeypatch):
    kw = dict(output_dir=tmp_path, max_steps=2, n_train=16, n_eval=4, logging_steps=1, gradient_checkpointing=False,
              save_strategy="epoch")
    first = lorakit.train("dpo", **kw)
    notes = []
    monkeypatch.setattr("lorakit.training.checkpoints.announce", notes.append)
    again = lorakit.train("dpo", resume_from_checkpoint=True, **kw)
    out = "\n".join(notes)
    assert f"resuming from {tmp_path / 'sft' / 'checkpoint-2'}" in out
    assert f"resuming from {tmp_path / 'dpo' / 'checkpoint-2'}" in out
    assert again.train_losses[-1][0] == first.train_losses[-1][0] == 2
    with pytest.raises(ValueError, match="must be None or True for task='dpo'"):
        lorakit.train("dpo", resume_from_checkpoint=str(tmp_path / "dpo" / "checkpoint-2"), **kw)


def test_training_needs_no_ipython(tmp_path):
    """A plain Python without IPython (a lent GPU box, a script) trains, progress on or off: lorakit never imports
    transformers' notebook progress bar, which needs IPython."""
    script = f"""
import sys
sys.modules["IPython"] = None  # `import IPython` now fails, as where it is not installed
import lorakit
for progress in (False, True):
    result = lorakit.train("quickstart", max_steps=1, n_train=8, n_eval=4, progress=progress,
                           output_dir={str(tmp_path)!r} + f"/{{progress}}")
    assert result.train_losses
print("trained")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("trained"), done.stderr[-2000:]
