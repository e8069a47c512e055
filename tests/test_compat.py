import dataclasses

import pytest
import torch
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


@pytest.mark.parametrize("files, expected", [
    ({}, 2),                                                        # no cgroup limit: the affinity's 2 CPUs
    ({"cpu.max": "max 100000"}, 2),                                 # v2, unlimited
    ({"cpu.max": "100000 100000"}, 1),                              # v2, one CPU
    ({"cpu.max": "150000 100000"}, 1),                              # v2, 1.5 CPUs: whole threads only
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, 2),   # v1, unlimited
    ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),
])
def test_usable_cpus_follows_a_container_quota(tmp_path, monkeypatch, files, expected):
    from lorakit import hardware

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(hardware, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(hardware, "CGROUP_V1_QUOTA", tmp_path / "cpu/cpu.cfs_quota_us")
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 1})
    assert hardware.usable_cpus() == expected


def test_training_threads_are_capped_by_the_quota_and_restored(monkeypatch):
    from lorakit import hardware

    before = torch.get_num_threads()
    monkeypatch.setattr(hardware, "usable_cpus", lambda: 1)
    torch.set_num_threads(2)
    try:
        with hardware.cpu_threads_for("cpu") as used:
            assert used == torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with hardware.cpu_threads_for("cuda") as used:
            assert used == 2
    finally:
        torch.set_num_threads(before)


def test_4bit_layers_of_odd_width_stay_off_the_cpu_repacking_path():
    """bitsandbytes' AVX512-BF16 repacking fails on the tiny model's 688-wide MLP in eval mode. Forcing that path on
    (as such a CPU does) reproduces the failure on any machine; lorakit.load_base switches those layers off it."""
    import lorakit
    from lorakit.compat import cpu_repackable, keep_4bit_layers_off_cpu_repacking

    model, _ = lorakit.load_base("tiny", quantization="nf4")
    odd = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu") and not cpu_repackable(m)]
    assert odd and not any(m.support_avx512bf16_for_cpu for m in odd)
    batch = torch.tensor([[5, 6, 7, 8]])
    model.eval()
    with torch.no_grad():
        model(input_ids=batch)  # the generic kernel: fine
        for module in odd:
            module.support_avx512bf16_for_cpu = True
        with pytest.raises((AssertionError, RuntimeError)):
            model(input_ids=batch)
        assert keep_4bit_layers_off_cpu_repacking(model) == len(odd)
        model(input_ids=batch)
