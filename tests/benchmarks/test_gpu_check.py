"""benchmarks/gpu_check.py: its CPU dry run exercises every section on tiny shapes and writes the GPU run's JSON, within
its deadline; the runner saves every point, records a failed section and goes on, and stops at the deadline."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, load_benchmark

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def load_gpu_check():
    return load_benchmark("gpu_check")


def test_slowdown_compares_matching_points():
    gpu_check = load_gpu_check()
    seconds = {("none", False): 1.0, ("none", True): 1.25, ("nf4", False): 1.1, ("nf4", True): 1.5}
    points = [dict(shape="s", quantization=q, checkpointing=c, seq=64, step_seconds=t, kbit_prepared=False)
              for (q, c), t in seconds.items()]
    prepared = dict(shape="s", quantization="nf4", checkpointing=True, seq=64, step_seconds=9.0, kbit_prepared=True)
    result = gpu_check.slowdown_section(dict(points=[*points, prepared]))  # like for like: the prepared one is left out
    qlora = {p["checkpointing"]: p["slowdown_pct"] for p in result["qlora_vs_lora"]["points"]}
    ckpt = {p["quantization"]: p["slowdown_pct"] for p in result["checkpointing_on_vs_off"]["points"]}
    assert qlora == pytest.approx({False: 10.0, True: 20.0})
    assert ckpt == pytest.approx({"none": 25.0, "nf4": 100 * (1.5 / 1.1 - 1)})
    assert result["qlora_vs_lora"]["guide"] == "~10% slower training"
    assert result["checkpointing_on_vs_off"]["guide"] == "~20% slower"


def test_runner_records_each_point_cuts_a_section_at_the_deadline_and_skips_the_rest(tmp_path):
    """A section's points are in the JSON as soon as they are recorded; an error is recorded and the next section
    runs; the deadline interrupts the running section (keeping its points) and marks the rest not started."""
    gpu_check = load_gpu_check()
    out = tmp_path / "gpu_check.json"
    runner = gpu_check.Runner(out, 1.5, dict(device="cpu"))

    def failing(record):
        record("points", 1)
        raise ValueError("broken section")

    def slow(record):
        for i in range(100):
            record("points", i)
            assert json.loads(out.read_text())["slow"]["points"] == list(range(i + 1))  # saved, as a kill would find it
            time.sleep(0.1)
        return dict(finished=True)

    start = time.monotonic()
    runner.section("failing", failing)
    runner.section("slow", slow)
    runner.section("after", lambda record: dict(ran=True))
    assert time.monotonic() - start < 3
    results = json.loads(out.read_text())
    assert results["failing"]["status"] == "error" and "ValueError: broken section" in results["failing"]["message"]
    assert results["failing"]["points"] == [1]
    assert results["slow"]["status"] == "deadline" and "finished" not in results["slow"]
    assert 5 <= len(results["slow"]["points"]) < 100
    assert results["after"] == dict(status="deadline", message="not started: the run's deadline had passed",
                                    section_seconds=results["after"]["section_seconds"])


def test_a_deadline_is_not_taken_for_a_failed_throughput_variant(monkeypatch):
    gpu_check = load_gpu_check()
    import throughput

    def too_late(args):
        raise gpu_check.DeadlineExceeded("deadline")

    monkeypatch.setattr(throughput, "run_variant", too_late)
    with pytest.raises(gpu_check.DeadlineExceeded):
        gpu_check.throughput_section(gpu_check.TINY_SCALE, lambda *args, **kwargs: None)


def test_preflight_checks_versions_floors_imports_and_an_nf4_round_trip_here():
    gpu_check = load_gpu_check()
    result = gpu_check.preflight_section("cpu")
    assert result["ready"] is True and result["problems"] == [] and result["below_floors"] == {}
    assert result["activation_checkpointing_enable"] is True
    assert set(result["imports"]) == set(gpu_check.IMPORTS) and set(result["imports"].values()) == {"ok"}
    nf4 = result["nf4_round_trip"]
    assert nf4["ok"] and nf4["device"] == "cpu" and nf4["bytes_per_weight"] == 0.5
    assert 0.01 < nf4["relative_mean_abs_error"] < gpu_check.NF4_MAX_RELATIVE_ERROR
    assert result["packages"]["transformers"][0].isdigit()


def test_preflight_names_what_an_old_box_lacks(monkeypatch):
    """A lent machine has had transformers 5.17: below lorakit's floor, without activation_checkpointing_enable."""
    import transformers

    gpu_check = load_gpu_check()
    monkeypatch.setattr(gpu_check, "versions", lambda: {"transformers": "5.17.0", "torch": "2.11.0"})
    monkeypatch.delattr(transformers.PreTrainedModel, "activation_checkpointing_enable")
    result = gpu_check.preflight_section("cpu")
    assert result["ready"] is False and result["below_floors"] == {"transformers": "5.17.0 not >=5.23"}
    assert result["activation_checkpointing_enable"] is False and len(result["problems"]) == 2


