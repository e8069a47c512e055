"""Rebuild lorakit's built-in tiny model and tokenizer from Python's own docs and stdlib source, plus chat drills.

    python scripts/build_tiny_model.py [--out lorakit/assets/tiny] [--steps 600] [--seed 0] [--threads 2]

1. trains a byte-level BPE tokenizer (vocab 4096) with the course's special tokens and chat template, on the pydoc
   topics and stdlib source only (the chat drills below do not change it);
2. pre-trains a ~4M-parameter Llama (4 layers, hidden 256, 4 query heads sharing 2 key/value heads) on packed
   256-token sequences with AdamW and a cosine schedule;
3. writes config, generation config, tokenizer, bf16 safetensors weights and build_info.json (parameters, steps,
   seconds, held-out perplexity of the trained model and of a random initialisation, the pre-training mix).

The pre-training mix. The bulk (about seven tenths of the tokens) is the pydoc topics and stdlib source of
`lorakit.data.corpus.pretraining_texts("train")`. The rest are short chat documents in the course's template
(`<|user|>\\n{question}<|end|>\\n<|assistant|>\\n{answer}<|end|>\\n`, one to three turns each), generated here from a
seed. Without them the model never sees `<|user|>`, `<|assistant|>` or `<|end|>` before fine-tuning: it starts
*worse than uniform guessing* on every chat dataset and never ends a turn, so short LoRA runs only measure how fast
training escapes a broken start. The drills teach the format and when to stop, through skills that are related to
the course's fine-tuning tasks but are not them (`lorakit.data.datasets`: type of a literal, word count, parity,
sign, first word; chemical elements; the functions of `CODE_HOLDOUT_MODULES`; intents; reviews):

- words: the last word, the second word, repeat, reverse, is a word in a list (a word pool of their own: the 80
  DRILL_WORDS widened with the few hundred whole-word tokens of the trained tokenizer, course words excluded);
- numbers: the number after / before n, the larger / smaller of two, is a greater than b;
- choices: a question that names two options, answered with one of them (which word is longer, which comes first
  alphabetically, which of two words is in a list, which comes earlier in a list, is a bigger or smaller than b,
  is a name a keyword or a built-in, is a token a word or a number), the options in random order;
- Python: is a name a keyword, is it a built-in, what a train-split pydoc topic is about (its first sentence), what
  a stdlib function does (its docstring's first line), the source of a short stdlib function.

Only train-split documents feed the Python drills (held-out topics and modules stay unseen, so the held-out
perplexity still measures unseen text), and never a module of `CODE_HOLDOUT_MODULES`.
Deterministic on a given machine and Python version (seeded, single process).
"""

from __future__ import annotations

