"""The course's scale switch: LORAKIT_SCALE / an argument, auto-detection, and one clear error for GPU without CUDA."""

import pytest
import torch

from lorakit.lessons.scales import GPU_REAL_MODEL, SCALE_ENV, course_scale


def test_cpu_scale_uses_the_tiny_model_for_quick_runs_and_the_offline_135m_for_real_lessons():
    scale = course_scale("cpu")
    assert (scale.model_for("quick"), scale.model_for("real")) == ("tiny", "smollm2-135m")
    assert scale.steps(30) == 30 and scale.rows(64) == 64
    assert "scale cpu" in scale.describe() and "'smollm2-135m'" in scale.describe()


def test_auto_without_cuda_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert course_scale().name == "cpu"
    monkeypatch.setenv(SCALE_ENV, "auto")
    assert course_scale().name == "cpu"


def test_auto_with_cuda_is_gpu_online_and_cpu_offline(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # read from the environment at import
    gpu = course_scale("auto")
    assert gpu.name == "gpu" and gpu.model_for("real") == GPU_REAL_MODEL and gpu.real_quantization == "nf4"
    assert gpu.model_for("quick") == "tiny"  # chapters 1-5's sweeps and pitfalls are the built-in model's
    assert gpu.steps(30) > 30 and gpu.rows(64) > 64
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert course_scale("auto").name == "cpu"  # the GPU model comes from the hub: offline stays on the 135M


def test_gpu_scale_without_cuda_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(SCALE_ENV, "gpu")
    with pytest.raises(ValueError, match="scale 'gpu' needs a CUDA GPU.*LORAKIT_SCALE=cpu"):
        course_scale()


@pytest.mark.parametrize("name", ["GPU", "tpu", ""])
def test_unknown_scales_and_roles_name_the_allowed_values(name):
    with pytest.raises(ValueError, match=r"must be one of \['cpu', 'gpu', 'auto'\]"):
        course_scale(name)
    with pytest.raises(ValueError, match=r"role must be one of \['quick', 'real'\]"):
        course_scale("cpu").model_for("big")
