"""The course's five datasets, made offline, deterministic for a seed, with disjoint train/eval splits.

| name | recipe | rows | what it is |
|---|---|---|---|
| instruction | instruction | chat prompt → exact answer | rule-based tasks: type of a Python value, word count, parity, sign, first word |
| code | code | function signature + docstring → body | real functions from stdlib modules the model never saw |
| domain | domain | plain text | encyclopedia sentences about chemical elements (not in pre-training) |
| classification | classification | text → label | templated requests to a voice assistant, 6 intents |
| preference | dpo | prompt, chosen, rejected | the instruction tasks with a right and a plausible wrong answer |
| sentiment | (capstone) | text → label | templated product reviews: negative, neutral, positive |

Training rows are tokenised with the model's chat template; labels are -100 on the prompt (and padding) so the
loss counts only the answer, unless `mask_prompt=False` (chapter 5's pitfall).

Sizes: the generated datasets (instruction, preference, classification, sentiment) make as many rows as asked, up
to `MAX_ROWS` (100,000) per split. `code` and `domain` come from fixed pools: their eval split is the held-out pool
(held-out functions / element sentences), so `n_eval` is capped at its size, and their train split cycles through
the training pool when `n_train` exceeds it.
`TaskData.raw_train`/`raw_eval` stay aligned row for row with the tokenised `train`/`eval`.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

DATASETS = ("instruction", "code", "domain", "classification", "preference", "sentiment")
MAX_ROWS = 100_000  # per split: generated in about a second, all distinct
DEFAULT_SIZES = {  # (n_train, n_eval); code and domain eval are capped at their held-out pools
    "instruction": (2000, 200), "code": (120, 24), "domain": (400, 80), "classification": (1200, 120),
    "preference": (600, 100), "sentiment": (900, 120),
}

# Words that the built-in tokenizer keeps whole (one token each after a space): tasks then test the skill (copy,
# select, reorder, count), not the spelling of rare words split into pieces.
WORDS = (
    "table large child place point group field order start class level value month state write print store check "
    "queue stack frame index token input output source target number string symbol lambda tuple block event error "
    "buffer socket thread module object method parser reader family"
).split()


# ---------------------------------------------------------------- instruction tasks and preference pairs
def _pick(rng: random.Random, k: int) -> list[str]:
    return rng.sample(WORDS, k)


def _literal(rng: random.Random) -> tuple[str, str]:
    """A random Python literal or expression and the name of its type."""
    kind = rng.choice(("int", "float", "str", "list", "tuple", "dict", "bool", "NoneType"))
    n = rng.randint(-999, 999)
    text = {
        "int": str(n),
        "float": f"{n / rng.choice((4, 8, 10, 100))}",
        "str": repr(" ".join(_pick(rng, rng.randint(1, 2)))),
        "list": repr([rng.randint(0, 99) for _ in range(rng.randint(1, 3))]),
        "tuple": repr(tuple(rng.randint(0, 99) for _ in range(rng.randint(2, 3)))),
        "dict": repr({w: rng.randint(0, 9) for w in _pick(rng, rng.randint(1, 2))}),
        "bool": f"{rng.randint(0, 99)} {rng.choice(('<', '>', '==', '!='))} {rng.randint(0, 99)}",
        "NoneType": rng.choice(("None", f"print({n})", f"[{n}].sort()", "{}.clear()")) if n % 4 else "None",
    }[kind]
    return text, kind


def _instruction_example(rng: random.Random) -> dict[str, str]:
    """One rule-based task with its single right answer and a plausible wrong one."""
    task = rng.choice(("type", "count", "parity", "sign", "first"))
    if task == "type":
        text, kind = _literal(rng)
        wrong = rng.choice([k for k in ("int", "float", "str", "list", "tuple", "dict", "bool") if k != kind])
        return {"task": task, "prompt": f"What is the type of {text} in Python?", "response": kind, "wrong": wrong}
    if task == "count":
        n = rng.randint(1, 5)
        return {"task": task, "prompt": f"How many words? {' '.join(_pick(rng, n))}", "response": str(n),
                "wrong": str(n % 5 + 1)}
    if task == "parity":
        n = rng.randint(0, 9999)
        answer = "even" if n % 2 == 0 else "odd"
        return {"task": task, "prompt": f"Is {n} even or odd?", "response": answer,
                "wrong": "odd" if answer == "even" else "even"}
    if task == "sign":
        n = rng.choice((-1, 1)) * rng.randint(1, 9999)
        answer = "positive" if n > 0 else "negative"
        return {"task": task, "prompt": f"Is {n} positive or negative?", "response": answer,
                "wrong": "negative" if n > 0 else "positive"}
    ws = _pick(rng, 3)
    return {"task": task, "prompt": f"What is the first word? {' '.join(ws)}", "response": ws[0], "wrong": ws[-1]}


# ---------------------------------------------------------------- domain: chemical elements
# (atomic number, symbol, name, category, state at 20 °C, period)
ELEMENTS = [
    (1, "H", "hydrogen", "nonmetal", "gas", 1), (2, "He", "helium", "noble gas", "gas", 1),
    (3, "Li", "lithium", "alkali metal", "solid", 2), (4, "Be", "beryllium", "alkaline earth metal", "solid", 2),
    (5, "B", "boron", "metalloid", "solid", 2), (6, "C", "carbon", "nonmetal", "solid", 2),
    (7, "N", "nitrogen", "nonmetal", "gas", 2), (8, "O", "oxygen", "nonmetal", "gas", 2),
    (9, "F", "fluorine", "halogen", "gas", 2), (10, "Ne", "neon", "noble gas", "gas", 2),
    (11, "Na", "sodium", "alkali metal", "solid", 3), (12, "Mg", "magnesium", "alkaline earth metal", "solid", 3),
    (13, "Al", "aluminium", "post-transition metal", "solid", 3), (14, "Si", "silicon", "metalloid", "solid", 3),
    (15, "P", "phosphorus", "nonmetal", "solid", 3), (16, "S", "sulfur", "nonmetal", "solid", 3),
    (17, "Cl", "chlorine", "halogen", "gas", 3), (18, "Ar", "argon", "noble gas", "gas", 3),
    (19, "K", "potassium", "alkali metal", "solid", 4), (20, "Ca", "calcium", "alkaline earth metal", "solid", 4),
    (21, "Sc", "scandium", "transition metal", "solid", 4), (22, "Ti", "titanium", "transition metal", "solid", 4),
    (23, "V", "vanadium", "transition metal", "solid", 4), (24, "Cr", "chromium", "transition metal", "solid", 4),
    (25, "Mn", "manganese", "transition metal", "solid", 4), (26, "Fe", "iron", "transition metal", "solid", 4),
    (27, "Co", "cobalt", "transition metal", "solid", 4), (28, "Ni", "nickel", "transition metal", "solid", 4),
    (29, "Cu", "copper", "transition metal", "solid", 4), (30, "Zn", "zinc", "transition metal", "solid", 4),
    (31, "Ga", "gallium", "post-transition metal", "solid", 4), (32, "Ge", "germanium", "metalloid", "solid", 4),
    (33, "As", "arsenic", "metalloid", "solid", 4), (34, "Se", "selenium", "nonmetal", "solid", 4),
    (35, "Br", "bromine", "halogen", "liquid", 4), (36, "Kr", "krypton", "noble gas", "gas", 4),
    (37, "Rb", "rubidium", "alkali metal", "solid", 5), (38, "Sr", "strontium", "alkaline earth metal", "solid", 5),
    (39, "Y", "yttrium", "transition metal", "solid", 5), (40, "Zr", "zirconium", "transition metal", "solid", 5),
    (41, "Nb", "niobium", "transition metal", "solid", 5), (42, "Mo", "molybdenum", "transition metal", "solid", 5),
    (44, "Ru", "ruthenium", "transition metal", "solid", 5), (45, "Rh", "rhodium", "transition metal", "solid", 5),
    (46, "Pd", "palladium", "transition metal", "solid", 5), (47, "Ag", "silver", "transition metal", "solid", 5),
    (48, "Cd", "cadmium", "transition metal", "solid", 5), (50, "Sn", "tin", "post-transition metal", "solid", 5),
    (53, "I", "iodine", "halogen", "solid", 5), (54, "Xe", "xenon", "noble gas", "gas", 5),
    (55, "Cs", "caesium", "alkali metal", "solid", 6), (56, "Ba", "barium", "alkaline earth metal", "solid", 6),
    (74, "W", "tungsten", "transition metal", "solid", 6), (78, "Pt", "platinum", "transition metal", "solid", 6),
    (79, "Au", "gold", "transition metal", "solid", 6), (80, "Hg", "mercury", "transition metal", "liquid", 6),
    (82, "Pb", "lead", "post-transition metal", "solid", 6), (86, "Rn", "radon", "noble gas", "gas", 6),
    (92, "U", "uranium", "actinide", "solid", 7),
]
DOMAIN_TEMPLATES = (
    "{Name} is a chemical element with the symbol {symbol} and atomic number {number}. It is a {category} and "
    "is a {state} at room temperature.",
    "The element with atomic number {number} is {name}. Its symbol is {symbol}, and it belongs to period {period} "
    "of the periodic table.",
    "{Name} ({symbol}) sits in period {period}. Chemists class it as a {category}; at 20 degrees Celsius it is a "
    "{state}.",
    "Atomic number {number} belongs to {name}, a {category} with the chemical symbol {symbol}.",
    "In the periodic table, {name} has the symbol {symbol}. A {category}, it is found as a {state} under normal "
    "conditions.",
)


def _element_text(element: tuple, template: str) -> str:
    number, symbol, name, category, state, period = element
    return template.format(Name=name.capitalize(), name=name, symbol=symbol, number=number, category=category,
                           state=state, period=period)


# ---------------------------------------------------------------- classification: assistant intents
INTENTS = {
    "weather": ("what's the weather in {city}", "will it rain in {city} {when}", "is it cold in {city} {when}",
                "forecast for {city} {when} please"),
    "music": ("play some {genre}", "put on {genre} music", "I want to hear {genre} {when}", "skip to the next {genre} song"),
    "alarm": ("wake me up at {time}", "set an alarm for {time} {when}", "cancel my {time} alarm",
              "alarm at {time} please"),
    "timer": ("set a timer for {minutes} minutes", "start a {minutes} minute timer", "how long is left on my {food} timer",
              "timer {minutes} minutes for the {food}"),
    "greeting": ("hello {name}", "good morning {name}", "hi {name}, how are you {when}", "hey {name}, nice to meet you"),
    "translate": ("how do you say {food} in {language}", "translate good night into {language}",
                  "what is {food} in {language}", "say thank you in {language}"),
}
SENTIMENTS = {
    "negative": ("the {product} broke after {days} days", "I regret buying this {product}", "terrible {product}, "
                 "would not recommend", "the {product} arrived damaged and support never replied",
                 "worst {product} I have owned", "the {product} stopped working {when}"),
    "neutral": ("the {product} arrived {when}", "it is a {product}, it does what it says", "average {product}, "
                "nothing special", "the {product} is fine for the price", "I have had the {product} for {days} days",
                "the {product} came in a {color} box"),
    "positive": ("I love this {product}", "the {product} works perfectly after {days} days", "best {product} I "
                 "have bought", "excellent {product}, highly recommend", "great value, the {product} is superb",
                 "the {color} {product} looks wonderful"),
}
SLOTS = {
    "city": "Paris Lima Oslo Cairo Tokyo Quito Perth Dublin Nairobi Boston Madrid Seoul".split(),
    "when": "today tomorrow tonight later now".split(),
    "genre": "jazz rock blues reggae techno folk opera salsa".split(),
    "time": "6am 7:30 noon 5pm 9pm 6:15".split(),
    "minutes": "3 5 10 12 20 45".split(),
    "food": "pasta eggs rice bread soup cake".split(),
    "name": "Ada Sam Lee Ravi Mia Tom Ana Joe Kim Omar Zoe Ivan".split(),
    "language": "French Spanish German Hindi Swahili Korean".split(),
    "product": "kettle lamp blender backpack charger keyboard umbrella jacket speaker camera".split(),
    "days": "2 3 5 10 14 30".split(),
    "color": "red blue green black white".split(),
}
LABEL_SETS = {"classification": INTENTS, "sentiment": SENTIMENTS}


def _fill(template: str, rng: random.Random) -> str:
    return template.format(**{slot: rng.choice(values) for slot, values in SLOTS.items()})


# ---------------------------------------------------------------- raw rows
def _stable_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 2**32


def _unique_rows(make: Callable[[random.Random], dict], key: str, n: int, rng: random.Random,
                 exclude: set[str]) -> list[dict]:
    rows, seen = [], set(exclude)
    for _ in range(n * 50):
        if len(rows) == n:
            break
        row = make(rng)
        if row[key] not in seen:
            seen.add(row[key])
            rows.append(row)
    return rows


def general_passages(n: int, rng: random.Random, chars: int = 300) -> list[dict]:
    """`n` passages of `chars` characters from the pre-training corpus's train split, at random offsets."""
    from .corpus import pretraining_texts

    documents = [text for text in pretraining_texts("train") if len(text) > chars]
    passages = []
    for _ in range(n):
        text = rng.choice(documents)
        start = rng.randrange(len(text) - chars)
        passages.append({"text": text[start:start + chars], "element": None})
    return passages


