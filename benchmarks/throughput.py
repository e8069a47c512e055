"""lorakit's recipe vs a plain Trainer + peft script and TRL's SFTTrainer: same rows, LoRA and optimizer.

Variants (each in a fresh process, so peak memory is its own):
  plain         the baseline the ratios use: a plain Trainer + peft script with dynamic padding (each batch padded to
                its own longest row by DataCollatorForSeq2Seq, labels padded with -100), the same LoraConfig and
                TrainingArguments as the recipe.
  lorakit       `lorakit.train` with the recipe as shipped: padding-free batches (a batch's rows concatenated into one
                sequence, position ids restarting per row), SDPA attention.
  padded        `lorakit.train` with `padding_free=False`: each batch padded to its own longest row (an ablation).
  trl           TRL's `SFTTrainer` with its default batching (each batch padded to its longest row; SFTConfig's own
                entropy / token-accuracy metrics on), given the same tokenised rows (input_ids + labels) and a
                `peft_config`, the recipe's optimizer, schedule, precision and checkpointing.
  trl-padding-free  the same with `padding_free=True` (rows of a batch flattened, position ids per row).
  trl-packing   the same with `packing=True` (best-fit-decreasing packing into max_length sequences, padding-free):
                fewer, fuller batches, so fewer optimizer steps than the others.
  plain-max-length  the plain script with every row padded to max_length and Trainer's default collator, as many
                guides write it (an ablation, not run unless named: it measures what that padding costs).

Every variant trains on the same tokenised rows (prompt masked to -100), in the same order, for one epoch, and is then
scored by the same function (`lorakit.evaluation.metrics.perplexity` on the same eval rows).

Timing: the first `--warmup-steps` optimizer steps (default 2; fewer when the epoch is short, so that at least one
step is timed) are excluded. A callback reads the clock (after `torch.cuda.synchronize()` on CUDA) when training
begins and at the end of the warm-up and of the last step; a forward pre-hook on the model counts the tokens of every
training forward pass. tokens/s = real tokens of the timed steps / their seconds, where a real token is an input
position that is not padding (attention mask 1, or every position of a padding-free batch, which has no mask and no
padding); prompt tokens count, as the model processes them. The report also gives the whole epoch's tokens and seconds.

`--repeats N` (default 2) runs N interleaved rounds of all variants (a busy spell hits them alike); each variant
reports every run's values and their median, and the ratios use the medians.

MFU = 4 · N · tokens/s / the device's dense 16-bit peak, the peak looked up from `torch.cuda.get_device_name()`
(`peak_flops`; a device not in its table gets MFU None, its name recorded). N counts every parameter of the model,
the frozen base and the LoRA matrices (peft counts NF4-packed weights as the weights they hold). 4 · N per token:
forward 2N plus the input-gradient half of the backward, 2N; frozen weights get no weight gradient; checkpoint
recomputation not counted. The same FLOPs per real token for every variant, so MFU ranks them as tokens/s does.

The summary prints lorakit / plain, lorakit / TRL-default and lorakit / TRL-best (the TRL variant with the highest
median tokens/s) ratios with each one's eval loss; `--json PATH` also writes every measurement.

Usage:
  python benchmarks/throughput.py                        # built-in model, instruction data, CPU or GPU
  python benchmarks/throughput.py --dataset code --n-train 256
  python benchmarks/throughput.py --model smollm2-135m --n-train 96   # the course's real LM (49,152-token vocabulary)
  python benchmarks/throughput.py --model random-llama --layers 24 --hidden 2048 --quantization nf4   # ≥1B, GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

VARIANTS = ("plain", "lorakit", "padded", "trl", "trl-padding-free", "trl-packing", "plain-max-length")
DEFAULT_VARIANTS = VARIANTS[:-1]  # the max_length ablation runs only when named
EQUAL_LOSS = 0.01  # eval losses this close count as equal: dropout masks differ between batch layouts
TRL_VARIANTS = tuple(v for v in VARIANTS if v.startswith("trl"))
PEAK_FLOPS = (  # dense 16-bit tensor-core peak, FLOP/s: bf16, or fp16 on T4 and V100 (no bf16); most specific first
    (r"H100.*NVL", 835e12),
    (r"H100.*PCIe", 756e12),
    (r"H200.*NVL", 835e12),
    (r"H100|H200", 989e12),  # H100 SXM ("NVIDIA H100 80GB HBM3"), H200, GH200
    (r"A100", 312e12),
    (r"A10G", 70e12),  # AWS's A10 variant: fewer tensor FLOPs than the A10
    (r"\bA10\b", 125e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"\bT4\b", 65e12),
    (r"V100.*PCIE", 112e12),
    (r"V100", 125e12),
)
RUN_KEYS = ("seconds", "total_seconds", "tokens_per_s", "total_tokens_per_s", "mfu", "peak_bytes", "eval_loss")


def peak_flops(device_name: str) -> float | None:
    """The device's dense bf16 (fp16 where it has no bf16) tensor-core peak in FLOP/s, or None when not in the table."""
    for pattern, peak in PEAK_FLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return peak
    return None