import argparse
import builtins
import json
import keyword
import math
import platform
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lorakit.data.corpus import (  # noqa: E402
    CODE_HOLDOUT_MODULES,
    MAX_FILE_CHARS,
    pretraining_texts,
    stdlib_dir,
    stdlib_functions,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
VOCAB_SIZE = 4096
SEQ_LEN = 256

# ---------------------------------------------------------------- chat drills (pre-training only)
CHAT_DOCUMENTS = 4400  # documents of one to three turns: about 28% of the pre-training tokens
# A word pool of the drills' own: words the tokenizer keeps whole after a space (as the course's WORDS are), kept
# apart from lorakit.data.datasets.WORDS so that the course's word tasks ask about words the drills never used.
DRILL_WORDS = (
    "action address alpha audio bound cache chunk clause colon column comma command config context control count "
    "current debug decimal depth detail digest double drive element email entry equal example factory feature final "
    "flags float format future handler header length library limit local lower machine marker member message "
    "network option owner package pattern prefix prompt quote random range reason release report result sample "
    "scope script search server space split stream suffix system total trace update upper version width"
).split()
Turn = tuple[str, str]  # (question, answer)


def widen_drill_words(tokenizer: PreTrainedTokenizerFast) -> list[str]:
    """Add to DRILL_WORDS every lowercase word (4+ letters) that the trained tokenizer keeps whole both after a space
    and at the start of a line (where an answer starts), except the course's own words: datasets.WORDS, the
    instruction answers, the classification/sentiment slots and labels, element names. A few hundred words teach
    the drills' copying in general (" word" in the question → "word" as the answer), not for 80 words only."""
    from lorakit.data import datasets as course

    banned = set(course.WORDS) | {"even", "odd", "positive", "negative", "int", "float", "str", "list", "tuple",
                                  "dict", "bool", "none", "nonetype"}
    banned |= {w.lower() for values in course.SLOTS.values() for v in values for w in v.split()}
    banned |= {label for labels in course.LABEL_SETS.values() for label in labels}
    banned |= {e[2] for e in course.ELEMENTS}
    vocab = tokenizer.get_vocab()
    extra = sorted(t[1:] for t in vocab if t.startswith("\u0120") and re.fullmatch(r"[a-z]{4,}", t[1:])
                   and t[1:] in vocab and t[1:] not in banned)
    DRILL_WORDS[:] = sorted(set(DRILL_WORDS) | set(extra))
    return DRILL_WORDS


def _words(rng: random.Random, low: int, high: int) -> list[str]:
    return rng.sample(DRILL_WORDS, rng.randint(low, high))


def word_drill(rng: random.Random) -> Turn:
    """A question about a short list of words whose answer is copied from the question."""
    ws = _words(rng, 2, 5)
    text = " ".join(ws)
    kind = rng.choice(("last", "second", "repeat", "reverse", "contains"))
    if kind == "last":
        return f"What is the last word? {text}", ws[-1]
    if kind == "second":
        return f"Which word comes second? {text}", ws[1]
    if kind == "repeat":
        return f"Repeat: {text}", text
    if kind == "reverse":
        return f"Reverse the order of the words: {text}", " ".join(reversed(ws))
    probe = rng.choice((rng.choice(ws), rng.choice(DRILL_WORDS)))
    return f"Is '{probe}' in the list {text}?", "yes" if probe in ws else "no"


def number_drill(rng: random.Random) -> Turn:
    """Counting on and comparing whole numbers."""
    a, b = rng.sample(range(0, 1000), 2)
    kind = rng.choice(("after", "before", "larger", "smaller", "greater"))
    if kind == "after":
        return f"What number comes after {a}?", str(a + 1)
    if kind == "before":
        return f"What number comes before {a + 1}?", str(a)
    if kind == "larger":
        return f"Which is larger, {a} or {b}?", str(max(a, b))
    if kind == "smaller":
        return f"Which is smaller, {a} or {b}?", str(min(a, b))
    return f"Is {a} greater than {b}?", "yes" if a > b else "no"


BUILTIN_NAMES = tuple(sorted(n for n in dir(builtins) if not n.startswith("_") and not keyword.iskeyword(n)))


def choice_drill(rng: random.Random) -> Turn:
    """A question naming two options, answered with one of them (never parity or sign: those are course tasks)."""
    kind = rng.choice(("longer", "alphabet", "in_list", "earlier", "bigger", "kw_builtin", "word_number"))
    if kind == "longer":
        x, y = rng.sample(DRILL_WORDS, 2)
        while len(x) == len(y):
            x, y = rng.sample(DRILL_WORDS, 2)
        return f"Which word is longer, {x} or {y}?", x if len(x) > len(y) else y
    if kind == "alphabet":
        x, y = rng.sample(DRILL_WORDS, 2)
        return f"Which comes first in alphabetical order, {x} or {y}?", min(x, y)
    if kind == "in_list":
        ws = _words(rng, 2, 5)
        inside = rng.choice(ws)
        outside = rng.choice([w for w in DRILL_WORDS if w not in ws])
        x, y = rng.sample((inside, outside), 2)
        return f"Which of {x} or {y} is in the list {' '.join(ws)}?", inside
    if kind == "earlier":
        ws = _words(rng, 3, 5)
        i, j = sorted(rng.sample(range(len(ws)), 2))
        x, y = rng.sample((ws[i], ws[j]), 2)
        return f"In the list {' '.join(ws)}, which comes earlier, {x} or {y}?", ws[i]
    if kind == "bigger":
        a, b = rng.sample(range(0, 1000), 2)
        x, y = rng.sample(("bigger", "smaller"), 2)
        return f"Is {a} {x} or {y} than {b}?", "bigger" if a > b else "smaller"
    if kind == "kw_builtin":
        is_keyword = rng.random() < 0.5
        name = rng.choice(keyword.kwlist if is_keyword else BUILTIN_NAMES)
        x, y = rng.sample(("a keyword", "a built-in"), 2)
        return f"Is '{name}' {x} or {y}?", "a keyword" if is_keyword else "a built-in"
    token = rng.choice(DRILL_WORDS) if rng.random() < 0.5 else str(rng.randint(0, 9999))
    x, y = rng.sample(("a word", "a number"), 2)
    return f"Is '{token}' {x} or {y}?", "a number" if token.isdigit() else "a word"


def name_drill(rng: random.Random) -> Turn:
    """Is a name a Python keyword / a built-in? Half of the questions are about names that are."""
    kind = rng.choice(("keyword", "builtin"))
    members = keyword.kwlist if kind == "keyword" else sorted(n for n in dir(builtins) if not n.startswith("_"))
    name = rng.choice(members) if rng.random() < 0.5 else rng.choice(DRILL_WORDS)
    is_member = keyword.iskeyword(name) if kind == "keyword" else hasattr(builtins, name)
    question = f"Is '{name}' a Python keyword?" if kind == "keyword" else f"Is '{name}' a built-in name in Python?"
    return question, "yes" if is_member else "no"


def first_sentence(text: str, limit: int = 240) -> str:
    """The first sentence of a paragraph of prose, whitespace collapsed, cut at `limit` characters."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    sentence = flat if end < 0 else flat[:end + 1]
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + " ..."


def topic_turns(train_texts: set[str]) -> list[Turn]:
    """'What is the Python topic X about?' answered by the first prose sentence of train-split pydoc topics."""
    from pydoc_data.topics import topics

    turns = []
    for key, text in sorted(topics.items()):
        if text.strip() not in train_texts:
            continue  # held-out topic
        paragraphs = [p for p in text.strip().split("\n\n") if p.strip() and not p.startswith((" ", "*"))]
        prose = next((p for p in paragraphs[1:] if len(p.split()) >= 6), None)
        if prose is not None:
            turns.append((f"What is the Python topic '{key}' about?", first_sentence(prose)))
    return turns


def train_modules(train_texts: set[str]) -> tuple[str, ...]:
    """The stdlib modules pre-trained on (train split, never a code-dataset module), as in lorakit.data.corpus."""
    names = []
    for path in sorted(stdlib_dir().glob("*.py")):
        if path.stem in CODE_HOLDOUT_MODULES or path.stem.startswith(("_", "test")):
            continue
        if path.read_text(encoding="utf-8", errors="replace")[:MAX_FILE_CHARS] in train_texts:
            names.append(path.stem)
    return tuple(names)


def function_turns(modules: tuple[str, ...], max_source: int = 700) -> tuple[list[Turn], list[Turn]]:
    """Two pools from stdlib functions: what one does (its docstring's first line), and the source of a short one."""
    does, sources = [], []
    for module in modules:
        try:
            functions = stdlib_functions((module,), max_chars=max_source)
        except (ValueError, SyntaxError, UnicodeDecodeError):
            continue
        for f in functions:
            doc = re.sub(r"^[rbuRBU]?(\"\"\"|'''|\"|')", "", f["docstring"].strip()).strip().splitlines()
            line = re.sub(r"(\"\"\"|'''|\"|')$", "", doc[0].strip()).strip() if doc else ""
            if len(line.split()) >= 3 and not line.startswith(">>>"):
                does.append((f"What does {module}.{f['name']} do?", line))
            sources.append((f"Show the source of {module}.{f['name']}.",
                            f"{f['signature']}\n{f['docstring']}\n{f['body']}"))
    return does, sources


def chat_document(turns: list[Turn]) -> str:
    """Turns rendered with the course's chat template (the text `apply_chat_template` makes)."""
    return "".join(f"<|user|>\n{q}<|end|>\n<|assistant|>\n{a}<|end|>\n" for q, a in turns)


def chat_documents(train_texts: list[str], n_docs: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """`n_docs` chat documents of one to three turns each, and how many turns of each drill they hold.

    Generated drills (words, numbers, names) make up most turns; the Python ones (topics, functions) are drawn
    from fixed pools, each turn at most a few times.
    """
    train_set = set(train_texts)
    does, sources = function_turns(train_modules(train_set))
    pools: dict[str, list[Turn]] = {"topic": topic_turns(train_set), "does": does, "source": sources}
    makers: dict[str, Callable[[random.Random], Turn]] = {"word": word_drill, "number": number_drill,
                                                          "choice": choice_drill, "name": name_drill}
    weights = {"word": 0.30, "number": 0.20, "choice": 0.18, "name": 0.10, "topic": 0.04, "does": 0.10,
               "source": 0.08}
    rng = random.Random(f"chat-drills:{seed}")
    for pool in pools.values():
        rng.shuffle(pool)
    counts = dict.fromkeys(weights, 0)
    docs = []
    for _ in range(n_docs):
        turns = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            kind = rng.choices(list(weights), weights=list(weights.values()))[0]
            if kind in pools:
                turns.append(pools[kind][counts[kind] % len(pools[kind])])
            else:
                turns.append(makers[kind](rng))
            counts[kind] += 1
        docs.append(chat_document(turns))
    return docs, counts


# ---------------------------------------------------------------- tokenizer, packing, model
def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|end|>", pad_token="<|pad|>",
        unk_token=None, additional_special_tokens=["<|user|>", "<|assistant|>", "<|endoftext|>"],
        chat_template=CHAT_TEMPLATE, model_max_length=512, padding_side="right",
    )


def token_ids(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[int]:
    """Documents tokenised and concatenated, each followed by <|endoftext|> (special tokens in the text are kept)."""
    sep = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        ids.append(sep)
    return ids


def pack(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """Concatenate documents separated by <|endoftext|> and cut into SEQ_LEN-token rows."""
    ids = token_ids(tokenizer, texts)
    rows = len(ids) // SEQ_LEN
    return torch.tensor(ids[: rows * SEQ_LEN]).view(rows, SEQ_LEN)


def model_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        rms_norm_eps=1e-5, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


@torch.no_grad()
def perplexity(model: LlamaForCausalLM, rows: torch.Tensor, batch: int = 16) -> float:
    model.eval()
    losses = [model(input_ids=rows[i:i + batch], labels=rows[i:i + batch]).loss.item()
              for i in range(0, len(rows), batch)]
    model.train()
    return math.exp(sum(losses) / len(losses))


def pretrain(model: LlamaForCausalLM, rows: torch.Tensor, steps: int, batch: int, lr: float, seed: int,
             start: float) -> None:
    """AdamW (weight decay 0.1, betas 0.9/0.95), 5% linear warmup then cosine, grad clip 1, shuffled rows."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / steps))))
    generator = torch.Generator().manual_seed(seed)
    epochs = math.ceil(steps * batch / len(rows))
    order = torch.cat([torch.randperm(len(rows), generator=generator) for _ in range(epochs)])
    model.train()
    for step in range(steps):
        chunk = rows[order[step * batch:(step + 1) * batch]]
        loss = model(input_ids=chunk, labels=chunk).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "lorakit/assets/tiny")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chat-documents", type=int, default=CHAT_DOCUMENTS,
                        help="chat drill documents mixed into pre-training (0: pydoc and stdlib only)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most the machine's)")
    parser.add_argument("--tokenizer-only", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, min(args.threads, torch.get_num_threads())))
    start = time.perf_counter()

    train_texts, heldout_texts = pretraining_texts("train"), pretraining_texts("heldout")
    tokenizer = build_tokenizer(train_texts)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(args.out)
    print(f"tokenizer: {len(tokenizer)} tokens ({time.perf_counter() - start:.0f} s)")
    if args.tokenizer_only:
        return

    widen_drill_words(tokenizer)
    print(f"drill words: {len(DRILL_WORDS)}", flush=True)
    chat_docs, drill_turns = chat_documents(train_texts, args.chat_documents, args.seed)
    heldout_chat, _ = chat_documents(train_texts, max(1, args.chat_documents // 10), args.seed + 1)
    text_rows, heldout_rows = pack(tokenizer, train_texts), pack(tokenizer, heldout_texts)
    chat_rows, heldout_chat_rows = pack(tokenizer, chat_docs), pack(tokenizer, heldout_chat)
    train_rows = torch.cat([text_rows, chat_rows])
    config = model_config(tokenizer)
    model = LlamaForCausalLM(config)
    random_ppl = perplexity(model, heldout_rows)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} params; {len(text_rows)} text + {len(chat_rows)} chat train rows "
          f"({len(chat_rows) / len(train_rows):.0%} chat; turns {drill_turns}), {len(heldout_rows)} held-out rows; "
          f"random-init held-out perplexity {random_ppl:.0f}", flush=True)

    pretrain(model, train_rows, args.steps, args.batch, args.lr, args.seed, start)

    trained_ppl = perplexity(model, heldout_rows)
    train_ppl = perplexity(model, text_rows[:len(heldout_rows)])
    chat_ppl = perplexity(model, heldout_chat_rows)
    model.to(torch.bfloat16).save_pretrained(args.out)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=[tokenizer.eos_token_id, tokenizer.bos_token_id],
                     do_sample=False).save_pretrained(args.out)
    info = {
        "params": n_params, "steps": args.steps, "batch": args.batch, "seq_len": SEQ_LEN, "lr": args.lr,
        "seed": args.seed, "train_rows": len(train_rows), "text_train_rows": len(text_rows),
        "chat_train_rows": len(chat_rows), "chat_documents": len(chat_docs), "chat_turns": drill_turns,
        "drill_words": len(DRILL_WORDS),
        "heldout_rows": len(heldout_rows), "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - start, 1), "heldout_perplexity": round(trained_ppl, 2),
        "train_perplexity": round(train_ppl, 2), "heldout_chat_perplexity": round(chat_ppl, 2),
        "random_init_heldout_perplexity": round(random_ppl, 1),
        "python": platform.python_version(), "torch": torch.__version__, "weights_dtype": "bfloat16",
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
