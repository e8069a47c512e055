"""The GPU check: one script, about 10 minutes on one H100/H200, that measures what the course claims about GPUs.

Sections (each one's result, or its error, is saved as soon as it is done, so a run cut short keeps what it had):
  memory      lorakit.estimate vs torch.cuda.max_memory_allocated: bf16 LoRA and NF4 QLoRA × gradient checkpointing
              on/off × sequence 512/2048, on a 1.1B (TinyLlama-shaped) and a 7B (Llama-2-shaped) randomly initialised
              Llama (no downloads): lorakit.memory.measurement writes each shape's random bf16 checkpoint once, shard by
              shard, and loads it in bf16 and in NF4 (double quantisation, bf16 compute). LoRA r=16 all-linear,
              dropout 0, torch AdamW, batch 1; four optimizer steps per point, timed over the last two. Error per
              point = (estimate − measured) / measured; target |error| ≤ 10%. prepare_model_for_kbit_training is not
              applied (it up-casts norms and embeddings to fp32, which the estimate does not model).
  throughput  benchmarks/throughput.py on a ≥1B random Llama in NF4 with checkpointing (the course's QLoRA recipe):
              lorakit.train vs the plain guide-style script vs TRL's SFTTrainer (defaults, padding-free, packing);
              tokens/s, peak memory, eval loss, MFU and the lorakit / TRL ratios.
  slowdown    from the memory section's step times: QLoRA vs bf16 LoRA and checkpointing on vs off, per shape and
              sequence length, against the Training Guide's "~10% slower training" and "~20% slower".
  chapter6    course/06_recipes.py built and executed top to bottom with nbclient, LORAKIT_SCALE=gpu (the dry run's
              test executes a small fixture chapter instead: nbval already runs chapter 6 at CPU scale).

Usage:
  python benchmarks/gpu_check.py [OUT.json]            # on the GPU (default $OUT/gpu_check.json or ./gpu_check.json)
  python benchmarks/gpu_check.py --device cpu --tiny    # every code path on tiny shapes on CPU (~1-2 minutes);
                                                        # memory is the process's peak RSS there (no target)
  bash benchmarks/gpu_run.sh prepare|run                # the wheels to carry, and the command on the lent machine
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import torch  # noqa: E402

import lorakit  # noqa: E402
from lorakit.memory.measurement import add_lora, load_checkpoint, measure_loaded, random_checkpoint, release  # noqa: E402

SECTIONS = ("memory", "throughput", "slowdown", "chapter6")
TARGET_ERROR_PCT = 10.0
GUIDE_CLAIMS = {  # the Training Guide's "Technique Comparison" table, Speed Impact column, quoted exactly
    "qlora_vs_lora": "~10% slower training",
    "checkpointing_on_vs_off": "~20% slower",
}
SCALE_SWITCH = "LORAKIT_SCALE"
TINYLLAMA_1B = lorakit.ModelShape(32000, 2048, 5632, 22, 32, 4, name="1.1b")
PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "datasets", "nbclient")


@dataclass(frozen=True)
class Scale:
    """The sizes one run uses: the GPU check itself, or tiny shapes that exercise every code path on CPU."""

    shapes: tuple[Any, ...]  # lorakit.ModelShape
    seqs: tuple[int, ...]
    steps: int
    throughput_args: tuple[str, ...]
    throughput_subprocesses: bool
    chapter_scale: str
    r: int = 16
    batch: int = 1
    variants: tuple[str, ...] = ("plain", "lorakit", "trl", "trl-padding-free", "trl-packing")


GPU_SCALE = Scale(
    shapes=(TINYLLAMA_1B, lorakit.LLAMA2_7B), seqs=(512, 2048), steps=4,
    throughput_args=("--model", "random-llama", "--layers", "24", "--hidden", "2048", "--quantization", "nf4",
                     "--dataset", "code", "--n-train", "256", "--n-eval", "24", "--max-length", "384"),
    throughput_subprocesses=True, chapter_scale="gpu")
TINY_SCALE = Scale(
    shapes=(lorakit.ModelShape(1024, 256, 704, 2, 4, 2, name="tiny-a"),
            lorakit.ModelShape(2048, 384, 1024, 3, 6, 2, name="tiny-b")),
    seqs=(32, 64), steps=2,
    throughput_args=("--n-train", "16", "--n-eval", "8"),
    throughput_subprocesses=False, chapter_scale="cpu")


def scratch_folder(needed_bytes: int) -> Path:
    """A fresh folder in RAM (/dev/shm) when it has room for twice `needed_bytes` (a container's is often 64 MB),
    else in the default temporary folder on disk."""
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and shutil.disk_usage(shm).free > 2 * needed_bytes
    return Path(tempfile.mkdtemp(prefix="gpu-check-", dir=shm if roomy else None))


def memory_section(scale: Scale, device: str) -> dict[str, Any]:
    """The estimate-vs-measured grid; each shape's random checkpoint is written once, then loaded in bf16 and in
    NF4, each model serving all the points of its (shape, quantization)."""
    points = []
    for shape in scale.shapes:
        folder = scratch_folder(2 * lorakit.count_base_params(shape))
        try:
            random_checkpoint(shape, folder)
            for quantization in (None, "nf4"):
                model = add_lora(load_checkpoint(folder, quantization, device), scale.r)
                for checkpointing in (False, True):
                    for seq in scale.seqs:
                        point = measure_loaded(model, shape, quantization, checkpointing, seq, scale.batch,
                                               scale.steps, scale.r, device)
                        within = abs(point.error_pct) <= TARGET_ERROR_PCT if device == "cuda" else None
                        points.append(asdict(point) | dict(within_target=within))
                        print(json.dumps(points[-1]), flush=True)
                del model
                release(device)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    errors = [abs(p["error_pct"]) for p in points]
    return dict(points=points, target_pct=TARGET_ERROR_PCT, worst_abs_error_pct=max(errors),
                all_within_target=all(p["within_target"] for p in points) if device == "cuda" else None,
                optimizer="torch AdamW", lora=f"r={scale.r}, alpha={2 * scale.r}, all-linear, dropout 0")


def slowdown_section(memory: dict[str, Any]) -> dict[str, Any]:
    """QLoRA vs bf16 LoRA (same checkpointing) and checkpointing on vs off (same quantization), from step times."""
    times = {(p["shape"], p["quantization"], p["checkpointing"], p["seq"]): p["step_seconds"] for p in memory["points"]}
    qlora, checkpointing = [], []
    for (shape, quantization, ckpt, seq), seconds in times.items():
        if quantization == "nf4":
            qlora.append(dict(shape=shape, seq=seq, checkpointing=ckpt,
                              slowdown_pct=100 * (seconds / times[(shape, "none", ckpt, seq)] - 1)))
        if ckpt:
            checkpointing.append(dict(shape=shape, seq=seq, quantization=quantization,
                                      slowdown_pct=100 * (seconds / times[(shape, quantization, False, seq)] - 1)))
    return dict(
        qlora_vs_lora=dict(guide=GUIDE_CLAIMS["qlora_vs_lora"], points=qlora,
                           median_pct=statistics.median(p["slowdown_pct"] for p in qlora)),
        checkpointing_on_vs_off=dict(guide=GUIDE_CLAIMS["checkpointing_on_vs_off"], points=checkpointing,
                                     median_pct=statistics.median(p["slowdown_pct"] for p in checkpointing)),
        measured_as="mean optimizer-step time (forward + backward + AdamW) of the memory section's last steps")


def throughput_section(scale: Scale) -> dict[str, Any]:
    """benchmarks/throughput.py's variants: fresh processes on the GPU, in this process for the tiny CPU run."""
    import throughput

    argv = [*scale.throughput_args, "--variants", ",".join(scale.variants)]
    args = throughput.parser().parse_args(argv)
    if scale.throughput_subprocesses:
        try:
            results = throughput.run_all(args)
        except SystemExit as err:  # a failed variant exits throughput.py; here it fails this section only
            raise RuntimeError(str(err)) from None
    else:
        reports = {}
        for variant in scale.variants:
            reports[variant] = throughput.run_variant(throughput.parser().parse_args([*argv, "--variant", variant]))
        results = dict(variants=reports, ratios=throughput.compare(reports))
    return dict(command=f"python benchmarks/throughput.py {' '.join(argv)}", **results)


def real_model_missing(scale_name: str) -> str | None:
    """Why the scale's real model cannot load here (a hub model, the hub offline, not in the local cache), or None."""
    from huggingface_hub import try_to_load_from_cache

    from lorakit.lessons.scales import SCALES

    name = SCALES[scale_name].real_model
    if "/" not in name or os.environ.get("HF_HUB_OFFLINE") != "1":
        return None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return None
    return f"{name} comes from the Hugging Face hub, which is offline here, and it is not in the local cache"


def chapter_section(scale: Scale, timeout: int, source: Path = ROOT / "course" / "06_recipes.py") -> dict[str, Any]:
    """Build chapter `source` (percent format) and execute it top to bottom at the requested scale; skipped when the
    scale's real model cannot be loaded here (a lent GPU machine reaches no hub)."""
    missing = real_model_missing(scale.chapter_scale)
    if missing:
        return dict(status="skipped", message=missing)
    import nbformat
    from nbclient import NotebookClient

    from lorakit.authoring.build import build

    os.environ[SCALE_SWITCH] = scale.chapter_scale
    with tempfile.TemporaryDirectory() as tmp:
        notebook_path = build(source, Path(tmp))
        notebook = nbformat.read(notebook_path, as_version=4)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(notebook_path.parent)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    return dict(chapter=source.stem, scale=scale.chapter_scale, seconds=seconds, code_cells_executed=code_cells)


def environment(device: str) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception as err:  # a missing or broken package is reported, not fatal
            versions[name] = f"unavailable: {type(err).__name__}: {err}"
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    return dict(device=device, gpu=gpu, python=platform.python_version(), packages=versions,
                started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def run_section(name: str, results: dict[str, Any], out: Path, work: Callable[[], dict[str, Any]]) -> None:
    """Run one section, record its result or its error, and save everything so far."""
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        result = work()
        result.setdefault("status", "ok")
    except Exception as err:  # one failing section must not lose the others
        result = dict(status="error", message=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()[-3000:])
    result["section_seconds"] = time.perf_counter() - start
    results[name] = result
    out.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({k: v for k, v in result.items() if k not in ("points", "variants", "traceback")}, default=str),
          flush=True)


def default_out() -> Path:
    return Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else Path("gpu_check.json")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=None, help="JSON file (default: $OUT/gpu_check.json)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (the CPU dry run)")
    parser.add_argument("--dry-run", action="store_true", help="same as --device cpu --tiny")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--budget-s", type=int, default=570, help="chapter 6 gets what is left of this")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.tiny = "cpu", True
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run on the GPU machine (benchmarks/gpu_run.sh), or use --dry-run on CPU")
    if args.device == "cpu":
        torch.set_num_threads(1)  # the dry run shares a small CPU; it checks code paths, not speed
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scale = TINY_SCALE if args.tiny else GPU_SCALE
    out = args.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, Any] = dict(meta=environment(args.device) | dict(tiny=args.tiny, guide_claims=GUIDE_CLAIMS))
    if "memory" in args.only or "slowdown" in args.only:
        run_section("memory", results, out, lambda: memory_section(scale, args.device))
    if "slowdown" in args.only:
        run_section("slowdown", results, out, lambda: slowdown_section(results["memory"]))
    if "throughput" in args.only:
        run_section("throughput", results, out, lambda: throughput_section(scale))
    if "chapter6" in args.only:
        left = max(30, int(args.budget_s - (time.perf_counter() - start)))
        run_section("chapter6", results, out, lambda: chapter_section(scale, left))
    results["meta"]["total_seconds"] = time.perf_counter() - start
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"saved {out}")
    return results


if __name__ == "__main__":
    main()
