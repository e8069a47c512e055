"""lorakit.evaluation.before_after: answers with their exact match, the before/after table, logged values, memory release."""

import pytest

from lorakit.data.datasets import make_rows
from lorakit.evaluation import answers_and_match, exact_match, generate_answers
from lorakit.evaluation.generation import before_after_table
from lorakit.memory.peak import release_memory, trim_heap
from lorakit.training import logged_values


def test_answers_and_match_agrees_with_exact_match(tiny_base):
    model, tokenizer = tiny_base
    _, rows = make_rows("instruction", 1, 6, seed=3)
    answers, rate = answers_and_match(model, tokenizer, rows, max_new_tokens=6)
    assert answers == generate_answers(model, tokenizer, [r["prompt"] for r in rows], 6)
    assert rate == exact_match(model, tokenizer, rows, max_new_tokens=6)


def test_answers_and_match_counts_right_answers(tiny_base):
    model, tokenizer = tiny_base
    _, rows = make_rows("instruction", 1, 4, seed=3)
    answers = generate_answers(model, tokenizer, [r["prompt"] for r in rows], 6)
    rigged = [{**r, "response": a if i % 2 == 0 else a + " no"} for i, (r, a) in enumerate(zip(rows, answers))]
    assert answers_and_match(model, tokenizer, rigged, max_new_tokens=6)[1] == 0.5
    with pytest.raises(ValueError, match="rows must not be empty"):
        answers_and_match(model, tokenizer, [])


def test_before_after_table_lines_and_cut():
    rows = [{"prompt": "Is 7 even or odd?", "response": "odd"}, {"prompt": "x" * 80, "response": "1"}]
    table = before_after_table(rows, ["The number 7 is odd.", "no"], ["odd", "1"], width=20).splitlines()
    assert len(table) == 3 and table[0].startswith("prompt")
    assert "Is 7 even or odd?" in table[1] and table[1].rstrip().endswith("| odd")
    assert "x" * 19 + "…" in table[2] and "x" * 20 not in table[2]
    assert len(before_after_table(rows * 5, ["a"] * 10, ["b"] * 10, limit=3).splitlines()) == 4
    with pytest.raises(ValueError, match="one entry per row"):
        before_after_table(rows, ["a"], ["b", "c"])


def test_logged_values_keeps_training_logs_in_order():
    history = [{"rewards/margins": 0.0, "step": 1}, {"loss": 0.6, "step": 2}, {"rewards/margins": 0.4, "step": 3},
               {"eval_rewards/margins": 0.9, "step": 3}]
    assert logged_values(history, "rewards/margins") == [0.0, 0.4]
    assert logged_values(history, "eval_rewards/margins") == [0.9]
    assert logged_values(history, "missing") == []


def _rss() -> int:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS:")).split()[1]) * 1024


@pytest.mark.skipif(not open("/proc/self/status").read(), reason="needs Linux /proc")
@pytest.mark.parametrize("release", [release_memory, trim_heap])
def test_release_memory_hands_freed_heap_back(release):
    """Both hand back heap that refcounting already freed (trim_heap is what every training run does first)."""
    chunks = [bytes(1024) + bytes([i % 256]) for i in range(300_000)]  # ~300 MiB of malloc'd (not mmap'd) blocks
    keep = chunks[::64]  # survivors scattered through the heap: glibc cannot shrink it from the top alone
    del chunks
    held = _rss()
    release()
    assert _rss() < held - 100 * 2**20
    assert len(keep) == 4688  # the survivors are still there
