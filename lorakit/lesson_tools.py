"""Small helpers for lessons that train a real language model in a notebook kernel (chapter 6).

- `answers_and_match`: greedy answers to held-out rows and their exact-match rate, so a lesson can show both.
- `before_after_table`: the same prompts answered before and after fine-tuning, side by side.

Free a model between cells with `lorakit.run_memory.release_memory`; read logged metrics with
`lorakit.logs.values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .evaluate import generate_answers


def answers_and_match(model: Any, tokenizer: Any, rows: Sequence[dict], max_new_tokens: int = 6
                      ) -> tuple[list[str], float]:
    """(greedy answers to rows' prompts, fraction equal to rows' responses exactly after stripping spaces)."""
    if not rows:
        raise ValueError("rows must not be empty")
    answers = generate_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    return answers, sum(a == r["response"].strip() for a, r in zip(answers, rows)) / len(rows)


def before_after_table(rows: Sequence[dict], before: Sequence[str], after: Sequence[str], limit: int = 6,
                       width: int = 34) -> str:
    """The first `limit` rows as aligned lines: prompt, expected answer, answer before, answer after."""
    if not len(rows) == len(before) == len(after):
        raise ValueError(f"rows, before and after must have one entry per row, got {len(rows)}, {len(before)}, "
                         f"{len(after)}")

    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width - 1] + "…"

    lines = [f"{'prompt':{width}s} | {'expected':10s} | {'before':{width}s} | after"]
    for row, old, new in list(zip(rows, before, after))[:limit]:
        lines.append(f"{cut(row['prompt']):{width}s} | {row['response']:10s} | {cut(old):{width}s} | {cut(new)}")
    return "\n".join(lines)