def random_llama(out_dir: Path, layers: int, hidden: int) -> str:
    """A randomly initialised Llama of the given depth/width with the built-in tokenizer, saved to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import lorakit

    tokenizer = lorakit.load_tokenizer("tiny")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=int(hidden * 2.6875) // 64 * 64, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 256),
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return str(out_dir)


class StepClock(TrainerCallback):
    """Counts the tokens of every training forward pass and reads the clock when training begins, at the end of the
    warm-up (the first `warmup` optimizer steps, fewer if the run is shorter, so one step is left to time) and at the
    end of the last step. Token counts stay on the device until those marks, so counting adds no synchronisation."""

    def __init__(self, warmup: int) -> None:
        self.requested_warmup, self.warmup, self.steps = warmup, 0, 0
        self.real: Any = 0  # real (non-padding) tokens so far, an int or a device tensor
        self.positions = 0  # token positions so far, padding included
        self.marks: dict[str, tuple[float, int, int]] = {}  # "begin", "warm", "end": (clock, real, positions)
        self.hook: Any = None

    def count(self, module: Any, args: tuple, kwargs: dict) -> None:
        if module.training:
            ids, mask = kwargs["input_ids"], kwargs.get("attention_mask")
            self.real = self.real + (mask.sum() if mask is not None else ids.numel())
            self.positions += ids.numel()

    def mark(self, name: str) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks[name] = (time.perf_counter(), int(self.real), self.positions)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.steps = state.max_steps
        self.warmup = max(0, min(self.requested_warmup, self.steps - 1))
        self.hook = model.register_forward_pre_hook(self.count, with_kwargs=True)
        self.mark("begin")
        if self.warmup == 0:
            self.marks["warm"] = self.marks["begin"]

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step in (self.warmup, self.steps):
            self.mark("warm" if state.global_step == self.warmup else "end")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.hook.remove()

    def measurements(self) -> dict[str, Any]:
        """The timed window's and the whole run's seconds and tokens (real, and positions with padding)."""
        (begin, _, _), (warm, warm_real, warm_positions), (end, real, positions) = (
            self.marks[name] for name in ("begin", "warm", "end"))
        return dict(optimizer_steps=self.steps, warmup_steps=self.warmup, timed_steps=self.steps - self.warmup,
                    seconds=end - warm, timed_real_tokens=real - warm_real,
                    timed_processed_tokens=positions - warm_positions,
                    total_seconds=end - begin, real_tokens=real, processed_tokens=positions)


def _base_model(recipe: Any, model_name: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, precision) loaded as a guide's script does: from_pretrained, BitsAndBytesConfig for NF4."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from lorakit.models.hardware import DTYPES, choose_precision, detect

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    precision = choose_precision(recipe.precision, detect())
    dtype = DTYPES[precision]
    quantization = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=dtype) if recipe.quantization == "nf4" else None)
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype, quantization_config=quantization,
                                                 device_map={"": 0} if torch.cuda.is_available() else None)
    return model, tokenizer, precision


def _training_kwargs(recipe: Any, out: str, precision: str) -> dict[str, Any]:
    import torch

    kwargs = recipe.training_kwargs(out, precision, use_cpu=not torch.cuda.is_available(), has_eval=False)
    kwargs.update(report_to=[], disable_tqdm=True)
    return kwargs


def _plain(variant: str, recipe: Any, data: Any, model_name: str, out: str, clock: StepClock) -> tuple[Any, Any]:
    """The plain script: Trainer + peft, each batch padded to its longest row (or, for `plain-max-length`, every row
    padded to max_length and Trainer's default collator). Returns (model, tokenizer)."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, default_data_collator

    from lorakit.compat import versions as compat

    model, tokenizer, precision = _base_model(recipe, model_name)
    if recipe.quantization is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    model = get_peft_model(model, LoraConfig(r=recipe.r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))

    def pad(row: dict) -> dict:
        extra = recipe.max_length - len(row["input_ids"])
        return {"input_ids": row["input_ids"] + [tokenizer.pad_token_id] * extra,
                "attention_mask": [1] * len(row["input_ids"]) + [0] * extra,
                "labels": row["labels"] + [-100] * extra}

    if variant == "plain-max-length":
        train, collator = Dataset.from_list([pad(row) for row in data.train]), default_data_collator
    else:
        train, collator = data.train, DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    args = compat.training_arguments(TrainingArguments, **_training_kwargs(recipe, out, precision))
    Trainer(model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[clock]).train()
    return model, tokenizer


def _trl(variant: str, recipe: Any, data: Any, model_name: str, out: str, clock: StepClock) -> tuple[Any, Any]:
    """TRL's SFTTrainer on the same tokenised rows: its default batching, padding-free, or packing.
    Returns (model, tokenizer)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from lorakit.compat import versions as compat

    model, tokenizer, precision = _base_model(recipe, model_name)
    batching = {"trl": {}, "trl-padding-free": dict(padding_free=True, max_length=None),
                "trl-packing": dict(packing=True, max_length=recipe.max_length)}[variant]
    kwargs = _training_kwargs(recipe, out, precision)
    kwargs.update(batching)
    train = Dataset.from_dict({"input_ids": data.train["input_ids"], "labels": data.train["labels"]})
    trainer = SFTTrainer(model=model, args=compat.training_arguments(SFTConfig, **kwargs), train_dataset=train,
                         processing_class=tokenizer, peft_config=recipe.lora_config(), callbacks=[clock])
    trainer.train()
    return trainer.model, tokenizer


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """Train one variant in this process and return its measurements."""
    import torch

    import lorakit
    from lorakit.evaluation import perplexity
    from lorakit.memory.peak import PeakMemory

    meter = PeakMemory("cuda" if torch.cuda.is_available() else "cpu")
    meter.start()
    torch.manual_seed(0)
    overrides = dict(n_train=args.n_train, n_eval=args.n_eval, num_train_epochs=1.0, eval_strategy="no",
                     save_strategy="no", gradient_checkpointing=not args.no_checkpointing,
                     quantization=args.quantization, per_device_train_batch_size=args.batch, max_length=args.max_length)
    recipe = lorakit.get_recipe("quickstart", dataset=args.dataset, padding_free=args.variant == "lorakit",
                                **overrides)
    model_name = args.model_path or args.model
    tokenizer = lorakit.load_tokenizer(model_name)
    data = lorakit.load_dataset(args.dataset, tokenizer, n_train=args.n_train, n_eval=args.n_eval, seed=recipe.seed,
                                max_length=recipe.max_length)
    local_path = tokenizer.name_or_path  # the built-in model's folder, or the given path
    clock = StepClock(args.warmup_steps)
    with tempfile.TemporaryDirectory() as out:
        if args.variant.startswith("plain"):
            model, tokenizer = _plain(args.variant, recipe, data, local_path, out, clock)
        elif args.variant in TRL_VARIANTS:
            model, tokenizer = _trl(args.variant, recipe, data, local_path, out, clock)
        else:
            result = lorakit.train(recipe, model=None if model_name == "tiny" else model_name, data=data,
                                   tokenizer=None, output_dir=out, callbacks=[clock], progress=False)
            model, tokenizer = result.model, result.tokenizer
    peak, kind = meter.read()
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    params = model.get_nb_trainable_parameters()[1]  # frozen + LoRA; peft counts 4-bit packed weights in full
    timing = clock.measurements()
    tokens_per_s = timing["timed_real_tokens"] / timing["seconds"]
    device_peak = peak_flops(device_name)
    return dict(variant=args.variant, **timing, dataset_tokens=sum(len(row) for row in data.train["input_ids"]),
                tokens_per_s=tokens_per_s, total_tokens_per_s=timing["real_tokens"] / timing["total_seconds"],
                device_name=device_name, peak_flops=device_peak, params=params,
                mfu=4 * params * tokens_per_s / device_peak if device_peak else None,
                peak_bytes=peak, peak_kind=kind, eval_loss=math.log(perplexity(model, tokenizer, data.eval)))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's report over its runs: the median of each timed value (None if any run has None), every run's
    values under "runs", and the rest (the same in every run) from the first."""
    report = dict(runs[0], repeats=len(runs), runs=[{key: run[key] for key in RUN_KEYS} for run in runs])
    for key in RUN_KEYS:
        values = [run[key] for run in runs]
        report[key] = None if None in values else statistics.median(values)
    return report


def compare(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """lorakit's ratios to plain (dynamic padding), TRL's default and TRL's best (highest tokens/s of the TRL variants
    run); with repeats, of the medians."""
    out: dict[str, Any] = {}
    if "lorakit" not in reports:
        return out
    mine = reports["lorakit"]
    trl_runs = {name: r for name, r in reports.items() if name in TRL_VARIANTS}
    baselines = {"plain": reports.get("plain"), "trl_default": reports.get("trl"),
                 "trl_best": max(trl_runs.values(), key=lambda r: r["tokens_per_s"]) if trl_runs else None}
    for label, base in baselines.items():
        if base is not None:
            out[f"lorakit_over_{label}"] = dict(
                baseline=base["variant"], tokens_per_s_ratio=mine["tokens_per_s"] / base["tokens_per_s"],
                peak_memory_ratio=mine["peak_bytes"] / base["peak_bytes"],
                eval_loss_difference=mine["eval_loss"] - base["eval_loss"])
    return out


def print_summary(args: argparse.Namespace, reports: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> None:
    first = next(iter(reports.values()))
    peak = f"{first['peak_flops'] / 1e12:.0f} TFLOP/s peak" if first["peak_flops"] else "peak FLOP/s unknown: no MFU"
    print(f"dataset {args.dataset}, {first['params']:,} params, {args.n_train} rows × 1 epoch, batch {args.batch}, "
          f"max_length {args.max_length}, {first['dataset_tokens']:,} real tokens; {first['device_name']} ({peak}); "
          f"timed after up to {args.warmup_steps} warm-up steps; medians of {first['repeats']} runs; "
          f"peak memory = {first['peak_kind']}")
    show_mfu = first["mfu"] is not None
    print(f"{'variant':17s} {'steps':>7s} {'timed s':>8s} {'tokens/s':>9s} {'runs':>15s} {'padding':>8s} "
          f"{'peak MiB':>9s} {'eval loss':>9s}" + ("   MFU" if show_mfu else ""))
    for name, r in reports.items():
        padding = 1 - r["real_tokens"] / r["processed_tokens"]
        runs = "/".join(f"{run['tokens_per_s']:.0f}" for run in r["runs"])
        print(f"{name:17s} {r['timed_steps']:3d}/{r['optimizer_steps']:<3d} {r['seconds']:8.2f} "
              f"{r['tokens_per_s']:9.0f} {runs:>15s} {padding:8.0%} {r['peak_bytes'] / 2**20:9.0f} "
              f"{r['eval_loss']:9.4f}" + (f" {r['mfu']:5.1%}" if show_mfu else ""))
    goals = {"plain": 1.5, "trl_default": 1.5, "trl_best": 1.0}
    for label, ratio in ratios.items():
        base = label.removeprefix("lorakit_over_")
        met = ratio["tokens_per_s_ratio"] >= goals[base] and ratio["eval_loss_difference"] <= EQUAL_LOSS
        print(f"lorakit / {ratio['baseline']} ({base}): tokens/s ×{ratio['tokens_per_s_ratio']:.2f}, "
              f"peak memory ×{ratio['peak_memory_ratio']:.2f}, eval loss {ratio['eval_loss_difference']:+.4f} "
              f"(goal ≥×{goals[base]} at equal (±{EQUAL_LOSS}) or lower eval loss: {'met' if met else 'NOT met'})")


def run_once(args: argparse.Namespace, variant: str, model_path: str | None) -> dict[str, Any]:
    """One run of `variant`: in a fresh Python process, or in this one with --in-process."""
    if args.in_process:
        return run_variant(argparse.Namespace(**{**vars(args), "variant": variant, "model_path": model_path}))
    cmd = [sys.executable, __file__, "--variant", variant, "--model", args.model, "--dataset", args.dataset,
           "--n-train", str(args.n_train), "--n-eval", str(args.n_eval), "--batch", str(args.batch),
           "--max-length", str(args.max_length), "--warmup-steps", str(args.warmup_steps)]
    cmd += ["--quantization", args.quantization] if args.quantization else []
    cmd += ["--no-checkpointing"] if args.no_checkpointing else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += ["--model-path", model_path] if model_path else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        sys.exit(f"{variant} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested variant, `--repeats` interleaved rounds (a busy spell hits them alike); returns {variants:
    each one's `summarize`d report, ratios: `compare` of those}. A random Llama is built once for all of them, unless
    `--model-path` names one already built (gpu_check runs the variants one call at a time)."""
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model_path
        if model_path is None and args.model == "random-llama":
            model_path = random_llama(Path(tmp), args.layers, args.hidden)
        for _ in range(args.repeats):
            for variant in variants:
                runs[variant].append(run_once(args, variant, model_path))
    reports = {variant: summarize(variant_runs) for variant, variant_runs in runs.items()}
    return dict(variants=reports, ratios=compare(reports))


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant here and print JSON (used internally)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--dataset", default="instruction", choices=["instruction", "code", "domain"])
    parser.add_argument("--n-train", type=int, default=480)
    parser.add_argument("--n-eval", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--quantization", choices=["nf4"], default=None)
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--model", choices=["tiny", "smollm2-135m", "random-llama"], default="tiny",
                        help="the built-in model, the course's real LM (SmolLM2-135M-Instruct, offline), or a random "
                             "Llama of --layers × --hidden")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per variant (default: torch's)")
    parser.add_argument("--warmup-steps", type=at_least_one, default=2,
                        help="optimizer steps left out of the timing (fewer when the epoch is short: one is timed)")
    parser.add_argument("--repeats", type=at_least_one, default=2,
                        help="interleaved rounds of all variants; each reports every run and their median")
    parser.add_argument("--in-process", action="store_true",
                        help="run every variant in this process (quicker to start; peak memory is then not its own)")
    parser.add_argument("--json", type=Path, help="also write every measurement and the ratios to this file")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    unknown = sorted(set(args.variants.split(",")) - set(VARIANTS))
    if unknown:
        parser().error(f"--variants has unknown name(s) {unknown}; choose from {list(VARIANTS)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return {}
    results = run_all(args)
    print_summary(args, results["variants"], results["ratios"])
    if args.json:
        args.json.write_text(json.dumps(dict(args=vars(args) | {"json": str(args.json)}, **results), indent=1))
    return results


if __name__ == "__main__":
    main()
