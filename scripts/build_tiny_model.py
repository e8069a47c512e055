"""Rebuild lorakit's built-in tiny model and tokenizer from Python's own docs and stdlib source.

    python scripts/build_tiny_model.py [--out lorakit/assets/tiny] [--steps 450] [--seed 0]

1. trains a byte-level BPE tokenizer (vocab 4096) with the course's special tokens and chat template;
2. pre-trains a ~4M-parameter Llama (4 layers, hidden 256, 4 query heads sharing 2 key/value heads) on packed
   256-token sequences with AdamW and a cosine schedule;
3. writes config, generation config, tokenizer, bf16 safetensors weights and build_info.json (parameters, steps,
   seconds, held-out perplexity of the trained model and of a random initialisation).
Deterministic on a given machine and Python version (seeded, single process).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lorakit.data.corpus import pretraining_texts  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
VOCAB_SIZE = 4096
SEQ_LEN = 256


def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|end|>", pad_token="<|pad|>",
        unk_token=None, additional_special_tokens=["<|user|>", "<|assistant|>", "<|endoftext|>"],
        chat_template=CHAT_TEMPLATE, model_max_length=512, padding_side="right",
    )


def pack(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """Concatenate documents separated by <|endoftext|> and cut into SEQ_LEN-token rows."""
    sep = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        ids.append(sep)
    rows = len(ids) // SEQ_LEN
    return torch.tensor(ids[: rows * SEQ_LEN]).view(rows, SEQ_LEN)


def model_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        rms_norm_eps=1e-5, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


@torch.no_grad()
def perplexity(model: LlamaForCausalLM, rows: torch.Tensor, batch: int = 16) -> float:
    model.eval()
    losses = [model(input_ids=rows[i:i + batch], labels=rows[i:i + batch]).loss.item()
              for i in range(0, len(rows), batch)]
    return math.exp(sum(losses) / len(losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "lorakit/assets/tiny")
    parser.add_argument("--steps", type=int, default=450)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer-only", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()

    train_texts, heldout_texts = pretraining_texts("train"), pretraining_texts("heldout")
    tokenizer = build_tokenizer(train_texts)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(args.out)
    print(f"tokenizer: {len(tokenizer)} tokens ({time.perf_counter() - start:.0f} s)")
    if args.tokenizer_only:
        return

    train_rows, heldout_rows = pack(tokenizer, train_texts), pack(tokenizer, heldout_texts)
    config = model_config(tokenizer)
    model = LlamaForCausalLM(config)
    random_ppl = perplexity(model, heldout_rows)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} params; {len(train_rows)} train rows, {len(heldout_rows)} held-out rows; "
          f"random-init held-out perplexity {random_ppl:.0f}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))))
    generator = torch.Generator().manual_seed(args.seed)
    epochs = math.ceil(args.steps * args.batch / len(train_rows))
    order = torch.cat([torch.randperm(len(train_rows), generator=generator) for _ in range(epochs)])
    model.train()
    for step in range(args.steps):
        batch = train_rows[order[step * args.batch:(step + 1) * args.batch]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)

    trained_ppl = perplexity(model, heldout_rows)
    train_ppl = perplexity(model, train_rows[:len(heldout_rows)])
    model.to(torch.bfloat16).save_pretrained(args.out)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=[tokenizer.eos_token_id, tokenizer.bos_token_id],
                     do_sample=False).save_pretrained(args.out)
    info = {
        "params": n_params, "steps": args.steps, "batch": args.batch, "seq_len": SEQ_LEN, "lr": args.lr,
        "seed": args.seed, "train_rows": len(train_rows), "heldout_rows": len(heldout_rows),
        "seconds": round(time.perf_counter() - start, 1), "heldout_perplexity": round(trained_ppl, 2),
        "train_perplexity": round(train_ppl, 2), "random_init_heldout_perplexity": round(random_ppl, 1),
        "python": platform.python_version(), "torch": torch.__version__, "weights_dtype": "bfloat16",
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
