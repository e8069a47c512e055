"""lorakit.memory.measurement on CPU with tiny shapes: the sharded random checkpoint, and a measured training point."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from safetensors import safe_open

import lorakit
from lorakit.memory import measurement as memory_measure

TINY = lorakit.ModelShape(1024, 256, 704, 2, 4, 2, name="tiny-a")  # gpu_check's TINY_SCALE
TIED = lorakit.ModelShape(1024, 256, 704, 2, 4, 2, tie_word_embeddings=True, name="tiny-tied")
SHARD_BYTES = 1 << 20


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: steadier and faster on a small shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return memory_measure.random_checkpoint(TINY, tmp_path_factory.mktemp("tiny"), shard_bytes=SHARD_BYTES)


def shard_tensor_bytes(folder) -> dict[str, int]:
    sizes = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as shard:
            sizes[path.name] = sum(shard.get_tensor(k).nbytes for k in shard.keys())
    return sizes


def test_random_checkpoint_writes_bounded_shards_and_an_index(checkpoint):
    sizes = shard_tensor_bytes(checkpoint)
    index = json.loads((checkpoint / memory_measure.INDEX_FILE).read_text())
    assert len(sizes) > 1 and max(sizes.values()) <= SHARD_BYTES
    assert set(index["weight_map"].values()) == set(sizes)
    assert index["metadata"]["total_size"] == sum(sizes.values()) == 2 * lorakit.count_base_params(TINY)
    assert (checkpoint / "config.json").is_file()


def test_the_checkpoint_loads_with_every_parameter_and_the_init(checkpoint):
    model = memory_measure.load_checkpoint(checkpoint, None, "cpu")
    assert sum(p.numel() for p in model.parameters()) == lorakit.count_base_params(TINY)
    assert model.dtype == torch.bfloat16
    assert torch.all(model.model.norm.weight == 1)
    assert model.lm_head.weight.float().std().item() == pytest.approx(memory_measure.INIT_STD, rel=0.05)


def test_tied_embeddings_follow_the_config(tmp_path):
    folder = memory_measure.random_checkpoint(TIED, tmp_path)
    index = json.loads((folder / memory_measure.INDEX_FILE).read_text())
    assert "lm_head.weight" not in index["weight_map"]
    model = memory_measure.load_checkpoint(folder, None, "cpu")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == lorakit.count_base_params(TIED)


def test_same_seed_same_weights(tmp_path):
    first = memory_measure.random_checkpoint(TINY, tmp_path / "a", seed=1, shard_bytes=SHARD_BYTES)
    second = memory_measure.random_checkpoint(TINY, tmp_path / "b", seed=1, shard_bytes=SHARD_BYTES)
    assert [p.read_bytes() for p in sorted(first.glob("*.safetensors"))] == \
        [p.read_bytes() for p in sorted(second.glob("*.safetensors"))]


@pytest.mark.parametrize("quantization", [None, "nf4"])
def test_measure_on_cpu_reports_a_peak_and_the_estimate(quantization, checkpoint):
    point = memory_measure.measure(TINY, quantization, checkpointing=True, seq=32, steps=2, device="cpu",
                                   folder=checkpoint)
    assert (point.shape, point.quantization, point.checkpointing, point.seq, point.batch) == \
        ("tiny-a", quantization or "none", True, 32, 1)
    assert point.measured_bytes > 0 and point.estimate_bytes > 0 and point.step_seconds > 0
    assert math.isfinite(point.error_pct) and "RSS" in point.measured_kind
    expected = lorakit.estimate(TINY, precision="bf16", quantization=quantization, optimizer="adamw",
                                gradient_checkpointing=True, batch=1, seq_len=32, r=16).total
    assert point.estimate_bytes == expected


def test_measure_without_a_folder_cleans_up_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(memory_measure.tempfile, "tempdir", str(tmp_path))
    point = memory_measure.measure(TINY, None, checkpointing=False, seq=16, steps=1, device="cpu")
    assert point.measured_bytes > 0 and not point.checkpointing
    assert list(tmp_path.iterdir()) == []


def test_load_checkpoint_refuses_other_quantizations(checkpoint):
    with pytest.raises(ValueError, match="nf4"):
        memory_measure.load_checkpoint(checkpoint, "int8", "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("quantization", [None, "nf4"])
def test_on_a_gpu_checkpointing_lowers_the_measured_peak_and_the_estimate_is_near(quantization, tmp_path):
    """On CUDA (allocator peaks, not RSS): the same point with and without gradient checkpointing, at a length where
    activations dominate; the estimate within benchmarks/gpu_check.py's target (docs/gpu.md)."""
    from benchmarks.gpu_check import TARGET_ERROR_PCT

    if quantization and importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed (the GPU run carries it: benchmarks/gpu_run.sh)")
    folder = memory_measure.random_checkpoint(TINY, tmp_path, shard_bytes=SHARD_BYTES)
    points = {gc: memory_measure.measure(TINY, quantization, checkpointing=gc, seq=1024, batch=4, steps=3, r=16,
                                         folder=folder) for gc in (False, True)}
    assert points[True].measured_bytes < points[False].measured_bytes
    assert all(abs(point.error_pct) <= TARGET_ERROR_PCT for point in points.values()), points
