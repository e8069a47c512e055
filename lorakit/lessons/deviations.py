"""Where the course differs from the Training Guide, in one table (chapters 1, 3 and 6 print their part).

Each row quotes the guide verbatim, gives the course's value read from the code that uses it (`lorakit.config.recipes`,
`lorakit.training.schedules`), and says whether the course follows the guide; where it does not, the reason and the evidence
(computed from the built-in data and model when the row is printed).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.shapes import tiny_config

TOPICS = ("dropout", "learning rate", "recipes")
# The course's dropout table (chapter 1): (at most this many training examples, dropout), the last band open.
DROPOUT_BANDS = ((999, 0.2), (9_999, 0.1), (100_000, 0.05), (None, 0.0))


@dataclass(frozen=True)
class Deviation:
    """One setting: the guide's words, the course's value, whether they agree, and why not."""

    topic: str
    setting: str
    guide: str
    course: str
    follows: bool
    reason: str = ""
    evidence: str = ""


def dropout_for(n_examples: int) -> float:
    """The course's LoRA dropout for `n_examples` training examples (`DROPOUT_BANDS`, the guide's bands)."""
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        raise ValueError(f"n_examples must be an integer ≥ 1, got {n_examples!r}")
    return next(dropout for limit, dropout in DROPOUT_BANDS if limit is None or n_examples <= limit)


def _lr(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-")


def _steps_per_epoch(name: str, batch: int) -> int:
    from ..data.datasets import DEFAULT_SIZES

    return -(-DEFAULT_SIZES[name][0] // batch)


def _code_rows_kept(max_length: int) -> tuple[int, int]:
    from ..data.datasets import DEFAULT_SIZES, load_dataset
    from ..models.load import load_tokenizer

    data = load_dataset("code", load_tokenizer("tiny"), max_length=max_length)
    return len(data.train), DEFAULT_SIZES["code"][0]


def deviations() -> list[Deviation]:
    """Every setting the guide states that the course either follows or changes, with the course's live value."""
    from ..config.recipes import RECIPES
    from ..training.schedules import LR_RANGES

    rng = {k: f"{_lr(lo)}–{_lr(hi)}" for k, (lo, hi) in LR_RANGES.items()}
    inst, code, dom, cls, dpo = (RECIPES[n] for n in ("instruction", "code", "domain", "classification", "dpo"))
    batch = inst.per_device_train_batch_size * inst.gradient_accumulation_steps
    kept, total = _code_rows_kept(code.max_length)
    positions = tiny_config()["max_position_embeddings"]
    return [
        Deviation("dropout", "< 1K examples", "| 0.2 | Very small datasets (<1K examples) |", f"{dropout_for(999):g}",
                  dropout_for(999) == 0.2),
        Deviation("dropout", "< 10K examples", "| 0.1 | Small datasets (<10K examples) |", f"{dropout_for(9_999):g}",
                  dropout_for(9_999) == dropout_for(1_000) == 0.1),
        Deviation("dropout", "medium", "| 0.05 | Medium datasets, general use |", f"{dropout_for(100_000):g} (10K–100K)",
                  dropout_for(100_000) == dropout_for(10_000) == 0.05),
        Deviation("dropout", "> 100K examples", "| 0.0 | Large datasets (>100K examples), large models |",
                  f"{dropout_for(100_001):g}", dropout_for(100_001) == 0.0),
        Deviation("learning rate", "LoRA", "| LoRA | **1e-4 to 3e-4** |", rng["LoRA"], LR_RANGES["LoRA"] == (1e-4, 3e-4)),
        Deviation("learning rate", "QLoRA", "| QLoRA | **1e-4 to 2e-4** |", rng["QLoRA"],
                  LR_RANGES["QLoRA"] == (1e-4, 2e-4)),
        Deviation("learning rate", "DoRA", "| DoRA | **5e-5 to 2e-4** |", rng.get("DoRA", "—"),
                  LR_RANGES.get("DoRA") == (5e-5, 2e-4)),
        Deviation("learning rate", "DPO", "lower (1e-5) for DPO", rng["DPO"], False,
                  "the guide gives two DPO rates (1e-5 in a takeaway, 5e-5 in its recipe); the range holds both",
                  f"1e-5 and 5e-5 lie in {rng['DPO']}; the dpo recipe uses {_lr(dpo.learning_rate)} as the guide's "
                  "recipe does"),
        Deviation("recipes", "instruction batch", "# LR: 2e-4, Epochs: 3, Batch: 32 (via accumulation)",
                  f"{batch} ({inst.per_device_train_batch_size} × {inst.gradient_accumulation_steps}), "
                  f"{inst.num_train_epochs:g} epochs", batch == 32,
                  "the built-in instruction set is small: batch 32 leaves few optimizer steps per epoch",
                  f"{_steps_per_epoch('instruction', 32)} steps/epoch at 32 vs {_steps_per_epoch('instruction', batch)}"
                  f" at {batch} on its {_steps_per_epoch('instruction', 1):,} rows"),
        Deviation("recipes", "code max length", "# LR: 1e-4, Epochs: 2-3, Max seq length: 2048+",
                  f"max_length {code.max_length}, {code.num_train_epochs:g} epochs, LR {_lr(code.learning_rate)}",
                  code.max_length >= 2048,
                  f"the built-in model has {positions} positions, so 2048 cannot be used; every built-in code row "
                  f"fits at {code.max_length}",
                  f"load_dataset('code', max_length={code.max_length}) keeps {kept} of {total} training rows"),
        Deviation("recipes", "domain epochs and data", "# LR: 5e-5, Epochs: 5-10, Mix with general data",
                  f"{dom.num_train_epochs:g} epochs, LR {_lr(dom.learning_rate)}, no general data mixed in",
                  dom.num_train_epochs >= 5,
                  "the chapter budget (3 minutes per notebook on a CPU); chapter 5 shows forgetting and names mixing "
                  "in general data as its fix",
                  "mixing measured in chapter 5 (a quarter general text keeps the forgetting ratio under 3, the "
                  "domain data alone do not); 3 against 5–10 epochs not measured"),
        Deviation("recipes", "classification dropout", "lora_dropout=0.1,", f"{cls.lora_dropout:g}",
                  cls.lora_dropout == 0.1),
        Deviation("recipes", "classification epochs", "# LR: 2e-4, Epochs: 5-10", f"{cls.num_train_epochs:g} epochs",
                  cls.num_train_epochs >= 5, "the chapter budget (3 minutes per notebook on a CPU)",
                  "not measured: no run compares 3 with 5–10 epochs"),
        Deviation("recipes", "SFT then DPO", "# First: SFT with LR 2e-4",
                  f"SFT {_lr(dpo.sft_learning_rate)}, DPO {_lr(dpo.learning_rate)}",
                  dpo.sft_learning_rate == 2e-4 and dpo.learning_rate == 5e-5),
    ]


def deviations_table(topic: str | None = None) -> str:
    """The rows of one topic (or all) as aligned text lines: setting, guide, course, follows, reason, evidence."""
    if topic is not None and topic not in TOPICS:
        raise ValueError(f"topic must be None or one of {list(TOPICS)}, got {topic!r}")
    lines = []
    for d in deviations():
        if topic is None or d.topic == topic:
            status = "follows the guide" if d.follows else "differs"
            lines.append(f"{d.setting:24s} guide: {d.guide}\n{'':24s} course: {d.course} ({status})")
            if not d.follows:
                lines.append(f"{'':24s} why: {d.reason}\n{'':24s} evidence: {d.evidence}")
    return "\n".join(lines)
