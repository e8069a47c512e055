"""How good an adapter is, as numbers (chapters 1, 3, 5 and 7).

- `eval_loss`: the Trainer's eval loss measured outside it (a base model's baseline, a kept checkpoint checked).
- `uniform_loss`: the loss of guessing uniformly over the vocabulary, ln V: the line a sane model starts below.
- `perplexity`: exp(mean token loss) on texts or a tokenised dataset.
- `exact_match`: greedy answers to chat prompts compared with the one right answer (`lorakit.evaluation.generation`).
- `classification_accuracy`: arg-max accuracy of a sequence-classification head.
- `forgetting`: base-corpus perplexity with the adapter disabled vs enabled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .generation import answers_and_match, model_device


def uniform_loss(tokenizer: Any) -> float:
    """Cross-entropy of guessing every token uniformly: ln V, V = the tokenizer's vocabulary (added tokens too)."""
    return math.log(len(tokenizer))


@torch.no_grad()
def eval_loss(model: Any, data: Any, batch_size: int = 16) -> float:
    """The model's own loss on `data.eval` (a tokenised lorakit TaskData), computed as the Trainer computes its
    `eval_loss`: each batch's mean loss per scored token, averaged over batches weighted by their rows. The one
    eval-loss measure outside the Trainer: a base model's baseline, a kept checkpoint checked again."""
    total, rows = 0.0, 0
    model.eval()
    for batch in data.eval_batches(batch_size, model.device):
        total += model(**batch).loss.item() * len(batch["input_ids"])
        rows += len(batch["input_ids"])
    return total / rows


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
            enc = {"input_ids": torch.tensor([list(r["input_ids"]) + [pad] * (width - len(r["input_ids"])) for r in chunk]),
                   "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                                   for r in chunk])}
            labels = torch.tensor([list(r.get("labels", r["input_ids"])) + [-100] * (width - len(r["input_ids"]))
                                   for r in chunk])
        enc = {k: v.to(model_device(model)) for k, v in enc.items()}
        logits = model(**enc).logits[:, :-1].float()
        target = labels[:, 1:].to(logits.device)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        total_loss += loss.item()
        total_tokens += int((target != -100).sum())
    model.train(was_training)
    return math.exp(total_loss / max(1, total_tokens))


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
        enc = tokenizer([r["text"] for r in chunk], return_tensors="pt", padding=True).to(model_device(model))
        predicted = model(**enc).logits.argmax(-1).tolist()
        correct += sum(p == r["label"] for p, r in zip(predicted, chunk))
    model.train(was_training)
    return correct / len(rows)


def forgetting(model: Any, tokenizer: Any, base_texts: Sequence[str], model_before: Any = None) -> dict[str, float]:
    """Base-corpus perplexity before and after fine-tuning, and their ratio (> 1 means the model forgot).

    "Before" is `model` with its adapter disabled (`with model.disable_adapter():`), or `model_before` when given
    (e.g. the base model, to compare with a merged or fully fine-tuned `model`).
    """
    if model_before is not None:
        before = perplexity(model_before, tokenizer, base_texts)
    else:
        with model.disable_adapter():
            before = perplexity(model, tokenizer, base_texts)
    after = perplexity(model, tokenizer, base_texts)
    return {"base_perplexity": before, "adapted_perplexity": after, "ratio": after / before}


def exact_match(model: Any, tokenizer: Any, rows: Sequence[dict], max_new_tokens: int = 16) -> float:
    """Fraction of rows whose greedy answer equals row['response'] exactly (after stripping spaces)."""
    return answers_and_match(model, tokenizer, rows, max_new_tokens)[1]
