"""Plain HF Trainer + peft vs lorakit's recipe: same data, same LoRA, same steps; tokens/s, peak memory, eval loss.

Variants (each in a fresh process, so peak memory is its own):
  plain         what a user writes from a typical guide: rows padded to max_length (tokenizer padding="max_length"),
                Trainer's default collator, the same LoraConfig and TrainingArguments as the recipe.
  lorakit       `lorakit.train` with the recipe as shipped: padding-free batches (a batch's rows concatenated into one
                sequence, position ids restarting per row), SDPA attention.
  padded        `lorakit.train` with `padding_free=False`: each batch padded to its own longest row (an ablation).

Every variant trains on the same tokenised rows (prompt masked to -100), in the same order, for one epoch, and is then
scored by the same function (`lorakit.evaluate.perplexity` on the same eval rows). tokens/s counts real tokens only
(padding excluded), so the ratio is useful work per second. On CUDA the script also prints MFU: model FLOPs
(4 · N · tokens: forward 2N plus the input-gradient half of the backward, 2N; frozen weights get no weight gradient;
checkpoint recomputation not counted) over the H100 dense bf16 peak (989 TFLOP/s).

Usage:
  python benchmarks/throughput.py                        # built-in model, instruction data, CPU or GPU
  python benchmarks/throughput.py --dataset code --n-train 256
  python benchmarks/throughput.py --model random-llama --layers 24 --hidden 2048 --quantization nf4   # ≥1B, GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

H100_BF16_PEAK_FLOPS = 989e12
VARIANTS = ("plain", "lorakit", "padded")


def random_llama(out_dir: Path, layers: int, hidden: int) -> str:
    """A randomly initialised Llama of the given depth/width with the built-in tokenizer, saved to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lorakit.base import load_tokenizer

    tokenizer = load_tokenizer("tiny")
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


