"""lorakit's recipe vs a plain Trainer + peft script and TRL's SFTTrainer: same rows, LoRA and optimizer.

Variants (each in a fresh process, so peak memory is its own):
  plain         what a user writes from a typical guide: rows padded to max_length (tokenizer padding="max_length"),
                Trainer's default collator, the same LoraConfig and TrainingArguments as the recipe.
  lorakit       `lorakit.train` with the recipe as shipped: padding-free batches (a batch's rows concatenated into one
                sequence, position ids restarting per row), SDPA attention.
  padded        `lorakit.train` with `padding_free=False`: each batch padded to its own longest row (an ablation).
  trl           TRL's `SFTTrainer` with its default batching (each batch padded to its longest row; SFTConfig's own
                entropy / token-accuracy metrics on), given the same tokenised rows (input_ids + labels) and a
                `peft_config`, the recipe's optimizer, schedule, precision and checkpointing.
  trl-padding-free  the same with `padding_free=True` (rows of a batch flattened, position ids per row).
  trl-packing   the same with `packing=True` (best-fit-decreasing packing into max_length sequences, padding-free):
                fewer, fuller batches, so fewer optimizer steps than the others.

Every variant trains on the same tokenised rows (prompt masked to -100), in the same order, for one epoch, and is then
scored by the same function (`lorakit.evaluation.metrics.perplexity` on the same eval rows). tokens/s counts real tokens only
(padding excluded), so the ratio is useful work per second. On CUDA the script also prints MFU: model FLOPs
(4 · N · tokens: forward 2N plus the input-gradient half of the backward, 2N; frozen weights get no weight gradient;
checkpoint recomputation not counted) over the H100/H200 dense bf16 peak (989 TFLOP/s).

The summary prints lorakit / TRL-default and lorakit / TRL-best (the TRL variant with the highest tokens/s) ratios
with each one's eval loss; `--json PATH` also writes every measurement. `--repeats N` runs N interleaved rounds and
keeps each variant's fastest run (training is seeded, so eval loss is the same in every round).

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOPPER_BF16_PEAK_FLOPS = 989e12  # H100 SXM and H200, dense bf16
VARIANTS = ("plain", "lorakit", "padded", "trl", "trl-padding-free", "trl-packing")
EQUAL_LOSS = 0.01  # eval losses this close count as equal: dropout masks differ between batch layouts
TRL_VARIANTS = tuple(v for v in VARIANTS if v.startswith("trl"))


def random_llama(out_dir: Path, layers: int, hidden: int) -> str:
    """A randomly initialised Llama of the given depth/width with the built-in tokenizer, saved to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import lorakit

    tokenizer = lorakit.load_tokenizer("tiny")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=int(hidden * 2.6875) // 64 * 64,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 256),
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return str(out_dir)


class PaddingCounter:
    """Wraps a padding collator and counts the token positions (real + padding) of the training batches."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.positions = collator, 0

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        self.positions += batch["input_ids"].numel()
        return batch


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


def _plain(recipe: Any, data: Any, model_name: str, out: str) -> tuple[Any, Any, float]:
    """The guide-style script: pad every row to max_length, default collator, Trainer + peft."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Trainer, TrainingArguments

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

    train = Dataset.from_list([pad(row) for row in data.train])
    args = compat.training_arguments(TrainingArguments, **_training_kwargs(recipe, out, precision))
    trainer = Trainer(model=model, args=args, train_dataset=train)
    start = time.perf_counter()
    trainer.train()
    return model, tokenizer, time.perf_counter() - start


