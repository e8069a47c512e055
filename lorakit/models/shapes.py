"""Exact parameter counts from a model's shape alone (chapter 2).

A LoRA adapter on a linear layer `in → out` adds `r · (in + out)` parameters (A is r × in, B is out × r); DoRA adds
a magnitude vector of `out` more. Knowing the shapes of a Llama block is enough to count any configuration exactly,
and the counts here equal peft's `get_nb_trainable_parameters()` on instantiated models (see the tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..config.choices import check_bool, check_names, check_range, resolve_targets

HEAD_MODULES = ("lm_head", "score")
TINY_DIR = Path(__file__).resolve().parents[1] / "assets" / "tiny"  # the built-in model: config, tokenizer, weights


@dataclass(frozen=True)
class ModelShape:
    """The sizes that fix a Llama-family model's parameter count."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int | None = None
    tie_word_embeddings: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        for field_name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_attention_heads",
                           "num_key_value_heads"):
            check_range(field_name, getattr(self, field_name), 1, 10**7, int)
        if self.head_dim is not None:
            check_range("head_dim", self.head_dim, 1, 10**5, int)
        check_bool("tie_word_embeddings", self.tie_word_embeddings)
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                             f"num_key_value_heads ({self.num_key_value_heads})")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must divide by num_attention_heads "
                             f"({self.num_attention_heads}) unless head_dim is given")

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_config(cls, config: Any, name: str | None = None) -> "ModelShape":
        """The shape of a transformers Llama-style config (LlamaConfig, MistralConfig, Qwen2Config, ...)."""
        return cls(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
            num_key_value_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
            head_dim=getattr(config, "head_dim", None), tie_word_embeddings=bool(config.tie_word_embeddings),
            name=name or getattr(config, "name_or_path", "") or config.model_type,
        )

    def llama_config(self, **overrides: Any) -> Any:
        """A transformers LlamaConfig of this shape (the inverse of `from_config`), with `overrides` set."""
        from transformers import LlamaConfig

        return LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                           intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
                           num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
                           head_dim=self.dim_per_head, tie_word_embeddings=self.tie_word_embeddings, **overrides)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one decoder block."""
        h, hd = self.hidden_size, self.dim_per_head
        q, kv = self.num_attention_heads * hd, self.num_key_value_heads * hd
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, self.intermediate_size), "up_proj": (h, self.intermediate_size),
                "down_proj": (self.intermediate_size, h)}


LLAMA2_7B = ModelShape(32000, 4096, 11008, 32, 32, 32, name="LLaMA-2-7B")
LLAMA2_13B = ModelShape(32000, 5120, 13824, 40, 40, 40, name="LLaMA-2-13B")
LLAMA3_8B = ModelShape(128256, 4096, 14336, 32, 32, 8, name="LLaMA-3-8B")
# the course's GPU-scale real model (HuggingFaceTB/SmolLM2-1.7B-Instruct): its config.json's sizes, 1.71B parameters
SMOLLM2_1_7B = ModelShape(49152, 2048, 8192, 24, 32, 32, tie_word_embeddings=True, name="SmolLM2-1.7B")


def count_base_params(shape: ModelShape) -> int:
    """All parameters of the model: embeddings, blocks (linears + 2 RMSNorms), final norm, lm_head unless tied."""
    block = sum(i * o for i, o in shape.linear_shapes().values()) + 2 * shape.hidden_size
    embed = shape.vocab_size * shape.hidden_size
    return embed + shape.num_layers * block + shape.hidden_size + (0 if shape.tie_word_embeddings else embed)


def count_lora_params(
    shape: ModelShape,
    r: int,
    target_modules: str | Iterable[str] = "all-linear",
    layers_to_transform: Iterable[int] | None = None,
    use_dora: bool = False,
    modules_to_save: Iterable[str] | None = None,
    num_labels: int | None = None,
) -> int:
    """Trainable parameters of a LoRA adapter on `shape`: r·(in+out) per adapted linear (+ out for DoRA), plus any
    fully trained `modules_to_save` ("lm_head": vocab × hidden; "score": hidden × num_labels)."""
    check_range("r", r, 1, 10**5, int)
    if isinstance(target_modules, str) and layers_to_transform is not None:
        raise ValueError("layers_to_transform needs target_modules as a list of module names, not a preset string "
                         "(peft raises '`layers_to_transform` cannot be used when `target_modules` is a str')")
    names = resolve_targets(target_modules)
    check_bool("use_dora", use_dora)
    if isinstance(layers_to_transform, int) and not isinstance(layers_to_transform, bool):  # peft takes one index too
        layers_to_transform = [layers_to_transform]
    if layers_to_transform is None:
        layers = list(range(shape.num_layers))
    elif not isinstance(layers_to_transform, (list, tuple, range)) or not layers_to_transform:
        raise ValueError("layers_to_transform must be None (all layers) or a non-empty list of layer indices, "
                         f"got {layers_to_transform!r}")
    else:
        for layer in layers_to_transform:
            check_range("layers_to_transform[i]", layer, 0, 10**7, int)
        layers = sorted(set(layers_to_transform))
        bad = [i for i in layers if i >= shape.num_layers]
        if bad:
            raise ValueError(f"layers_to_transform has indices {bad} outside 0..{shape.num_layers - 1}")
    if modules_to_save is not None:
        check_names("modules_to_save", modules_to_save)
    shapes = shape.linear_shapes()
    per_layer = sum(r * (shapes[n][0] + shapes[n][1]) + (shapes[n][1] if use_dora else 0) for n in names)
    total = per_layer * len(layers)
    for module in modules_to_save or ():
        if module == "lm_head":
            total += shape.vocab_size * shape.hidden_size
        elif module == "score":
            check_range("num_labels", num_labels, 1, 10**6, int)
            total += shape.hidden_size * num_labels
        else:
            raise ValueError(f"modules_to_save entries must be in {list(HEAD_MODULES)}, got {module!r}")
    return total


def lora_table(shape: ModelShape = LLAMA2_7B, ranks: Iterable[int] = (4, 8, 16, 32, 64, 128),
               target_sets: Iterable[str] = ("q,v", "q,k,v,o", "all-linear")) -> list[dict[str, Any]]:
    """Rows of (rank, targets, trainable params, % of the base model) for `shape`."""
    base = count_base_params(shape)
    rows = []
    for r in ranks:
        for targets in target_sets:
            n = count_lora_params(shape, r, targets)
            rows.append({"r": r, "targets": targets, "trainable": n, "percent_of_base": 100 * n / base})
    return rows


def lora_table_7b() -> list[dict[str, Any]]:
    """`lora_table` for LLaMA-2-7B: r in 4…128 × targets q,v / q,k,v,o / all-linear, count and % of the base."""
    return lora_table(LLAMA2_7B)


def tiny_config() -> dict[str, Any]:
    """The built-in model's config.json (no torch, no weights)."""
    return json.loads((TINY_DIR / "config.json").read_text())


def tiny_shape() -> ModelShape:
    """The built-in model's shape, read from its config.json."""
    config = tiny_config()
    return ModelShape(config["vocab_size"], config["hidden_size"], config["intermediate_size"],
                      config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"],
                      head_dim=config.get("head_dim"), tie_word_embeddings=bool(config.get("tie_word_embeddings")),
                      name="lorakit tiny")
