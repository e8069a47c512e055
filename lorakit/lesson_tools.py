"""Small helpers for lessons that train a real language model in a notebook kernel (chapter 6).

- `before_after_table`: the same prompts answered before and after fine-tuning, side by side.

Answers with their exact-match rate come from `lorakit.evaluate.answers_and_match`; free a model between cells
with `lorakit.run_memory.release_memory`; read logged metrics with `lorakit.logs.values`.
"""

from __future__ import annotations

from collections.abc import Sequence


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