def make_rows(name: str, n_train: int | None = None, n_eval: int | None = None,
              seed: int = 0, general_share: float = 0.0) -> tuple[list[dict], list[dict]]:
    """Untokenised (train, eval) rows of dataset `name`; eval never repeats a train prompt/text.

    general_share (domain only): the share of the training rows that are general text instead, passages of the
    tiny model's pre-training corpus (the guide's "mix with general data" against forgetting); eval stays domain.
    """
    _check_name(name)
    if not isinstance(general_share, (int, float)) or isinstance(general_share, bool) or not 0 <= general_share < 1:
        raise ValueError(f"general_share must be a number in [0, 1), got {general_share!r}")
    if general_share and name != "domain":
        raise ValueError(f"general_share mixes general text into the domain dataset only, not {name!r}")
    default_train, default_eval = DEFAULT_SIZES[name]
    n_train = default_train if n_train is None else n_train
    n_eval = default_eval if n_eval is None else n_eval
    for field_name, value, least, most, words in (
            ("n_train", n_train, 1, MAX_ROWS, f"a positive integer ≤ {MAX_ROWS:,}"),
            ("n_eval", n_eval, 0, MAX_ROWS, f"a non-negative integer ≤ {MAX_ROWS:,}"),
            ("seed", seed, None, None, "an integer")):
        if not isinstance(value, int) or isinstance(value, bool) or (least is not None and not least <= value <= most):
            raise ValueError(f"{field_name} must be {words}, got {value!r}")
    rng = random.Random(f"{name}:{seed}")

    if name in ("instruction", "preference"):
        eval_rows = _unique_rows(_instruction_example, "prompt", n_eval, rng, set())
        train_rows = _unique_rows(_instruction_example, "prompt", n_train, rng, {r["prompt"] for r in eval_rows})
        if name == "preference":
            def to_pair(r: dict) -> dict:
                return {"prompt": [{"role": "user", "content": r["prompt"]}],
                        "chosen": [{"role": "assistant", "content": r["response"]}],
                        "rejected": [{"role": "assistant", "content": r["wrong"]}], "task": r["task"]}
            train_rows, eval_rows = [to_pair(r) for r in train_rows], [to_pair(r) for r in eval_rows]
        return train_rows, eval_rows

    if name in LABEL_SETS:
        templates = list(LABEL_SETS[name].values())

        def make(r: random.Random) -> dict:
            label = r.randrange(len(templates))
            return {"text": _fill(r.choice(templates[label]), r), "label": label}
        eval_rows = _unique_rows(make, "text", n_eval, rng, set())
        eval_texts = {r["text"] for r in eval_rows}
        candidates = (make(rng) for _ in range(n_train * 50))  # templated texts may repeat within train, never eval
        train_rows = list(itertools.islice((r for r in candidates if r["text"] not in eval_texts), n_train))
        return train_rows, eval_rows

    if name == "domain":
        texts = [{"text": _element_text(e, t), "element": e[2]} for e in ELEMENTS for t in DOMAIN_TEMPLATES]
        heldout = [r for r in texts if _stable_fraction(r["text"]) < 0.2]
        train = [r for r in texts if _stable_fraction(r["text"]) >= 0.2]
        rng.shuffle(train)
        rng.shuffle(heldout)
        n_general = round(n_train * general_share)
        domain_rows = [train[i % len(train)] for i in range(n_train - n_general)]
        if not n_general:
            return domain_rows, heldout[:n_eval]
        mixed = domain_rows + general_passages(n_general, rng)
        rng.shuffle(mixed)
        return mixed, heldout[:n_eval]

    from .corpus import stdlib_functions  # code

    functions = [{"prompt": f"Complete this Python function.\n{f['signature']}\n{f['docstring']}",
                  "response": f["body"], "name": f"{f['module']}.{f['name']}"} for f in stdlib_functions()]
    heldout = [f for f in functions if _stable_fraction(f["name"]) < 0.15]
    train = [f for f in functions if _stable_fraction(f["name"]) >= 0.15]
    rng.shuffle(train)
    return [train[i % len(train)] for i in range(n_train)], heldout[:n_eval]


