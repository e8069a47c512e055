"""What an adapter learned and what it forgot (chapter 7).

- `perplexity`: exp(mean token loss) on texts or a tokenised dataset.
- `generate_answers` / `exact_match`: greedy answers to chat prompts, compared with the one right answer.
- `classification_accuracy`: arg-max accuracy of a sequence-classification head.
- `forgetting`: base-corpus perplexity with the adapter disabled vs enabled.
- `compare_adapters`: A/B of several saved adapters on one base model, side by side.
- `merged_matches_unmerged`: merging LoRA into the base weights gives the same outputs.
- `generation_stats`: repetition, empty, runaway and identical answers (used by `lorakit.diagnose`).

- `run_lm_eval`: EleutherAI's lm-evaluation-harness (the guide's `lm_eval.simple_evaluate(model="hf", ...)`) on a
  local model folder, with or without a saved adapter, on the small offline tasks lorakit ships (`TASKS_DIR`:
  `lorakit_capitals_mc`, `lorakit_capitals_gen`, `lorakit_instruction_mc`). Needs the `eval` extra (`lm-eval`).

Online, the same call scores a hub model on standard benchmarks (downloads the tasks):
`lm_eval --model hf --model_args pretrained=meta-llama/Llama-3.2-1B,peft=runs/instruction/adapter --tasks hellaswag`.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from .run_memory import release_memory

END_OF_TURN = "<|end|>"
TASKS_DIR = Path(__file__).resolve().parent / "assets" / "lm_eval_tasks"
LM_EVAL_TASKS = {"lorakit_capitals_mc": "acc", "lorakit_capitals_gen": "exact_match", "lorakit_instruction_mc": "acc"}


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: Iterable[str] | Any, max_length: int = 256,
               batch_size: int = 8) -> float:
    """exp(mean loss per predicted token) over `texts` (strings) or a dataset with input_ids/labels."""
    was_training = model.training
    model.eval()
    total_loss, total_tokens = 0.0, 0
    rows = list(texts)
    if not rows:
        raise ValueError("texts must not be empty")
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        if isinstance(chunk[0], str):
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                            add_special_tokens=False)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        else:
            width = max(len(r["input_ids"]) for r in chunk)
            pad = tokenizer.pad_token_id
            enc = {"input_ids": torch.tensor([list(r["input_ids"]) + [pad] * (width - len(r["input_ids"])) for r in chunk]),
                   "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                                   for r in chunk])}
            labels = torch.tensor([list(r.get("labels", r["input_ids"])) + [-100] * (width - len(r["input_ids"]))
                                   for r in chunk])
        enc = {k: v.to(_device(model)) for k, v in enc.items()}
        logits = model(**enc).logits[:, :-1].float()
        target = labels[:, 1:].to(logits.device)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        total_loss += loss.item()
        total_tokens += int((target != -100).sum())
    model.train(was_training)
    return math.exp(total_loss / max(1, total_tokens))


def _stop_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an answer: eos and, where the vocabulary has it, the chat end-of-turn token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end, int) and end != tokenizer.unk_token_id and end not in ids:
        ids.append(end)
    return ids


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 16,
                     batch_size: int = 16, return_finished: bool = False) -> list[str] | tuple[list[str], list[bool]]:
    """Greedy answers to chat prompts (left-padded batches, stopping at the end-of-turn token `<|end|>`).

    With `return_finished=True` also returns, per answer, whether it stopped at end-of-turn (False: it ran into
    `max_new_tokens`, a runaway answer).
    """
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    stop = _stop_ids(tokenizer)
    answers, finished = [], []
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) for p in prompts[start:start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(_device(model))
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
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


def exact_match(model: Any, tokenizer: Any, rows: Sequence[dict], max_new_tokens: int = 16) -> float:
    """Fraction of rows whose greedy answer equals row['response'] exactly (after stripping spaces)."""
    return answers_and_match(model, tokenizer, rows, max_new_tokens)[1]


@torch.no_grad()
def classification_accuracy(model: Any, tokenizer: Any, rows: Sequence[dict], batch_size: int = 32) -> float:
    """Fraction of rows ({"text", "label"}) whose arg-max class equals the label (sequence-classification models)."""
    if not rows:
        raise ValueError("rows must not be empty")
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        enc = tokenizer([r["text"] for r in chunk], return_tensors="pt", padding=True).to(_device(model))
        predicted = model(**enc).logits.argmax(-1).tolist()
        correct += sum(p == r["label"] for p, r in zip(predicted, chunk))
    model.train(was_training)
    return correct / len(rows)


def forgetting(model: Any, tokenizer: Any, base_texts: Sequence[str], model_before: Any = None) -> dict[str, float]:
    """Base-corpus perplexity before and after fine-tuning, and their ratio (> 1 means the model forgot).

    "Before" is `model` with its adapter disabled (`with model.disable_adapter():`), or `model_before` when given
    (e.g. the base model, to compare with a merged or fully fine-tuned `model`).
    """
    if model_before is not None:
        before = perplexity(model_before, tokenizer, base_texts)
    else:
        with model.disable_adapter():
            before = perplexity(model, tokenizer, base_texts)
    after = perplexity(model, tokenizer, base_texts)
    return {"base_perplexity": before, "adapted_perplexity": after, "ratio": after / before}


def compare_adapters(model: Any, tokenizer: Any, adapters: dict[str, str], rows: Sequence[dict],
                     max_new_tokens: int = 16) -> list[dict[str, Any]]:
    """Load each saved adapter onto one peft model (`load_adapter`/`set_adapter`) and answer the same rows.

    `model` is a base model (the first adapter wraps it with `PeftModel.from_pretrained`) or a peft model already.
    Returns one dict per row: the prompt, the expected answer and each adapter's answer, plus a final "accuracy" row.
    """
    from peft import PeftModel

    from .compat import quiet_peft_deprecations

    if not adapters:
        raise ValueError("adapters must name at least one saved adapter folder, got {}")
    if not isinstance(model, PeftModel):
        first_name, first_path = next(iter(adapters.items()))
        with quiet_peft_deprecations():
            model = PeftModel.from_pretrained(model, first_path, adapter_name=first_name)
    answers: dict[str, list[str]] = {}
    for name, path in adapters.items():
        if name not in model.peft_config:
            model.load_adapter(path, adapter_name=name)
        model.set_adapter(name)
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
    inputs = {k: v.to(_device(model)) for k, v in inputs.items()}
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


def knowledge_texts() -> list[str]:
    """The capitals task's facts as sentences ("The capital of France is Paris."): text whose perplexity shows
    whether a fine-tune damaged what a pretrained model knew."""
    import json

    rows = [json.loads(line) for line in (TASKS_DIR / "capitals.jsonl").read_text(encoding="utf-8").splitlines()]
    return [f"The capital of {r['country']} is {r['capital']}." for r in rows]


def run_lm_eval(model_dir: str | Path, tasks: Sequence[str], peft: str | Path | None = None, limit: int | None = None,
                batch_size: int = 16, chat: bool = False) -> dict[str, float]:
    """Score `tasks` (names in LM_EVAL_TASKS) with lm-evaluation-harness on the model saved in `model_dir` (fp32,
    CPU), with the adapter saved in `peft` when given; `chat=True` wraps each prompt in the model's chat template.
    Returns each task's score: accuracy for multiple choice, exact match for generation. Offline."""
    unknown = [t for t in tasks if t not in LM_EVAL_TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty list of {list(LM_EVAL_TASKS)}, got {list(tasks)!r}")
    if not (Path(model_dir) / "config.json").is_file():
        raise ValueError(f"model_dir must be a saved model folder with a config.json, got {str(model_dir)!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer (questions per task), got {limit!r}")
    import lm_eval
    from lm_eval.tasks import TaskManager

    from .quiet import harness_output_kept_back, no_loading_bars

    model_args = {"pretrained": str(model_dir), "dtype": "float32", "device": "cpu"}
    if peft is not None:
        model_args["peft"] = str(peft)
    with no_loading_bars(), harness_output_kept_back():
        results = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=list(tasks), limit=limit,
                                          batch_size=batch_size, apply_chat_template=chat, log_samples=False,
                                          task_manager=TaskManager(include_path=str(TASKS_DIR)), verbosity="ERROR",
                                          bootstrap_iters=0)
    release_memory()  # the harness's copy of the model is garbage now
    return {t: float(results["results"][t][f"{LM_EVAL_TASKS[t]},none"]) for t in tasks}