def _trl(variant: str, recipe: Any, data: Any, model_name: str, out: str) -> tuple[Any, Any, float, int, int]:
    """TRL's SFTTrainer on the same tokenised rows: its default batching, padding-free, or packing.

    Returns (model, tokenizer, train seconds, token positions processed, optimizer steps).
    """
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
                         processing_class=tokenizer, peft_config=recipe.lora_config())
    counter = PaddingCounter(trainer.data_collator)
    trainer.data_collator = counter
    start = time.perf_counter()
    trainer.train()
    return trainer.model, tokenizer, time.perf_counter() - start, counter.positions, trainer.state.global_step


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
                     save_strategy="no", gradient_checkpointing=not args.no_checkpointing, quantization=args.quantization,
                     per_device_train_batch_size=args.batch, max_length=args.max_length)
    recipe = lorakit.get_recipe("quickstart", dataset=args.dataset, padding_free=args.variant == "lorakit",
                                **overrides)
    model_name = args.model_path or args.model
    tokenizer = lorakit.load_tokenizer(model_name)
    data = lorakit.load_dataset(args.dataset, tokenizer, n_train=args.n_train, n_eval=args.n_eval, seed=recipe.seed,
                                max_length=recipe.max_length)
    real_tokens = sum(len(row) for row in data.train["input_ids"])
    local_path = tokenizer.name_or_path  # the built-in model's folder, or the given path
    with tempfile.TemporaryDirectory() as out:
        if args.variant == "plain":
            model, tokenizer, seconds = _plain(recipe, data, local_path, out)
            processed, steps = len(data.train) * recipe.max_length, math.ceil(len(data.train) / args.batch)
        elif args.variant in TRL_VARIANTS:
            model, tokenizer, seconds, processed, steps = _trl(args.variant, recipe, data, local_path, out)
        else:
            data.collator = PaddingCounter(data.collator)
            result = lorakit.train(recipe, model=None if model_name == "tiny" else model_name, data=data,
                                   tokenizer=None, output_dir=out, progress=False)
            model, tokenizer, seconds = result.model, result.tokenizer, result.train_seconds
            processed = data.collator.positions if args.variant == "padded" else real_tokens
            steps = max(entry.get("step", 0) for entry in result.log_history)
    peak, kind = meter.read()
    eval_loss = math.log(perplexity(model, tokenizer, data.eval))
    params = model.get_nb_trainable_parameters()[1]  # peft counts 4-bit packed weights as the weights they hold
    report = dict(variant=args.variant, seconds=seconds, real_tokens=real_tokens, processed_tokens=processed,
                  optimizer_steps=steps, tokens_per_s=real_tokens / seconds, peak_bytes=peak, peak_kind=kind,
                  eval_loss=eval_loss, params=params)
    if torch.cuda.is_available():
        report["mfu"] = 4 * params * real_tokens / seconds / HOPPER_BF16_PEAK_FLOPS
    return report


def compare(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """lorakit's ratios to plain, TRL's default and TRL's best (highest tokens/s of the TRL variants run)."""
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
    print(f"dataset {args.dataset}, {first['params']:,} params, {args.n_train} rows × 1 epoch, batch {args.batch}, "
          f"max_length {args.max_length}, {first['real_tokens']:,} real tokens; peak memory = {first['peak_kind']}")
    print(f"{'variant':17s} {'train s':>8s} {'steps':>5s} {'tokens/s':>9s} {'padding':>8s} {'peak MiB':>9s} "
          f"{'eval loss':>9s}" + ("   MFU" if "mfu" in first else ""))
    for name, r in reports.items():
        padding = 1 - r["real_tokens"] / r["processed_tokens"]
        print(f"{name:17s} {r['seconds']:8.1f} {r['optimizer_steps']:5d} {r['tokens_per_s']:9.0f} {padding:8.0%} "
              f"{r['peak_bytes'] / 2**20:9.0f} {r['eval_loss']:9.4f}" + (f" {r['mfu']:5.1%}" if "mfu" in r else ""))
    goals = {"plain": 1.5, "trl_default": 1.5, "trl_best": 1.0}
    for label, ratio in ratios.items():
        base = label.removeprefix("lorakit_over_")
        met = ratio["tokens_per_s_ratio"] >= goals[base] and ratio["eval_loss_difference"] <= EQUAL_LOSS
        print(f"lorakit / {ratio['baseline']} ({base}): tokens/s ×{ratio['tokens_per_s_ratio']:.2f}, "
              f"peak memory ×{ratio['peak_memory_ratio']:.2f}, eval loss {ratio['eval_loss_difference']:+.4f} "
              f"(goal ≥×{goals[base]} at equal (±{EQUAL_LOSS}) or lower eval loss: {'met' if met else 'NOT met'})")


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every requested variant, each in a fresh process; returns {variants, ratios}."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path = random_llama(Path(tmp), args.layers, args.hidden) if args.model == "random-llama" else None
        reports: dict[str, dict[str, Any]] = {}
        base_cmd = [sys.executable, __file__, "--model", args.model, "--dataset", args.dataset,
                    "--n-train", str(args.n_train), "--n-eval", str(args.n_eval), "--batch", str(args.batch),
                    "--max-length", str(args.max_length)]
        base_cmd += ["--quantization", args.quantization] if args.quantization else []
        base_cmd += ["--no-checkpointing"] if args.no_checkpointing else []
        base_cmd += ["--threads", str(args.threads)] if args.threads else []
        for _ in range(args.repeats):  # rounds interleave the variants, so a busy spell hits them alike
            for variant in args.variants.split(","):
                cmd = base_cmd + ["--variant", variant] + (["--model-path", model_path] if model_path else [])
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if proc.returncode:
                    sys.exit(f"{variant} failed:\n{proc.stderr[-4000:]}")
                report = json.loads(proc.stdout.strip().splitlines()[-1])
                runs = reports.get(variant, {}).get("runs", []) + [dict(seconds=report["seconds"],
                                                                         eval_loss=report["eval_loss"])]
                if variant not in reports or report["seconds"] < reports[variant]["seconds"]:
                    reports[variant] = report
                reports[variant]["runs"] = runs
    return dict(variants=reports, ratios=compare(reports))


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant here and print JSON (used internally)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
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
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all variants; each keeps its fastest run")
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