# ---------------------------------------------------------------- tokenisation
@dataclass
class TaskData:
    """A dataset ready for `lorakit.train`: tokenised splits, a collator, and the raw eval rows for generation."""

    name: str
    train: Any
    eval: Any
    collator: Any
    raw_train: list[dict] = field(default_factory=list, repr=False)
    raw_eval: list[dict] = field(default_factory=list, repr=False)
    label_names: list[str] | None = None

    def eval_batches(self, batch_size: int, device: Any) -> Iterator[dict[str, Any]]:
        """The tokenised eval rows, collated `batch_size` at a time and moved to `device` (for a loss measured outside
        the Trainer)."""
        if self.eval is None or len(self.eval) == 0 or self.collator is None:
            raise ValueError("data must be a tokenised lorakit TaskData with eval rows (load_dataset(name, tokenizer))")
        rows = [{k: row[k] for k in ("input_ids", "attention_mask", "labels")} for row in self.eval]
        for start in range(0, len(rows), batch_size):
            yield {k: v.to(device) for k, v in self.collator(rows[start:start + batch_size]).items()}


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"dataset name must be one of {list(DATASETS)}, got {name!r}")


def tokenize_chat(tokenizer: Any, prompt: str, response: str, max_length: int, mask_prompt: bool = True) -> dict:
    """Chat-format one (prompt, response): labels are -100 on the prompt unless mask_prompt=False."""
    prompt_text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                add_generation_prompt=True)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) if mask_prompt else list(prompt_ids)) + answer_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels[:max_length]}