def _peak_memory() -> tuple[int, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(), "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def _plain(args: argparse.Namespace, recipe: Any, data: Any, model_name: str, out: str) -> tuple[Any, Any, float]:
    """The guide-style script: pad every row to max_length, default collator, Trainer + peft."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, Trainer, TrainingArguments

    from lorakit import compat
    from lorakit.hardware import DTYPES, choose_precision, detect

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    precision = choose_precision(recipe.precision, detect())
    dtype = DTYPES[precision]
    quantization = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=dtype) if recipe.quantization == "nf4" else None)
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype, quantization_config=quantization)
    if quantization is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    model = get_peft_model(model, LoraConfig(r=recipe.r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))

    def pad(row: dict) -> dict:
        extra = recipe.max_length - len(row["input_ids"])
        return {"input_ids": row["input_ids"] + [tokenizer.pad_token_id] * extra,
                "attention_mask": [1] * len(row["input_ids"]) + [0] * extra,
                "labels": row["labels"] + [-100] * extra}

    train = Dataset.from_list([pad(row) for row in data.train])
    kwargs = recipe.training_kwargs(out, precision, use_cpu=not torch.cuda.is_available(), has_eval=False)
    kwargs.update(report_to=[], disable_tqdm=True)
    trainer = Trainer(model=model, args=compat.training_arguments(TrainingArguments, **kwargs), train_dataset=train)
    start = time.perf_counter()
    trainer.train()
    return model, tokenizer, time.perf_counter() - start


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """Train one variant in this process and return its measurements."""
    import torch

    import lorakit
    from lorakit.data import load_dataset
    from lorakit.evaluate import perplexity

    torch.manual_seed(0)
    overrides = dict(n_train=args.n_train, n_eval=args.n_eval, num_train_epochs=1.0, eval_strategy="no",
                     save_strategy="no", gradient_checkpointing=not args.no_checkpointing, quantization=args.quantization,
                     per_device_train_batch_size=args.batch, max_length=args.max_length)
    recipe = lorakit.get_recipe("quickstart", dataset=args.dataset, padding_free=args.variant == "lorakit",
                                **overrides)
    model_name = args.model_path or "tiny"
    tokenizer = lorakit.load_tokenizer(model_name)
    data = load_dataset(args.dataset, tokenizer, n_train=args.n_train, n_eval=args.n_eval, seed=recipe.seed,
                        max_length=recipe.max_length)
    with tempfile.TemporaryDirectory() as out:
        if args.variant == "plain":
            from lorakit.base import TINY_DIR

            model, tokenizer, seconds = _plain(args, recipe, data, str(TINY_DIR) if model_name == "tiny" else model_name,
                                               out)
        else:
            data.collator = PaddingCounter(data.collator)
            result = lorakit.train(recipe, model=None if model_name == "tiny" else model_name, data=data,
                                   tokenizer=None, output_dir=out, progress=False)
            model, tokenizer, seconds = result.model, result.tokenizer, result.train_seconds
    peak, kind = _peak_memory()
    real_tokens = sum(len(row) for row in data.train["input_ids"])
    processed = {"plain": len(data.train) * recipe.max_length, "padded": getattr(data.collator, "positions", 0),
                 "lorakit": real_tokens}[args.variant]
    eval_loss = math.log(perplexity(model, tokenizer, data.eval))
    params = model.get_nb_trainable_parameters()[1]  # peft counts 4-bit packed weights as the weights they hold
    report = dict(variant=args.variant, seconds=seconds, real_tokens=real_tokens, processed_tokens=processed,
                  tokens_per_s=real_tokens / seconds, peak_bytes=peak, peak_kind=kind, eval_loss=eval_loss,
                  params=params)
    if torch.cuda.is_available():
        report["mfu"] = 4 * params * real_tokens / seconds / H100_BF16_PEAK_FLOPS
    return report


def main() -> None:
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
    parser.add_argument("--model", choices=["tiny", "random-llama"], default="tiny")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per variant (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        model_path = random_llama(Path(tmp), args.layers, args.hidden) if args.model == "random-llama" else None
        reports = {}
        base_cmd = [sys.executable, __file__] + [a for a in sys.argv[1:] if not a.startswith("--variants")]
        for variant in args.variants.split(","):
            cmd = base_cmd + ["--variant", variant] + (["--model-path", model_path] if model_path else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if proc.returncode:
                sys.exit(f"{variant} failed:\n{proc.stderr[-4000:]}")
            reports[variant] = json.loads(proc.stdout.strip().splitlines()[-1])

    first = next(iter(reports.values()))
    print(f"dataset {args.dataset}, {first['params']:,} params, {args.n_train} rows × 1 epoch, batch {args.batch}, "
          f"max_length {args.max_length}, {first['real_tokens']:,} real tokens; peak memory = {first['peak_kind']}")
    print(f"{'variant':13s} {'train s':>8s} {'tokens/s':>9s} {'padding':>8s} {'peak MiB':>9s} {'eval loss':>9s}"
          + ("   MFU" if "mfu" in first else ""))
    for name, r in reports.items():
        padding = 1 - r["real_tokens"] / r["processed_tokens"]
        print(f"{name:13s} {r['seconds']:8.1f} {r['tokens_per_s']:9.0f} {padding:8.0%} {r['peak_bytes'] / 2**20:9.0f} "
              f"{r['eval_loss']:9.4f}" + (f" {r['mfu']:5.1%}" if "mfu" in r else ""))
    if "plain" in reports:
        for name, r in reports.items():
            if name != "plain":
                print(f"{name} / plain: tokens/s ×{r['tokens_per_s'] / reports['plain']['tokens_per_s']:.2f}, "
                      f"peak memory ×{r['peak_bytes'] / reports['plain']['peak_bytes']:.2f}, "
                      f"eval loss {r['eval_loss'] - reports['plain']['eval_loss']:+.4f}")


if __name__ == "__main__":
    main()