def test_cuda_run_without_a_gpu_is_refused(capsys):
    gpu_check = load_gpu_check()
    if gpu_check.torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cuda"])
    assert "no CUDA GPU here" in capsys.readouterr().err


def test_dry_run_ends_within_its_deadline_and_keeps_what_it_measured(tmp_path):
    """The fast tier's dry run (#25 asks for it there) of the sections up to slowdown (throughput has its own tests,
    and the slow tier fills every section): given 40 s, the script stops within them (after its imports), with the
    preflight done and every section either finished or marked at the deadline, the ones after it not started; the
    course path (chapter 6's three runs) has run, its DPO starting at the SFT model."""
    gpu_check = load_gpu_check()
    out, deadline, sections = tmp_path / "gpu_check.json", 40, ["preflight", "course", "memory", "slowdown"]
    start = time.monotonic()
    subprocess.run([sys.executable, str(SCRIPT), "--dry-run", str(out), "--deadline-s", str(deadline),
                    "--only", *sections], check=True, capture_output=True, text=True, timeout=deadline + 120,
                   cwd=tmp_path)
    wall = time.monotonic() - start
    results = json.loads(out.read_text())
    assert results["meta"]["deadline_s"] == deadline and results["meta"]["total_seconds"] <= deadline + 10
    assert wall <= results["meta"]["total_seconds"] + 60  # the rest is starting Python and importing torch
    assert results["preflight"]["status"] == "ok" and results["preflight"]["ready"] is True
    assert [name for name in gpu_check.SECTIONS if name in results] == sections
    statuses = [results[name]["status"] for name in sections]
    assert set(statuses) <= {"ok", "deadline"}, statuses
    if "deadline" in statuses:
        cut = statuses.index("deadline")
        assert all(status == "deadline" for status in statuses[cut:])
        assert all(results[name]["message"].startswith("not started") for name in sections[cut + 1:])
    course = results["course"]
    assert course["status"] == "ok"
    assert [run["task"] for run in course["runs"]] == ["instruction", "dpo", "classification"]
    steps = gpu_check.TINY_SCALE.course_steps
    assert [run["steps"] for run in course["runs"]] == [steps, max(2, steps // 2), steps]
    assert all(run["losses_finite"] for run in course["runs"])
    dpo = course["runs"][1]
    assert dpo["starts_at_sft"] and abs(dpo["first_loss"] - math.log(2)) < 1e-3
    assert results["memory"].get("points"), "the memory section had time for at least one point"


@pytest.mark.slow
def test_dry_run_fills_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    subprocess.run([sys.executable, str(SCRIPT), "--dry-run", str(out), "--deadline-s", "900",
                    "--only", "preflight", "memory", "slowdown", "throughput"],
                   check=True, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    results = json.loads(out.read_text())
    gpu_check = load_gpu_check()
    assert results["meta"]["device"] == "cpu" and results["meta"]["tiny"] is True
    assert results["preflight"]["packages"]["torch"][0].isdigit() and results["preflight"]["ready"] is True

    memory = results["memory"]
    assert memory["status"] == "ok"
    scale = gpu_check.TINY_SCALE
    keys = [(p["shape"], p["quantization"], p["kbit_prepared"], p["checkpointing"], p["seq"]) for p in memory["points"]]
    grid = set(itertools.product([scale.grid_shape.name], ["none", "nf4"], [False], [False, True], scale.seqs))
    grid |= set(itertools.product([scale.grid_shape.name], ["nf4"], [True], [False, True], scale.seqs))
    claim_points = {(scale.claim_shape.name, "nf4", prepared, True, scale.claim_seq) for prepared in (False, True)}
    assert len(keys) == len(set(keys)) and set(keys) == grid | claim_points
    for point in memory["points"]:
        assert point["estimate_bytes"] > 0 and point["measured_bytes"] > 0 and point["step_seconds"] > 0
        assert math.isfinite(point["error_pct"]) and point["within_target"] is None  # no target on CPU
    estimates = {key: p["estimate_bytes"] for key, p in zip(keys, memory["points"])}
    for checkpointing, seq in itertools.product([False, True], scale.seqs):
        plain, nf4, prepared = (estimates[(scale.grid_shape.name, q, k, checkpointing, seq)]
                                for q, k in (("none", False), ("nf4", False), ("nf4", True)))
        assert nf4 < plain and nf4 < prepared  # the up-cast embeddings and norms cost more than NF4 alone
    assert memory["guide_7b"]["guide"] == "~4.5 GB" and len(memory["guide_7b"]["points"]) == 2

    slowdown = results["slowdown"]
    assert slowdown["status"] == "ok"
    for claim in ("qlora_vs_lora", "checkpointing_on_vs_off"):
        assert len(slowdown[claim]["points"]) == 4  # per matching pair of the grid's unprepared points
        assert math.isfinite(slowdown[claim]["median_pct"])

    throughput = results["throughput"]
    assert throughput["status"] == "ok"
    assert set(throughput["variants"]) == set(gpu_check.TINY_SCALE.variants)
    for report in throughput["variants"].values():
        assert report["tokens_per_s"] > 0 and 0 < report["eval_loss"] < 20 and report["optimizer_steps"] >= 1
    assert set(throughput["ratios"]) == {"lorakit_over_plain", "lorakit_over_trl_default", "lorakit_over_trl_best"}
    assert throughput["ratios"]["lorakit_over_trl_best"]["baseline"].startswith("trl")

    assert "chapter6" not in results  # not asked for


def test_chapter_section_builds_and_executes_a_chapter_at_the_scale(monkeypatch):
    """The chapter section on the fixture chapter (chapter 6 itself runs under nbval at CPU scale)."""
    gpu_check = load_gpu_check()
    monkeypatch.delenv(gpu_check.SCALE_SWITCH, raising=False)
    result = gpu_check.chapter_section(gpu_check.TINY_SCALE, 120, REPO / "tests" / "fixtures" / "demo_chapter.py")
    assert result["chapter"] == "demo_chapter" and result["scale"] == "cpu"
    assert result["code_cells_executed"] >= 2 and result["seconds"] > 0


def test_chapter_section_skips_a_gpu_scale_whose_hub_model_is_out_of_reach(monkeypatch):
    gpu_check = load_gpu_check()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *args, **kwargs: None)  # not cached
    result = gpu_check.chapter_section(gpu_check.GPU_SCALE, 60)
    assert result["status"] == "skipped" and "HuggingFaceTB/SmolLM2-1.7B-Instruct" in result["message"]
    assert gpu_check.real_model_missing("cpu") is None  # the offline 135M needs no hub
