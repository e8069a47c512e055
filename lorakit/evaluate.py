"""What an adapter learned and what it forgot (chapter 7).

- `perplexity`: exp(mean token loss) on texts or a tokenised dataset.
- `generate_answers` / `exact_match`: greedy answers to chat prompts, compared with the one right answer.
- `classification_accuracy`: arg-max accuracy of a sequence-classification head.
- `forgetting`: base-corpus perplexity with the adapter disabled vs enabled.
- `compare_adapters`: A/B of several saved adapters on one base model, side by side.
- `merged_matches_unmerged`: merging LoRA into the base weights gives the same outputs.
- `generation_stats`: repetition, empty and runaway answers (used by `lorakit.diagnostics`).

For online users, the standard harness works on a saved adapter too (never needed by the course):
`lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER_DIR --tasks hellaswag`.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: Iterable[str] | Any, max_length: int = 256,
               batch_size: int = 8) -> float:
    """exp(mean loss per predicted token) over `texts` (strings) or a dataset with input_ids/labels."""
    was_training = model.training
    model.eval()
    total_loss, total_tokens = 0.0, 0
    rows = list(texts)
    if not rows:
        raise ValueError("texts must not be empty")
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        if isinstance(chunk[0], str):
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                            add_special_tokens=False)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        else:
            width = max(len(r["input_ids"]) for r in chunk)
            pad = tokenizer.pad_token_id
            enc = {"input_ids": torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in chunk]),
                   "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                                   for r in chunk])}
            labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in chunk])
        enc = {k: v.to(_device(model)) for k, v in enc.items()}
        logits = model(**enc).logits[:, :-1].float()
        target = labels[:, 1:].to(logits.device)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        total_loss += loss.item()
        total_tokens += int((target != -100).sum())
    model.train(was_training)
    return math.exp(total_loss / max(1, total_tokens))


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 16,
                     batch_size: int = 16) -> list[str]:
    """Greedy answers to chat prompts (left-padded batches, stopping at the end-of-turn token)."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    answers = []
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) for p in prompts[start:start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(_device(model))
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return [a.strip() for a in answers]


def exact_match(model: Any, tokenizer: Any, rows: Sequence[dict], max_new_tokens: int = 16) -> float:
    """Fraction of rows whose greedy answer equals row['response'] exactly (after stripping spaces)."""
    if not rows:
        raise ValueError("rows must not be empty")
    answers = generate_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    return sum(a == r["response"].strip() for a, r in zip(answers, rows)) / len(rows)


@torch.no_grad()
def classification_accuracy(model: Any, tokenizer: Any, rows: Sequence[dict], batch_size: int = 32) -> float:
    """Fraction of rows ({"text", "label"}) whose arg-max class equals the label (sequence-classification models)."""
    if not rows:
        raise ValueError("rows must not be empty")
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        enc = tokenizer([r["text"] for r in chunk], return_tensors="pt", padding=True).to(_device(model))
        predicted = model(**enc).logits.argmax(-1).tolist()
        correct += sum(p == r["label"] for p, r in zip(predicted, chunk))
    model.train(was_training)
    return correct / len(rows)


def forgetting(model: Any, tokenizer: Any, base_texts: Sequence[str]) -> dict[str, float]:
    """Base-corpus perplexity without and with the adapter, and their ratio (> 1 means the model forgot)."""
    with model.disable_adapter():
        before = perplexity(model, tokenizer, base_texts)
    after = perplexity(model, tokenizer, base_texts)
    return {"base_perplexity": before, "adapted_perplexity": after, "ratio": after / before}


def compare_adapters(model: Any, tokenizer: Any, adapters: dict[str, str], rows: Sequence[dict],
                     max_new_tokens: int = 16) -> list[dict[str, Any]]:
    """Load each saved adapter onto one peft model (`load_adapter`/`set_adapter`) and answer the same rows.

    Returns one dict per row: the prompt, the expected answer and each adapter's answer, plus a final "accuracy" row.
    """
    answers: dict[str, list[str]] = {}
    for name, path in adapters.items():
        if name not in model.peft_config:
            model.load_adapter(path, adapter_name=name)
        model.set_adapter(name)
        answers[name] = generate_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    table = [{"prompt": r["prompt"], "expected": r["response"], **{n: a[i] for n, a in answers.items()}}
             for i, r in enumerate(rows)]
    table.append({"prompt": "accuracy", "expected": "",
                  **{n: sum(x == r["response"] for x, r in zip(a, rows)) / len(rows) for n, a in answers.items()}})
    return table


@torch.no_grad()
def merged_matches_unmerged(model: Any, inputs: dict[str, torch.Tensor], atol: float = 1e-4) -> tuple[bool, float]:
    """Merge a copy of the peft model's adapter into its weights; compare logits. Returns (equal, max abs diff)."""
    model.eval()
    unmerged = model(**inputs).logits
    merged_model = copy.deepcopy(model).merge_and_unload()
    merged = merged_model(**inputs).logits
    diff = (merged - unmerged).abs().max().item()
    return diff <= atol, diff


def generation_stats(answers: Sequence[str], max_chars: int = 200) -> dict[str, float]:
    """Rates of empty answers, runaway answers (≥ max_chars), repetition (mean over answers of 1 - distinct
    words / words) and collapse (the share of the single most common answer)."""
    if not answers:
        raise ValueError("answers must not be empty")
    split = [a.split() for a in answers if a.split()]
    return {
        "empty_rate": sum(not a.strip() for a in answers) / len(answers),
        "runaway_rate": sum(len(a) >= max_chars for a in answers) / len(answers),
        "repetition_rate": sum(1 - len(set(w)) / len(w) for w in split) / len(split) if split else 0.0,
        "same_answer_rate": max(Counter(answers).values()) / len(answers),
    }
