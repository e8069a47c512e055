"""Is the instruction dataset learnable by the built-in tiny model? A plain peft LoRA run, no lorakit.training.pipeline.

    .venv/bin/python scripts/check_learnable.py [--steps 200] [--lr 1e-3] [--batch 16] [--dataset instruction]

Prints the base model's answer-only eval loss and exact match, then the same after LoRA (r=16, alpha=32,
all-linear), with steps, seconds and learning rate, as one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

import torch


@torch.no_grad()
def eval_loss(model, dataset, collator, batch_size: int = 32) -> float:
    """Mean loss per answer token (labels != -100) over a tokenised dataset."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        target = batch["labels"][:, 1:]
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                   ignore_index=-100, reduction="sum").item()
        count += int((target != -100).sum())
    model.train()
    return total / count


def per_task(model, tokenizer, rows, show: int = 0) -> dict[str, float]:
    """Exact match per task and overall; `show` wrong answers per task are printed."""
    from lorakit.evaluation import generate_answers

    answers = generate_answers(model, tokenizer, [r["prompt"] for r in rows])
    out: dict[str, list[bool]] = {}
    for answer, row in zip(answers, rows):
        right = answer == row["response"].strip()
        out.setdefault(row.get("task", "all"), []).append(right)
        if not right and sum(not x for x in out[row.get("task", "all")]) <= show:
            print(f"  [{row.get('task')}] {row['prompt']!r} -> {answer!r} (expected {row['response']!r})")
    scores = {task: round(sum(v) / len(v), 3) for task, v in sorted(out.items())}
    scores["all"] = round(sum(sum(v) for v in out.values()) / len(rows), 3)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="instruction")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-train", type=int, default=1600)
    parser.add_argument("--n-eval", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0, help="print this many wrong answers per task after training")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from peft import LoraConfig, get_peft_model

    from lorakit.data.datasets import load_dataset
    from lorakit.models.load import load_base

    model, tokenizer = load_base("tiny")
    model = model.float()
    data = load_dataset(args.dataset, tokenizer, n_train=args.n_train, n_eval=args.n_eval, seed=args.seed)
    before_loss = eval_loss(model, data.eval, data.collator)
    before_em = per_task(model, tokenizer, data.raw_eval)
    print(f"base: eval loss {before_loss:.3f} (ppl {math.exp(before_loss):.1f}), exact match {before_em}", flush=True)

    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    order = list(range(len(data.train)))
    rng = random.Random(args.seed)
    model.train()
    start, position = time.time(), len(order)
    for step in range(1, args.steps + 1):
        if position + args.batch > len(order):
            rng.shuffle(order)
            position = 0
        batch = data.collator([data.train[i] for i in order[position:position + args.batch]])
        position += args.batch
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == args.steps:
            print(f"step {step}: train loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)
    seconds = time.time() - start
    after_loss = eval_loss(model, data.eval, data.collator)
    after_em = per_task(model, tokenizer, data.raw_eval, show=args.show)
    print(f"LoRA: eval loss {after_loss:.3f} (ppl {math.exp(after_loss):.1f}), exact match {after_em}")
    print(json.dumps({"dataset": args.dataset, "steps": args.steps, "lr": args.lr, "batch": args.batch,
                      "n_train": len(data.train), "n_eval": len(data.eval), "train_seconds": round(seconds, 1),
                      "eval_loss_before": round(before_loss, 3), "eval_loss_after": round(after_loss, 3),
                      "exact_match_before": before_em["all"], "exact_match_after": after_em["all"],
                      "per_task_before": before_em, "per_task_after": after_em}))


if __name__ == "__main__":
    main()
