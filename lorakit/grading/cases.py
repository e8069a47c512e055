"""Inputs for hidden checks: random but valid objects built from the grader's seeded `random.Random`."""

from __future__ import annotations

import random

from ..models.shapes import ModelShape


def random_shape(rng: random.Random) -> ModelShape:
    """A Llama-style shape with GQA heads that divide evenly, for exercises that take a model shape."""
    heads = rng.choice([8, 16, 32, 40])
    kv_heads = rng.choice([k for k in (1, 2, 4, 8, heads) if heads % k == 0])
    return ModelShape(vocab_size=rng.choice([32000, 50257, 128256]), hidden_size=heads * rng.choice([64, 128]),
                      intermediate_size=rng.randrange(1024, 16384, 256), num_layers=rng.randint(4, 48),
                      num_attention_heads=heads, num_key_value_heads=kv_heads)


def random_task(rng: random.Random) -> dict:
    """A task description as chapter 8 writes it (`n_train`, `labels`, `pairs`, `output`, `new_knowledge`) that only
    one recipe fits: never both answer pairs and labels, never both code output and new knowledge."""
    labels = rng.sample(["negative", "neutral", "positive", "spam", "urgent", "billing", "other"], rng.randint(2, 5))
    shape = rng.choice(["pairs", "labels", "rows"])
    output, new_knowledge = rng.choice([("code", False), ("text", True), ("text", False)])
    return {"n_train": rng.choice([rng.randint(50, 999), rng.randint(1_000, 200_000)]),
            "labels": labels if shape == "labels" else None, "pairs": shape == "pairs",
            "output": output, "new_knowledge": new_knowledge}
