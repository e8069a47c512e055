import pytest

from lorakit.data.datasets import DATASETS, INTENTS, load_dataset, make_rows


@pytest.fixture
def tokenizer(tiny_tokenizer):
    return tiny_tokenizer


@pytest.mark.parametrize("name", DATASETS)
def test_deterministic_for_a_seed(name):
    assert make_rows(name, 50, 10, seed=1) == make_rows(name, 50, 10, seed=1)


@pytest.mark.parametrize("name", ["instruction", "classification", "preference"])
def test_seed_changes_rows(name):
    assert make_rows(name, 50, 10, seed=1) != make_rows(name, 50, 10, seed=2)


def _key(name, row):
    return {"instruction": "prompt", "code": "name", "domain": "text", "classification": "text"}.get(name)


@pytest.mark.parametrize("name", ["instruction", "code", "domain", "classification"])
def test_splits_are_disjoint(name):
    train, evals = make_rows(name, seed=0)
    key = _key(name, train[0])
    assert evals and not {r[key] for r in train} & {r[key] for r in evals}


def test_preference_pairs_differ_and_share_prompts_with_no_eval():
    train, evals = make_rows("preference", 200, 40)
    assert all(r["chosen"] != r["rejected"] for r in train + evals)
    assert not {r["prompt"][0]["content"] for r in train} & {r["prompt"][0]["content"] for r in evals}
    assert train[0]["prompt"][0]["role"] == "user" and train[0]["chosen"][0]["role"] == "assistant"


def test_labels_cover_exactly_the_response(tokenizer):
    data = load_dataset("instruction", tokenizer, n_train=40, n_eval=8)
    for raw, row in zip(data.raw_train, data.train):
        answer = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        assert answer == [label for label in row["labels"] if label != -100]
        assert tokenizer.decode(answer) == raw["response"] + "<|end|>"
        first = row["labels"].index(answer[0])
        assert all(label == -100 for label in row["labels"][:first])


def test_unmasked_prompts_train_on_everything(tokenizer):
    data = load_dataset("instruction", tokenizer, n_train=10, n_eval=2, mask_prompt=False)
    assert all(row["labels"] == row["input_ids"] for row in data.train)


def test_classification_labels_in_range_and_balanced(tokenizer):
    data = load_dataset("classification", tokenizer)
    labels = data.train["labels"]
    assert data.label_names == list(INTENTS)
    assert set(labels) == set(range(len(INTENTS)))
    counts = [labels.count(i) for i in range(len(INTENTS))]
    assert min(counts) > 0.4 * max(counts)


