"""Reference points a loss needs to mean something: uniform guessing over the vocabulary (ln V) and the loss of the
base model, before any adapter, on the same eval rows."""

from __future__ import annotations

import math
from typing import Any

import torch


def uniform_loss(tokenizer: Any) -> float:
    """Cross-entropy of guessing every token uniformly: ln V, V = the tokenizer's vocabulary (added tokens too)."""
    return math.log(len(tokenizer))


def base_eval_loss(model: Any, data: Any, batch_size: int = 16) -> float:
    """Mean cross-entropy per answer token (labels ≠ -100) of `model` on `data.eval` (a tokenised lorakit TaskData)."""
    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in data.eval_batches(batch_size, model.device):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total, tokens = total + loss.item(), tokens + int((labels != -100).sum())
    return total / tokens
