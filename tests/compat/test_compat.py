import dataclasses
import types

import pytest
import torch
from bitsandbytes.functional import has_avx512bf16

from lorakit.compat import versions as compat
from lorakit.models.hardware import Hardware, choose_precision


@dataclasses.dataclass
class Transformers5Args:
    """The same fields as transformers 5 names them: no warmup_ratio, activation_checkpointing beside the alias."""
    output_dir: str = ""
    warmup_steps: float = 0
    eval_strategy: str = "no"
    gradient_checkpointing: bool = False
    activation_checkpointing: bool = False
    activation_checkpointing_kwargs: dict | None = None


GUIDE_KWARGS = dict(output_dir="out", warmup_ratio=0.03, evaluation_strategy="epoch", gradient_checkpointing=True,
                    gradient_checkpointing_kwargs={"use_reentrant": False})


def test_guide_names_translated_for_transformers_5():
    assert compat.translate_training_kwargs(Transformers5Args, **GUIDE_KWARGS) == dict(
        output_dir="out", warmup_steps=0.03, eval_strategy="epoch", activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": False})
    assert "warmup_steps" not in compat.translate_training_kwargs(Transformers5Args, warmup_ratio=0.0)


def test_the_installed_trainer_reads_the_translated_warmup_and_checkpointing(tmp_path):
    args = compat.training_arguments(output_dir=str(tmp_path), warmup_ratio=0.03, max_steps=100, report_to=[],
                                     gradient_checkpointing=True, use_cpu=True)
    assert args.get_warmup_steps(100) == 3
    assert args.activation_checkpointing is True


@pytest.mark.parametrize("probe,expected", [
    (types.SimpleNamespace(OutOfMemoryError=MemoryError, cuda=types.SimpleNamespace(OutOfMemoryError=KeyError)),
     MemoryError),                                                          # torch >= 2.5
    (types.SimpleNamespace(cuda=types.SimpleNamespace(OutOfMemoryError=KeyError)), KeyError),   # torch 2.4
])
def test_out_of_memory_alias_follows_the_torch_probe(probe, expected):
    assert compat.out_of_memory_error(probe) is expected


def test_get_peft_model_adds_the_adapter_without_the_deprecation_warning(recwarn):
    from peft import LoraConfig

    import lorakit

    model, _ = lorakit.load_base("tiny")
    peft_model = compat.get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"]))
    assert peft_model.get_nb_trainable_parameters()[0] > 0
    assert not [w for w in recwarn if "is_gradient_checkpointing" in str(w.message)]


def test_unknown_argument_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown training argument"):
        compat.training_arguments(output_dir=str(tmp_path), learning_rat=1e-4)


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
    from lorakit.models import hardware

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(hardware, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(hardware, "CGROUP_V1_QUOTA", tmp_path / "cpu/cpu.cfs_quota_us")
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 1})
    assert hardware.usable_cpus() == expected


def test_training_threads_are_capped_by_the_quota_and_restored(monkeypatch):
    from lorakit.models import hardware

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


def _lora_gradients(model, batch):
    model.train()
    model.zero_grad()
    model(input_ids=batch, labels=batch, use_cache=False).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def _nf4_lora_model():
    from peft import LoraConfig

    import lorakit
    from lorakit.compat.versions import get_peft_model

    torch.manual_seed(0)
    model, _ = lorakit.load_base("tiny", quantization="nf4")
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))


def _evaluate_once(model, batch):
    model.eval()
    with torch.no_grad():
        model(input_ids=batch, use_cache=False)


def test_4bit_training_gradients_are_the_same_after_an_evaluation():
    """lorakit.load_base keeps every 4-bit layer off bitsandbytes' AVX512-BF16 repacking, so an evaluation (which
    would repack the weights into a kernel without autograd) leaves the next training step's gradients unchanged."""
    model = _nf4_lora_model()
    layers = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)
    batch = torch.randint(0, 500, (2, 32), generator=torch.Generator().manual_seed(0))
    before = _lora_gradients(model, batch)
    _evaluate_once(model, batch)
    after = _lora_gradients(model, batch)
    assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)


@pytest.mark.skipif(not has_avx512bf16(), reason="bitsandbytes repacks 4-bit weights only on CPUs with AVX512-BF16")
def test_repacked_4bit_layers_give_wrong_gradients():
    """The failure the switch prevents: with repacking on (bitsandbytes' default on such a CPU), one evaluation
    changes the next step's LoRA gradients (torch warns the packed kernel has no autograd formula), and the
    repacking fails on the built-in model's 688-wide MLP layers."""
    model = _nf4_lora_model()
    layers = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
    batch = torch.randint(0, 500, (2, 32), generator=torch.Generator().manual_seed(0))
    before = _lora_gradients(model, batch)
    def repackable(m):  # bitsandbytes' packing: output size a multiple of 32, input a multiple of its 64-block
        return m.out_features % 32 == 0 and m.in_features % 64 == 0

    for module in layers:
        module.support_avx512bf16_for_cpu = repackable(module)
    _evaluate_once(model, batch)
    with pytest.warns(UserWarning, match="autograd kernel was not registered"):
        after = _lora_gradients(model, batch)
    assert max((before[n] - after[n]).abs().max() / before[n].abs().max() for n in before) > 0.1
    odd = next(m for m in layers if not repackable(m))
    odd.support_avx512bf16_for_cpu = True
    with pytest.raises((AssertionError, RuntimeError)):
        _evaluate_once(model, batch)


@pytest.mark.parametrize("peft_leaves_config", [True, False])
def test_unloading_leaves_no_peft_config_on_the_base(peft_leaves_config):
    """peft 0.18's unload() leaves the copied peft_config on the base model, later releases delete it; after
    compat.unload_adapters neither does, so the next get_peft_model sees a clean base."""
    base = torch.nn.Linear(2, 2)

    class Adapted:
        def unload(self):
            if peft_leaves_config:
                base.peft_config = {"default": object()}
            return base

    assert compat.unload_adapters(Adapted()) is base and not hasattr(base, "peft_config")


def test_kbit_preparation_enables_non_reentrant_checkpointing_without_a_deprecation_warning(recwarn):
    import lorakit

    model, _ = lorakit.load_base("tiny", quantization="nf4")
    prepared = compat.prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    checkpointed = [m for m in prepared.modules() if getattr(m, "gradient_checkpointing", False)]
    assert checkpointed and all(m._gradient_checkpointing_func.keywords == {"use_reentrant": False} for m in checkpointed)
    assert all(not p.requires_grad for p in prepared.parameters())  # the base frozen, ready for an adapter
    # peft 0.22 deprecated the old keyword's name (older peft still calls transformers' deprecated names: not ours)
    assert not [w for w in recwarn if "gradient_checkpointing_kwargs" in str(w.message)]
