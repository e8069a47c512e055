"""What an adapter answers (chapters 5, 6 and 7).

- `generate_answers` / `answers_and_match`: greedy answers to chat prompts, and their exact-match rate.
- `compare_adapters`: A/B of several saved adapters on one base model, side by side.
- `merged_matches_unmerged`: merging LoRA into the base weights gives the same outputs.
- `generation_stats`: repetition, empty, runaway and identical answers (read by `lorakit.evaluation.diagnose`).
- `before_after_table`: the same prompts answered before and after fine-tuning, side by side.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

END_OF_TURN = "<|end|>"


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def _stop_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an answer: eos and, where the vocabulary has it, the chat end-of-turn token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end, int) and end != tokenizer.unk_token_id and end not in ids:
        ids.append(end)
    return ids


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 16,
                     batch_size: int = 16, return_finished: bool = False, temperature: float | None = None,
                     top_p: float = 1.0, seed: int = 0) -> list[str] | tuple[list[str], list[bool]]:
    """Answers to chat prompts (left-padded batches, stopping at the end-of-turn token `<|end|>`): greedy, or
    sampled at `temperature` (> 0) with nucleus `top_p` (0 < top_p ≤ 1) from torch's generator seeded with `seed`.

    With `return_finished=True` also returns, per answer, whether it stopped at end-of-turn (False: it ran into
    `max_new_tokens`, a runaway answer).
    """
    if temperature is not None and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be None (greedy) or a number > 0, got {temperature!r}")
    if not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")
    sampling = dict(do_sample=False) if temperature is None else dict(do_sample=True, temperature=temperature,
                                                                      top_p=top_p)
    if temperature is not None:
        torch.manual_seed(seed)
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    stop = _stop_ids(tokenizer)
    answers, finished = [], []
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) for p in prompts[start:start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model_device(model))
            out = model.generate(**enc, max_new_tokens=max_new_tokens, **sampling,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=stop)
            new = out[:, enc["input_ids"].shape[1]:]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
            finished += [any(t in stop for t in row) for row in new.tolist()]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    answers = [a.strip() for a in answers]
    return (answers, finished) if return_finished else answers


def _matches(answer: str, expected: str) -> bool:
    return answer.strip() == expected.strip()


def answers_and_match(model: Any, tokenizer: Any, rows: Sequence[dict], max_new_tokens: int = 16
                      ) -> tuple[list[str], float]:
    """(greedy answers to rows' prompts, the fraction equal to row['response'] exactly after stripping spaces), so a
    lesson can show the answers beside their score."""
    if not rows:
        raise ValueError("rows must not be empty")
    answers = generate_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    return answers, sum(_matches(a, r["response"]) for a, r in zip(answers, rows)) / len(rows)


def compare_adapters(model: Any, tokenizer: Any, adapters: dict[str, str], rows: Sequence[dict],
                     max_new_tokens: int = 16) -> list[dict[str, Any]]:
    """Load each saved adapter onto one peft model (`load_adapter`/`set_adapter`) and answer the same rows.

    `model` is a base model (the first adapter wraps it with `PeftModel.from_pretrained`) or a peft model already.
    Returns one dict per row: the prompt, the expected answer and each adapter's answer, plus a final "accuracy" row.
    The names label the table; an adapter the model does not hold yet is loaded under peft name `compared_<i>_`,
    because peft (0.22) checks a loaded adapter's missing keys by searching parameter names for the adapter's name,
    and a short name such as "B" occurs in every other adapter's `lora_B` keys.
    """
    from peft import PeftModel

    from ..compat.versions import quiet_peft_deprecations

    if not adapters:
        raise ValueError("adapters must name at least one saved adapter folder, got {}")
    peft_names = {name: name if isinstance(model, PeftModel) and name in model.peft_config else f"compared_{i}_"
                  for i, name in enumerate(adapters)}
    if not isinstance(model, PeftModel):
        first_name, first_path = next(iter(adapters.items()))
        with quiet_peft_deprecations():
            model = PeftModel.from_pretrained(model, first_path, adapter_name=peft_names[first_name])
    answers: dict[str, list[str]] = {}
    for name, path in adapters.items():
        if peft_names[name] not in model.peft_config:
            model.load_adapter(path, adapter_name=peft_names[name])
        model.set_adapter(peft_names[name])
        answers[name] = generate_answers(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens)
    table = [{"prompt": r["prompt"], "expected": r["response"], **{n: a[i] for n, a in answers.items()}}
             for i, r in enumerate(rows)]
    table.append({"prompt": "accuracy", "expected": "",
                  **{n: sum(_matches(x, r["response"]) for x, r in zip(a, rows)) / len(rows) for n, a in answers.items()}})
    return table


@torch.no_grad()
def merged_matches_unmerged(model: Any, inputs: dict[str, torch.Tensor], atol: float = 1e-4) -> tuple[bool, float]:
    """Merge a copy of the peft model's adapter into its weights (`merge_and_unload`) and compare logits with the
    unmerged model on `inputs`. The model itself is left unmerged. Returns (equal within atol, max abs diff)."""
    was_training = model.training
    model.eval()
    inputs = {k: v.to(model_device(model)) for k, v in inputs.items()}
    try:
        unmerged = model(**inputs).logits.float()
        merged_model = copy.deepcopy(model).merge_and_unload()
        merged = merged_model(**inputs).logits.float()
    finally:
        model.train(was_training)
    diff = (merged - unmerged).abs().max().item()
    return diff <= atol, diff


def generation_stats(answers: Sequence[str], finished: Sequence[bool] | None = None,
                     max_chars: int = 200) -> dict[str, float]:
    """Rates over generated answers: empty; runaway (did not stop at end-of-turn, when `finished` is given, or
    ≥ max_chars characters); repetition (mean over non-empty answers of 1 - distinct words / words); collapse
    (`same_answer_rate`: the share of the single most common answer)."""
    if not answers:
        raise ValueError("answers must not be empty")
    if finished is not None and len(finished) != len(answers):
        raise ValueError(f"finished must have one flag per answer ({len(answers)}), got {len(finished)}")
    done = list(finished) if finished is not None else [True] * len(answers)
    split = [a.split() for a in answers if a.split()]
    return {
        "empty_rate": sum(not a.strip() for a in answers) / len(answers),
        "runaway_rate": sum(len(a) >= max_chars or not d for a, d in zip(answers, done)) / len(answers),
        "repetition_rate": sum(1 - len(set(w)) / len(w) for w in split) / len(split) if split else 0.0,
        "same_answer_rate": max(Counter(answers).values()) / len(answers),
    }


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
