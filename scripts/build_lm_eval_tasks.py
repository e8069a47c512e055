"""Rebuild the data files of lorakit's lm-evaluation-harness tasks (lorakit/assets/lm_eval_tasks/).

    python scripts/build_lm_eval_tasks.py

- capitals.jsonl: 40 countries and their capitals (general knowledge a pretrained LM has), each with three other
  capitals from the list as distractors and the right answer's position, both drawn from a seeded generator;
- instruction.jsonl: the course's own instruction eval rows (`lorakit.data.datasets.make_rows("instruction", seed=0)`: the
  first 40 eval rows, which chapters' training rows never repeat), each with its right and its plausible wrong answer
  in a seeded order.
Deterministic: running it again writes the same bytes.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lorakit.data.datasets import make_rows  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "lorakit" / "assets" / "lm_eval_tasks"
N_ROWS = 40
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Russia": "Moscow", "the United Kingdom": "London", "Egypt": "Cairo", "Greece": "Athens",
    "Portugal": "Lisbon", "Austria": "Vienna", "Poland": "Warsaw", "Ireland": "Dublin", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen", "the Netherlands": "Amsterdam",
    "Belgium": "Brussels", "Canada": "Ottawa", "Australia": "Canberra", "India": "New Delhi", "Brazil": "Brasília",
    "Argentina": "Buenos Aires", "Mexico": "Mexico City", "Peru": "Lima", "Chile": "Santiago", "Kenya": "Nairobi",
    "Thailand": "Bangkok", "South Korea": "Seoul", "Turkey": "Ankara", "Iran": "Tehran", "Hungary": "Budapest",
    "the Czech Republic": "Prague", "Cuba": "Havana", "Vietnam": "Hanoi", "Indonesia": "Jakarta",
    "the Philippines": "Manila", "Colombia": "Bogotá",
}


def capital_rows(rng: random.Random) -> list[dict]:
    rows = []
    for country, capital in CAPITALS.items():
        choices = rng.sample([c for c in CAPITALS.values() if c != capital], 3)
        answer = rng.randrange(4)
        choices.insert(answer, capital)
        rows.append({"country": country, "capital": capital, "choices": choices, "answer": answer})
    return rows


def instruction_rows(rng: random.Random) -> list[dict]:
    rows = []
    for row in make_rows("instruction", n_train=1, n_eval=N_ROWS, seed=0)[1]:
        answer = rng.randrange(2)
        choices = [row["wrong"], row["response"]] if answer else [row["response"], row["wrong"]]
        rows.append({"task": row["task"], "prompt": row["prompt"], "response": row["response"], "choices": choices,
                     "answer": answer})
    return rows


def write(name: str, rows: list[dict]) -> None:
    (OUT / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    assert len(CAPITALS) == N_ROWS
    write("capitals.jsonl", capital_rows(random.Random("capitals")))
    write("instruction.jsonl", instruction_rows(random.Random("instruction")))