@pytest.mark.parametrize("name", ["instruction", "code", "domain", "classification"])
def test_lengths_and_collation(name, tokenizer):
    data = load_dataset(name, tokenizer, n_train=16, n_eval=4, max_length=64)
    assert all(len(ids) <= 64 for ids in data.train["input_ids"])
    batch = data.collator([data.train[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4
    if name != "classification":
        padded = batch["attention_mask"] == 0
        assert (batch["input_ids"][padded] == tokenizer.pad_token_id).all()
        assert (batch["labels"][padded] == -100).all()


@pytest.mark.parametrize("kwargs,fragment", [
    ({"name": "poetry"}, r"dataset name must be one of \['instruction', 'code', .*got 'poetry'"),
    ({"name": "instruction", "n_train": 0}, "n_train must be a positive integer"),
    ({"name": "instruction", "n_train": 2.5}, "n_train must be a positive integer"),
    ({"name": "instruction", "n_eval": -1}, "n_eval must be a non-negative integer"),
    ({"name": "instruction", "seed": "one"}, "seed must be an integer"),
    ({"name": "instruction", "max_length": 4}, "max_length must be an integer ≥ 16"),
    ({"name": "code", "max_length": 16}, "no training rows left at max_length=16"),
    ({"name": "instruction", "mask_prompt": "yes"}, "mask_prompt must be True or False"),
])
def test_bad_input(kwargs, fragment, tokenizer):
    with pytest.raises(ValueError, match=fragment):
        load_dataset(tokenizer=tokenizer, **kwargs)


def test_labels_cover_exactly_the_response_on_eval_too(tokenizer):
    data = load_dataset("instruction", tokenizer, n_train=4, n_eval=30, seed=3)
    assert len(data.raw_eval) == len(data.eval) == 30
    for raw, row in zip(data.raw_eval, data.eval):
        answer = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        assert tokenizer.decode(answer) == raw["response"] + "<|end|>"
        prompt = tokenizer.decode(row["input_ids"][:len(row["input_ids"]) - len(answer)])
        assert prompt == f"<|user|>\n{raw['prompt']}<|end|>\n<|assistant|>\n"


def test_raw_rows_stay_aligned_when_long_rows_are_dropped(tokenizer):
    full = load_dataset("code", tokenizer, n_train=60, n_eval=8)
    short = load_dataset("code", tokenizer, n_train=60, n_eval=8, max_length=96)
    assert len(short.train) < len(full.train)  # some signatures + docstrings do not fit in 96 tokens
    assert len(short.raw_train) == len(short.train) and len(short.raw_eval) == len(short.eval)
    for raw, row in zip(short.raw_train, short.train):
        assert len(row["input_ids"]) <= 96 and any(label != -100 for label in row["labels"])
        assert tokenizer.decode(row["input_ids"]).startswith(f"<|user|>\n{raw['prompt']}")


@pytest.mark.parametrize("name", ["code", "domain"])
def test_fixed_pool_eval_is_capped_and_unique(name):
    _, evals = make_rows(name, 4, 10_000)
    key = "name" if name == "code" else "text"
    assert 10 <= len(evals) < 10_000 and len({r[key] for r in evals}) == len(evals)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_tokenises_within_max_length(name, tokenizer):
    data = load_dataset(name, tokenizer, n_train=24, n_eval=8, max_length=128)
    assert len(data.train) > 0 and data.eval is not None and len(data.eval) > 0
    if name == "preference":  # left as text (conversational): TRL's DPOTrainer tokenises
        return
    for row in list(data.train) + list(data.eval):
        assert len(row["input_ids"]) <= 128 and len(row["attention_mask"]) == len(row["input_ids"])
        if isinstance(row["labels"], list):
            assert len(row["labels"]) == len(row["input_ids"]) and any(x != -100 for x in row["labels"])
        else:
            assert 0 <= row["labels"] < len(data.label_names)


def test_preference_rows_are_trl_conversational():
    from trl.data_utils import is_conversational

    data = load_dataset("preference", n_train=8, n_eval=4)
    row = data.train[0]
    assert is_conversational(row)
    assert [m["role"] for m in row["prompt"]] == ["user"]
    assert row["chosen"][0]["content"] != row["rejected"][0]["content"]


def test_sentiment_labels_in_range_and_balanced():
    train, _ = make_rows("sentiment", 600, 60)
    counts = [sum(r["label"] == i for r in train) for i in range(3)]
    assert min(counts) > 0.6 * max(counts)


def test_eval_batches_cover_every_eval_row_once_and_feed_eval_loss():
    """TaskData.eval_batches is what the outside-the-Trainer eval loss reads: all eval rows, in order, collated; with
    one batch, the per-answer-token loss equals the causal LM's own loss on that batch."""
    import torch

    from lorakit.evaluation.metrics import eval_loss
    from lorakit.models.load import load_base

    model, tokenizer = load_base("tiny")
    data = load_dataset("instruction", tokenizer, n_train=4, n_eval=10)
    batches = list(data.eval_batches(4, "cpu"))
    assert [len(b["input_ids"]) for b in batches] == [4, 4, 2]
    fifth = data.eval[4]["input_ids"]
    assert batches[1]["input_ids"][0, :len(fifth)].tolist() == fifth  # rows in order, padded on the right
    [whole] = data.eval_batches(10, "cpu")
    with torch.no_grad():
        own = model.eval()(**whole).loss.item()
    assert eval_loss(model, data, batch_size=10) == pytest.approx(own, rel=1e-5)
    data.eval = data.eval.select([])
    with pytest.raises(ValueError, match="tokenised lorakit TaskData with eval rows"):
        eval_loss(model, data)


def test_general_share_mixes_pretraining_passages_into_domain_training_rows_only():
    from lorakit.data.corpus import pretraining_texts
    from lorakit.data.datasets import make_rows

    pure_train, pure_eval = make_rows("domain", 40, 8, seed=3)
    train, evals = make_rows("domain", 40, 8, seed=3, general_share=0.25)
    general = [row for row in train if row["element"] is None]
    assert len(train) == 40 and len(general) == 10 and evals == pure_eval  # eval stays pure domain
    corpus = pretraining_texts("train")
    assert all(any(row["text"] in text for text in corpus) for row in general)
    assert all(row["element"] is not None for row in pure_train)
    assert make_rows("domain", 40, 8, seed=3, general_share=0.25) == (train, evals)  # deterministic
