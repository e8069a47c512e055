"""benchmarks/throughput.py: the warm-up steps are left out of the timing, every variant counts the real tokens it
trained on, repeats report every run and their median, the ratios are against the dynamic-padding plain script, and
MFU uses the peak FLOP/s looked up from the device's name."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import load_benchmark

FAKE_PEAK = 1e12  # FLOP/s given to any device (the CPU has none in the table), so that the run computes an MFU


throughput = load_benchmark("throughput")


@pytest.fixture(scope="module")
def results():
    """plain and lorakit, two rounds in this process, on the built-in model: 16 rows in batches of 4 (4 steps)."""
    args = throughput.parser().parse_args(["--n-train", "16", "--n-eval", "8", "--batch", "4", "--variants",
                                           "plain,lorakit", "--repeats", "2", "--warmup-steps", "2", "--in-process"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(throughput, "peak_flops", lambda name: FAKE_PEAK)
            return throughput.run_all(args)
    finally:
        torch.set_num_threads(threads)


def test_the_warm_up_steps_are_not_timed(results):
    for report in results["variants"].values():
        assert report["optimizer_steps"] == 4 and report["warmup_steps"] == 2 and report["timed_steps"] == 2
        assert 0 < report["timed_real_tokens"] < report["real_tokens"]
        assert 0 < report["timed_processed_tokens"] < report["processed_tokens"]
        for run in report["runs"]:
            assert 0 < run["seconds"] < run["total_seconds"]
            assert run["tokens_per_s"] == pytest.approx(report["timed_real_tokens"] / run["seconds"])
            assert run["total_tokens_per_s"] == pytest.approx(report["real_tokens"] / run["total_seconds"])


def test_every_variant_counts_the_real_tokens_it_trained_on(results):
    """Both train once on the same rows, so both saw every row's tokens; plain's batches also hold padding."""
    plain, lorakit = results["variants"]["plain"], results["variants"]["lorakit"]
    assert plain["real_tokens"] == lorakit["real_tokens"] == plain["dataset_tokens"] == lorakit["dataset_tokens"]
    assert plain["processed_tokens"] > plain["real_tokens"]
    assert lorakit["processed_tokens"] == lorakit["real_tokens"]  # padding-free


def test_repeats_report_every_run_and_their_median(results):
    for report in results["variants"].values():
        assert report["repeats"] == len(report["runs"]) == 2
        for key in ("tokens_per_s", "seconds", "total_seconds", "peak_bytes", "eval_loss"):
            assert report[key] == statistics.median(run[key] for run in report["runs"])


def test_mfu_is_4_n_tokens_over_the_device_peak(results):
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    for report in results["variants"].values():
        assert report["device_name"] == device_name and report["peak_flops"] == FAKE_PEAK
        for run in report["runs"]:
            assert run["mfu"] == pytest.approx(4 * report["params"] * run["tokens_per_s"] / FAKE_PEAK)


def test_the_ratios_are_of_the_medians_against_dynamic_padding_plain(results):
    ratio = results["ratios"]["lorakit_over_plain"]
    plain, lorakit = results["variants"]["plain"], results["variants"]["lorakit"]
    assert ratio["baseline"] == "plain"
    assert ratio["tokens_per_s_ratio"] == pytest.approx(lorakit["tokens_per_s"] / plain["tokens_per_s"])
    assert ratio["eval_loss_difference"] == pytest.approx(lorakit["eval_loss"] - plain["eval_loss"])


def test_compare_takes_plain_as_the_baseline_and_the_fastest_trl_as_trl_best():
    def report(variant, tokens_per_s):
        return dict(variant=variant, tokens_per_s=tokens_per_s, peak_bytes=100, eval_loss=1.0)

    reports = {name: report(name, speed) for name, speed in [
        ("plain", 200.0), ("plain-max-length", 50.0), ("lorakit", 400.0), ("trl", 100.0), ("trl-packing", 500.0)]}
    ratios = throughput.compare(reports)
    assert {label: (r["baseline"], r["tokens_per_s_ratio"]) for label, r in ratios.items()} == {
        "lorakit_over_plain": ("plain", 2.0), "lorakit_over_trl_default": ("trl", 4.0),
        "lorakit_over_trl_best": ("trl-packing", 0.8)}


class Forward(torch.nn.Module):
    def forward(self, input_ids, attention_mask=None):
        return input_ids


def test_step_clock_clips_the_warm_up_and_counts_only_real_training_tokens():
    """Three steps with a warm-up of 5 asked: two are warm-up, one is timed. Padding (attention mask 0) is not a real
    token; a padding-free batch (no mask) is all real; forward passes in eval mode are not counted."""
    clock, model, state = throughput.StepClock(5), Forward(), SimpleNamespace(max_steps=3, global_step=0)
    batches = [dict(input_ids=torch.ones(2, 4), attention_mask=torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])),
               dict(input_ids=torch.ones(1, 6)),
               dict(input_ids=torch.ones(2, 3), attention_mask=torch.tensor([[1, 1, 1], [1, 0, 0]]))]
    clock.on_train_begin(None, state, None, model=model)
    for batch in batches:
        model(**batch)
        state.global_step += 1
        clock.on_step_end(None, state, None)
    clock.on_train_end(None, state, None)
    model.eval()(**batches[0])
    measured = clock.measurements()
    assert (measured["optimizer_steps"], measured["warmup_steps"], measured["timed_steps"]) == (3, 2, 1)
    assert (measured["real_tokens"], measured["processed_tokens"]) == (5 + 6 + 4, 8 + 6 + 6)
    assert (measured["timed_real_tokens"], measured["timed_processed_tokens"]) == (4, 6)
    assert 0 < measured["seconds"] < measured["total_seconds"]


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA A100 80GB PCIe", 312e12),
    ("NVIDIA A10G", 70e12), ("NVIDIA A10", 125e12), ("NVIDIA L4", 121e12), ("NVIDIA L40S", 362e12),
    ("Tesla T4", 65e12), ("Tesla V100-SXM2-16GB", 125e12),
    ("NVIDIA GeForce RTX 3090", None), ("cpu", None)])
def test_peak_flops_is_looked_up_from_the_device_name(name, peak):
    assert throughput.peak_flops(name) == peak


def test_run_all_builds_one_random_model_or_uses_the_one_it_is_given(monkeypatch, tmp_path):
    built, used = [], []
    monkeypatch.setattr(throughput, "random_llama", lambda out, layers, hidden: built.append(out) or str(out))
    monkeypatch.setattr(throughput, "run_once", lambda args, variant, path: used.append((variant, path)) or {})
    monkeypatch.setattr(throughput, "summarize", lambda runs: dict(runs=len(runs)))
    monkeypatch.setattr(throughput, "compare", lambda reports: {})
    argv = ["--model", "random-llama", "--variants", "plain,lorakit", "--repeats", "2"]
    throughput.run_all(throughput.parser().parse_args(argv))
    assert len(built) == 1 and {path for _, path in used} == {str(built[0])} and len(used) == 4
    used.clear()
    throughput.run_all(throughput.parser().parse_args([*argv, "--model-path", str(tmp_path)]))
    assert len(built) == 1 and {path for _, path in used} == {str(tmp_path)}
