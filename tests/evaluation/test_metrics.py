"""Evaluation helpers and the adapter save/load round trip (resuming a run: tests/training/test_resume.py)."""

import math
import warnings

import pytest
import torch
from peft import PeftModel

import lorakit
from lorakit.data.datasets import load_dataset
from lorakit.evaluation import (
    classification_accuracy,
    compare_adapters,
    exact_match,
    forgetting,
    generate_answers,
    generation_stats,
    merged_matches_unmerged,
    perplexity,
)

FAST = dict(n_train=48, n_eval=16, gradient_checkpointing=False, logging_steps=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return lorakit.train("quickstart", learning_rate=1e-3, max_steps=12, save_strategy="no", output_dir=out, **FAST)


def test_adapter_round_trip_gives_the_same_outputs(trained):
    inputs = trained.tokenizer(["def add(a, b):", "The for statement"], return_tensors="pt", padding=True)
    trained.model.eval()
    with torch.no_grad():
        expected = trained.model(**inputs).logits
        base, _ = lorakit.load_base("tiny")
        base_logits = base(**inputs).logits
        reloaded = PeftModel.from_pretrained(base, str(trained.adapter_dir)).eval()
        assert torch.allclose(reloaded(**inputs).logits, expected, atol=1e-5)
        assert not torch.allclose(base_logits, expected, atol=1e-3)  # the adapter really changes the model


def test_merged_equals_unmerged(trained):
    inputs = trained.tokenizer(["class A:", "import os"], return_tensors="pt", padding=True)
    equal, diff = merged_matches_unmerged(trained.model, inputs, atol=1e-4)
    assert equal and diff < 1e-4
    assert not any(getattr(m, "merged", False) for m in trained.model.modules())  # the original stays unmerged


def test_perplexity_and_forgetting(trained):
    texts = ["The for statement is used to iterate over the elements of a sequence."] * 2
    ppl = perplexity(trained.model, trained.tokenizer, texts)
    assert math.isfinite(ppl) and ppl > 1
    numbers = forgetting(trained.model, trained.tokenizer, texts)
    with trained.model.disable_adapter():
        assert numbers["base_perplexity"] == pytest.approx(perplexity(trained.model, trained.tokenizer, texts))
    assert numbers["ratio"] == pytest.approx(numbers["adapted_perplexity"] / numbers["base_perplexity"])
    base, _ = lorakit.load_base("tiny")
    against_base = forgetting(trained.model, trained.tokenizer, texts, model_before=base)
    assert against_base["base_perplexity"] == pytest.approx(numbers["base_perplexity"], rel=1e-5)
    with pytest.raises(ValueError, match="texts must not be empty"):
        perplexity(trained.model, trained.tokenizer, [])


@pytest.mark.slow  # generates answers for every eval row, twice
def test_exact_match_and_ab_table(trained, tmp_path):
    rows = load_dataset("instruction", trained.tokenizer, n_train=4, n_eval=12).raw_eval
    base, tokenizer = lorakit.load_base("tiny")
    assert exact_match(base, tokenizer, rows) == 0.0
    other = lorakit.train("quickstart", learning_rate=1e-5, max_steps=2, save_strategy="no", output_dir=tmp_path,
                          **FAST)
    adapters = {"A": str(trained.adapter_dir), "B": str(other.adapter_dir)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # peft's read of a deprecated transformers name stays quiet
        # peft 0.22 searched B's missing keys for the name "B" and warned about A's lora_B weights
        warnings.filterwarnings("error", message=".*missing adapter keys", category=UserWarning)
        table = compare_adapters(base, tokenizer, adapters, rows)
    assert len(table) == len(rows) + 1 and table[-1]["prompt"] == "accuracy"
    assert table[-1]["A"] == exact_match(trained.model, trained.tokenizer, rows)
    assert {"prompt", "expected", "A", "B"} <= set(table[0])
    wrapped = PeftModel.from_pretrained(lorakit.load_base("tiny")[0], adapters["A"], adapter_name="A")
    assert compare_adapters(wrapped, tokenizer, adapters, rows) == table
    with pytest.raises(ValueError, match="adapters must name at least one"):
        compare_adapters(base, tokenizer, {}, rows)


def test_generation_stats():
    stats = generation_stats(["a b", "", "x x x x", "a b"])
    assert stats["empty_rate"] == 0.25 and stats["same_answer_rate"] == 0.5
    assert stats["repetition_rate"] == pytest.approx((0 + 0.75 + 0) / 3)
    assert stats["runaway_rate"] == 0.0
    assert generation_stats(["a", "b"], finished=[True, False])["runaway_rate"] == 0.5
    assert generation_stats(["x" * 200])["runaway_rate"] == 1.0
    with pytest.raises(ValueError, match="finished must have one flag per answer"):
        generation_stats(["a"], finished=[])


def test_generation_stops_at_end_of_turn(trained):
    rows = load_dataset("instruction", trained.tokenizer, n_train=4, n_eval=8).raw_eval
    answers, finished = generate_answers(trained.model, trained.tokenizer, [r["prompt"] for r in rows],
                                         max_new_tokens=24, return_finished=True)
    assert len(answers) == len(finished) == len(rows)
    assert trained.tokenizer.padding_side == "right"  # restored after left-padded generation
    assert all("<|end|>" not in a for a in answers)
    one, = generate_answers(trained.model, trained.tokenizer, [rows[0]["prompt"]], max_new_tokens=24)
    assert one == answers[0]  # left padding in a batch does not change a greedy answer


def test_perplexity_on_a_tokenised_dataset(trained):
    data = load_dataset("instruction", trained.tokenizer, n_train=4, n_eval=8)
    answer_ppl = perplexity(trained.model, trained.tokenizer, data.eval)
    unlabelled = [{"input_ids": r["input_ids"]} for r in data.eval]
    full_ppl = perplexity(trained.model, trained.tokenizer, unlabelled)
    assert math.isfinite(answer_ppl) and math.isfinite(full_ppl) and answer_ppl != full_ppl


@pytest.mark.slow  # trains a classification run
def test_classification_accuracy_on_a_trained_head(tmp_path):
    result = lorakit.train("classification", learning_rate=1e-3, max_steps=40, save_strategy="no",
                           output_dir=tmp_path, n_train=320, n_eval=60, gradient_checkpointing=False)
    data = load_dataset("classification", result.tokenizer, n_train=4, n_eval=60)
    assert classification_accuracy(result.model, result.tokenizer, data.raw_eval) > 0.5  # 6 classes: chance 1/6


def test_shipped_instruction_task_is_the_course_eval_data():
    import json

    from lorakit.data.datasets import make_rows
    from lorakit.evaluation.harness import TASKS_DIR

    shipped = [json.loads(line) for line in (TASKS_DIR / "instruction.jsonl").read_text().splitlines()]
    expected = make_rows("instruction", n_train=1, n_eval=len(shipped), seed=0)[1]
    assert [(r["prompt"], r["response"]) for r in shipped] == [(r["prompt"], r["response"]) for r in expected]
    assert all(r["choices"][r["answer"]] == r["response"] and len(set(r["choices"])) == 2 for r in shipped)
    capitals = [json.loads(line) for line in (TASKS_DIR / "capitals.jsonl").read_text().splitlines()]
    assert all(r["choices"][r["answer"]] == r["capital"] and len(set(r["choices"])) == 4 for r in capitals)


def test_run_lm_eval_refuses_bad_input(tmp_path):
    from lorakit.evaluation import LM_EVAL_TASKS, run_lm_eval

    with pytest.raises(ValueError, match="tasks must be a non-empty list of"):
        run_lm_eval(tmp_path, ["hellaswag"])
    with pytest.raises(ValueError, match="model must be a saved model folder"):
        run_lm_eval(tmp_path, list(LM_EVAL_TASKS))
    with pytest.raises(ValueError, match="or a hub id"):
        run_lm_eval("not-a-model", ["lorakit_capitals_mc"])


def test_the_harness_gets_a_folder_a_converted_real_model_or_a_hub_id(tmp_path):
    from lorakit.evaluation.harness import model_source
    from lorakit.models.packaged import converted_dir

    assert model_source("smollm2-135m") == str(converted_dir("smollm2-135m"))
    (tmp_path / "config.json").write_text("{}")
    assert model_source(tmp_path) == str(tmp_path)
    assert model_source("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"


def broken_adapter(model_dir, out):
    """A LoRA adapter whose A and B are random (peft's init_lora_weights=False) and scaled up: noise on every layer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    noisy = get_peft_model(base, LoraConfig(r=8, lora_alpha=256, target_modules="all-linear",
                                            init_lora_weights=False))
    noisy.save_pretrained(out)
    return out


@pytest.mark.slow
def test_lm_eval_on_the_real_model_offline(tmp_path, monkeypatch):
    """The shipped multiple-choice task through lm-eval's simple_evaluate: the real model knows its capitals (well
    above the 25% of guessing among four) and an adapter of noise takes that knowledge away."""
    from lorakit.evaluation import run_lm_eval
    from lorakit.models.packaged import converted_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_dir = converted_dir("smollm2-135m")
    base = run_lm_eval(model_dir, ["lorakit_capitals_mc"], limit=20)["lorakit_capitals_mc"]
    assert base >= 0.25 + 0.3  # far above chance on 20 questions
    adapter = broken_adapter(model_dir, tmp_path / "noise")
    broken = run_lm_eval(model_dir, ["lorakit_capitals_mc"], peft=adapter, limit=20)["lorakit_capitals_mc"]
    assert broken < base - 0.2


def test_a_classifiers_adapter_saved_for_the_language_model_changes_it_exactly_as_it_changed_the_classifier(tmp_path):
    """save_language_model_adapter: the causal LM loaded with the saved adapter has the classifier's transformer
    (the same hidden states), no classification head, and differs from the base model."""
    from peft import LoraConfig, get_peft_model

    from lorakit.evaluation import save_language_model_adapter

    torch.manual_seed(0)
    classifier, tokenizer = lorakit.load_base("tiny", task="seq_cls", num_labels=3)
    classifier = get_peft_model(classifier, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                       task_type="SEQ_CLS", init_lora_weights=False))
    with pytest.raises(ValueError, match="model must be a peft model"):
        save_language_model_adapter(lorakit.load_base("tiny")[0], tmp_path / "no")
    saved = save_language_model_adapter(classifier, tmp_path / "lm_adapter")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        language_model = PeftModel.from_pretrained(lorakit.load_base("tiny")[0], saved).eval()
    assert not [w for w in caught if "keys" in str(w.message).lower()]  # peft warns of missing or unexpected keys
    assert language_model.peft_config["default"].task_type == "CAUSAL_LM"
    assert not any("score" in name or "modules_to_save" in name for name, _ in language_model.named_parameters())
    batch = tokenizer(["def add(a, b):"], return_tensors="pt")
    with torch.no_grad():
        as_classifier = classifier.eval()(**batch, output_hidden_states=True).hidden_states[-1]
        as_language_model = language_model(**batch, output_hidden_states=True).hidden_states[-1]
        with language_model.disable_adapter():
            as_base = language_model(**batch, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(as_language_model, as_classifier)
    assert (as_language_model - as_base).abs().max() > 1e-3