def _tokenize(name: str, rows: list[dict], tokenizer: Any, max_length: int,
              mask_prompt: bool) -> tuple[list[dict], list[dict]]:
    """(tokenised rows, the raw rows they came from): rows with nothing left to learn are dropped from both."""
    out, kept = [], []
    for row in rows:
        if name in ("instruction", "code"):
            item = tokenize_chat(tokenizer, row["prompt"], row["response"], max_length, mask_prompt)
        elif name == "domain":
            ids = tokenizer(row["text"] + tokenizer.bos_token, add_special_tokens=False)["input_ids"][:max_length]
            item = {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)}
        else:  # classification, sentiment
            enc = tokenizer(row["text"], add_special_tokens=False, truncation=True, max_length=max_length)
            item = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": row["label"]}
        if isinstance(item["labels"], list) and all(label == -100 for label in item["labels"]):
            continue  # the answer was cut off entirely by max_length: nothing to learn from this row
        assert len(item["input_ids"]) <= max_length and len(item["input_ids"]) == len(item["attention_mask"])
        out.append(item)
        kept.append(row)
    return out, kept


def load_dataset(name: str, tokenizer: Any = None, n_train: int | None = None, n_eval: int | None = None,
                 seed: int = 0, max_length: int = 256, mask_prompt: bool = True,
                 general_share: float = 0.0) -> TaskData:
    """Dataset `name` as TaskData; tokenised when a tokenizer is given (preference stays text: TRL tokenises).
    general_share: see `make_rows` (domain only)."""
    from datasets import Dataset

    _check_name(name)
    if tokenizer is not None and not callable(getattr(tokenizer, "apply_chat_template", None)):
        raise ValueError(f"tokenizer must be None or a tokenizer object (lorakit.load_tokenizer('tiny')), "
                         f"got {tokenizer!r}")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 16:
        raise ValueError(f"max_length must be an integer ≥ 16, got {max_length!r}")
    if not isinstance(mask_prompt, bool):
        raise ValueError(f"mask_prompt must be True or False, got {mask_prompt!r}")
    train_rows, eval_rows = make_rows(name, n_train, n_eval, seed, general_share)
    label_names = list(LABEL_SETS[name]) if name in LABEL_SETS else None
    if tokenizer is None or name == "preference":
        return TaskData(name, Dataset.from_list(train_rows), Dataset.from_list(eval_rows) if eval_rows else None,
                        None, train_rows, eval_rows, label_names)
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    train, train_rows = _tokenize(name, train_rows, tokenizer, max_length, mask_prompt)
    evals, kept_eval = _tokenize(name, eval_rows, tokenizer, max_length, mask_prompt)
    if not train:
        raise ValueError(f"dataset {name!r} has no training rows left at max_length={max_length}; raise max_length")
    if eval_rows and not evals:
        raise ValueError(f"dataset {name!r} has no eval rows left at max_length={max_length}; raise max_length")
    eval_rows = kept_eval
    collator = (DataCollatorWithPadding(tokenizer) if name in LABEL_SETS
                else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    return TaskData(name, Dataset.from_list(train), Dataset.from_list(evals) if evals else None, collator,
                    train_rows, eval_rows, label_names)
