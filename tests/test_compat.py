import dataclasses

import pytest
from transformers import TrainingArguments

from lorakit import compat
from lorakit.hardware import choose_precision, Hardware

FIELDS = {f.name for f in dataclasses.fields(TrainingArguments)}


def test_warmup_ratio_becomes_what_the_installed_transformers_understands(tmp_path):
    args = compat.training_arguments(output_dir=str(tmp_path), warmup_ratio=0.03, max_steps=100, report_to=[])
    if "warmup_ratio" in FIELDS:
        assert args.warmup_ratio == 0.03
    else:
        assert args.warmup_steps == 0.03
    assert args.get_warmup_steps(100) == 3


def test_old_names_are_translated(tmp_path):
    kw = compat.translate_training_kwargs(output_dir=str(tmp_path), evaluation_strategy="epoch",
                                          gradient_checkpointing=True, use_cpu=True)
    assert kw.get("eval_strategy", kw.get("evaluation_strategy")) == "epoch"
    args = compat.training_arguments(**kw, report_to=[])
    assert compat.gradient_checkpointing_enabled(args)


def test_unknown_argument_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown training argument"):
        compat.training_arguments(output_dir=str(tmp_path), learning_rat=1e-4)


def test_trainer_tokenizer_keyword():
    from transformers import Trainer

    assert list(compat.trainer_kwargs(Trainer, object())) == ["processing_class"]
    assert compat.trainer_kwargs(Trainer, None) == {}


@pytest.mark.parametrize("hw,requested,expected", [
    (Hardware("cuda", "H100", True, True, None, True), "bf16", "bf16"),
    (Hardware("cuda", "Tesla T4", False, True, None, True), "bf16", "fp16"),
    (Hardware("cuda", "Tesla T4", False, True, None, True), "auto", "fp16"),
    (Hardware("cpu", "CPU", False, False, None, True), "bf16", "fp32"),
    (Hardware("cpu", "CPU", False, False, None, True), "fp16", "fp32"),
    (Hardware("cpu", "CPU", False, False, None, True), "fp32", "fp32"),
])
def test_precision_follows_the_hardware(hw, requested, expected, caplog):
    assert choose_precision(requested, hw) == expected


def test_bad_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("int4")


def test_small_models_train_on_one_cpu_thread_and_the_count_is_restored():
    import torch

    from lorakit.hardware import cpu_threads_for

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small, large = torch.nn.Linear(256, 256), torch.nn.Embedding(60_000, 1_000)  # 66k and 60M parameters
        with cpu_threads_for(small, "cpu") as used:
            assert used == torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with cpu_threads_for(large, "cpu") as used:
            assert used == 2
        with cpu_threads_for(small, "cuda") as used:
            assert used == 2
    finally:
        torch.set_num_threads(before)
