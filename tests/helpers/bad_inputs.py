"""Bad inputs tried against lorakit's public API, each with the field its error message must name.

tests/config/test_bad_inputs.py runs every case; docs/bad_inputs.md is the table `render()` makes from them
(`python -m tests.helpers.bad_inputs` rewrites it, and a test fails when the committed table differs).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NamedTuple

import lorakit
from lorakit import grading
from lorakit.config.recipes import field_table
from lorakit.evaluation.generation import generate_answers
from lorakit.evaluation.pitfalls import reproduce
from lorakit.models.load import load_base
from lorakit.models.shapes import LLAMA2_7B, ModelShape
from lorakit.training import schedules
from tests.helpers import REPO

DOC = REPO / "docs" / "bad_inputs.md"
SHAPE = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_layers=32, num_attention_heads=32,
             num_key_value_heads=32)


class Case(NamedTuple):
    function: Callable[..., Any]
    args: tuple
    kwargs: dict
    field: str  # the message must name it


def case(function: Callable[..., Any], *args: Any, field: str, **kwargs: Any) -> Case:
    return Case(function, args, kwargs, field)


CASES = [
    case(lorakit.get_recipe, "quickstart", field="r", r=0),
    case(lorakit.get_recipe, "quickstart", field="r", r=8.0),
    case(lorakit.get_recipe, "quickstart", field="r", r=2048),
    case(lorakit.get_recipe, "quickstart", field="lora_alpha", lora_alpha=0),
    case(lorakit.get_recipe, "quickstart", field="lora_alpha", lora_alpha=float("nan")),
    case(lorakit.get_recipe, "quickstart", field="lora_dropout", lora_dropout=0.9),
    case(lorakit.get_recipe, "quickstart", field="learning_rate", learning_rate=0),
    case(lorakit.get_recipe, "quickstart", field="learning_rate", learning_rate="2e-4"),
    case(lorakit.get_recipe, "quickstart", field="warmup_ratio", warmup_ratio=-0.1),
    case(lorakit.get_recipe, "quickstart", field="max_length", max_length=8),
    case(lorakit.get_recipe, "quickstart", field="target_modules", target_modules="attention"),
    case(lorakit.get_recipe, "quickstart", field="target_modules", target_modules=[]),
    case(lorakit.get_recipe, "quickstart", field="target_modules", target_modules=7),
    case(lorakit.get_recipe, "quickstart", field="layers_to_transform", layers_to_transform=[0]),
    case(lorakit.get_recipe, "quickstart", field="layers_to_transform", target_modules=["q_proj"],
         layers_to_transform=[-1]),
    case(lorakit.get_recipe, "quickstart", field="modules_to_save", modules_to_save=[""]),
    case(lorakit.get_recipe, "quickstart", field="precision", precision="fp8"),
    case(lorakit.get_recipe, "quickstart", field="quantization", quantization="nf2"),
    case(lorakit.get_recipe, "quickstart", field="optim", optim="lion"),
    case(lorakit.get_recipe, "quickstart", field="gradient_checkpointing", gradient_checkpointing="yes"),
    case(lorakit.get_recipe, "quickstart", field="per_device_train_batch_size", per_device_train_batch_size=0),
    case(lorakit.get_recipe, "quickstart", field="max_steps", max_steps=0),
    case(lorakit.get_recipe, "quickstart", field="dataset", dataset="poetry"),
    case(lorakit.get_recipe, "quickstart", field="seed", seed=-1),
    case(lorakit.get_recipe, "quickstart", field="rank", rank=8),
    case(lorakit.get_recipe, "qlora", field="recipe"),
    case(lorakit.estimate, LLAMA2_7B, field="precision", precision="fp8"),
    case(lorakit.estimate, LLAMA2_7B, field="quantization", quantization="nf2"),
    case(lorakit.estimate, LLAMA2_7B, field="optimizer", optimizer="lion"),
    case(lorakit.estimate, LLAMA2_7B, field="batch", batch=0),
    case(lorakit.estimate, LLAMA2_7B, field="seq_len", seq_len=1.5),
    case(lorakit.estimate, LLAMA2_7B, field="r", r=-4),
    case(lorakit.estimate, LLAMA2_7B, field="targets", targets=["qkv"]),
    case(lorakit.estimate, LLAMA2_7B, field="targets", targets=None),
    case(lorakit.estimate, LLAMA2_7B, field="gradient_checkpointing", gradient_checkpointing="no"),
    case(lorakit.estimate, LLAMA2_7B, field="full_finetune", quantization="nf4", full_finetune=True),
    case(lorakit.estimate, "llama-7b", field="shape"),
    case(ModelShape, field="hidden_size", **{**SHAPE, "hidden_size": 0}),
    case(ModelShape, field="num_key_value_heads", **{**SHAPE, "num_key_value_heads": 5}),
    case(ModelShape, field="hidden_size", **{**SHAPE, "hidden_size": 4100}),
    case(ModelShape, field="head_dim", **{**SHAPE, "head_dim": "128"}),
    case(ModelShape, field="tie_word_embeddings", **{**SHAPE, "tie_word_embeddings": 1}),
    case(lorakit.count_lora_params, LLAMA2_7B, 0, field="r"),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="target_modules", target_modules=5),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="layers_to_transform", target_modules=["q_proj"],
         layers_to_transform=[32]),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="layers_to_transform", target_modules=["q_proj"],
         layers_to_transform=["0"]),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="modules_to_save", modules_to_save=["embed_tokens"]),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="num_labels", modules_to_save=["score"]),
    case(lorakit.count_lora_params, LLAMA2_7B, 8, field="use_dora", use_dora="yes"),
    case(lorakit.lora_table, LLAMA2_7B, field="r", ranks=[0]),
    case(lorakit.load_dataset, "poetry", field="name"),
    case(lorakit.load_dataset, "instruction", field="n_train", n_train=0),
    case(lorakit.load_dataset, "instruction", field="n_train", n_train=10**9),
    case(lorakit.load_dataset, "instruction", field="n_eval", n_eval=-1),
    case(lorakit.load_dataset, "instruction", field="seed", seed="one"),
    case(lorakit.load_dataset, "instruction", field="max_length", max_length=4),
    case(lorakit.load_dataset, "instruction", field="mask_prompt", mask_prompt="no"),
    case(lorakit.load_dataset, "domain", field="general_share", general_share=1.0),
    case(lorakit.load_dataset, "instruction", field="general_share", general_share=0.25),
    case(generate_answers, None, None, ["Is 4 even?"], field="temperature", temperature=0),
    case(generate_answers, None, None, ["Is 4 even?"], field="top_p", temperature=0.7, top_p=0.0),
    case(lorakit.load_dataset, "instruction", "tiny", field="tokenizer"),
    case(lorakit.train, field="r", r=0),
    case(lorakit.train, field="data", data="poetry"),
    case(lorakit.train, field="model", model=5),
    case(lorakit.train, field="output_dir", output_dir="/dev/null/run"),
    case(lorakit.train, field="resume_from_checkpoint", resume_from_checkpoint=1),
    case(lorakit.train, field="progress", progress="quiet"),
    case(load_base, field="quantization", quantization="nf3"),
    case(load_base, field="task", task="seq2seq"),
    case(load_base, field="num_labels", task="seq_cls", num_labels=1),
    case(load_base, field="device", device="tpu"),
    case(lorakit.choose_precision, "half", field="precision"),
    case(schedules.lr_curve, "exponential", 100, field="scheduler"),
    case(schedules.lr_curve, "cosine", 100, field="peak_lr", peak_lr=-1),
    case(schedules.warmup_steps, 0, 0.1, field="total_steps"),
    case(schedules.warmup_steps, 100, 1.5, field="warmup_ratio"),
    case(reproduce, "exploding", field="pitfall"),
    case(grading.grade_class, "/nonexistent-course", "01_hyperparameters", field="course_root"),
]


def _show(value: Any) -> str:
    if value is LLAMA2_7B:
        return "LLAMA2_7B"
    return repr(value)


def call_text(c: Case) -> str:
    """The call as a learner would type it, e.g. `get_recipe('quickstart', r=0)`."""
    arguments = [_show(a) for a in c.args] + [f"{k}={_show(v)}" for k, v in c.kwargs.items()]
    return f"{c.function.__name__}({', '.join(arguments)})"


def outcome(c: Case) -> tuple[str, str]:
    """(exception type, message) of running the case; ('none', '') when nothing was raised."""
    try:
        c.function(*c.args, **c.kwargs)
    except Exception as err:  # noqa: BLE001 - the point is to record whatever escapes
        return type(err).__name__, str(err)
    return "none", ""


def render() -> str:
    """docs/bad_inputs.md: the recipe fields' table (from their metadata), then one row per case with its error."""
    rows = ["# Bad inputs and the errors they get",
            "",
            "## Recipe fields",
            "",
            "What each field of `lorakit.Recipe` accepts, generated from the fields' metadata "
            "(`lorakit.config.recipes.field_table()`), which is also what validates a recipe and parses "
            "`lorakit train --set FIELD=VALUE`.",
            "",
            field_table().rstrip("\n"),
            "",
            "## Calls",
            "",
            "Every call below is run by `tests/config/test_bad_inputs.py`, which also checks that each message names the "
            "field; this page is generated from the same list (`python -m tests.helpers.bad_inputs`) and a test fails when "
            "it is out of date. Random values of the same fields are tried by the property tests in that file.",
            "",
            "| call | error | message |",
            "|---|---|---|"]
    for c in CASES:
        kind, message = outcome(c)
        cells = [f"`{call_text(c)}`", kind, message.replace("|", "\\|").replace("\n", " ")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)", file=sys.stderr)
