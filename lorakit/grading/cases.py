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
