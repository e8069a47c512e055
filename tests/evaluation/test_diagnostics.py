"""Each pitfall is reproduced on the built-in model with a lorakit call and detected; clean runs raise no alarm.

Slow-ish: the reproductions train for real (60–150 steps of the tiny model each)."""

import math
from types import SimpleNamespace

import pytest

import lorakit
from lorakit.config.recipes import get_recipe
from lorakit.data.corpus import pretraining_texts
from lorakit.data.datasets import load_dataset
from lorakit.evaluation import exact_match, forgetting, generate_answers
from lorakit.evaluation.diagnostics import FIXES, Finding, Findings, NanGuardCallback, diagnose, report
from lorakit.evaluation.pitfalls import PITFALLS, reproduce

BASE_TEXTS = [t[:1500] for t in pretraining_texts("heldout")[:6]]


def _pitfalls(findings):
    return {f.pitfall for f in findings}


def _generate(result):
    rows = load_dataset("instruction", result.tokenizer, n_train=8, n_eval=48).raw_eval
    answers, finished = generate_answers(result.model, result.tokenizer, [r["prompt"] for r in rows],
                                         return_finished=True)
    return rows, answers, finished


@pytest.mark.slow
def test_flat_loss(tmp_path):
    result = reproduce("flat", str(tmp_path))
    findings = diagnose(result)
    assert _pitfalls(findings) == {"loss not decreasing"}, report(findings)
    flat = findings[0]
    assert flat.severity == "warning" and "learning_rate 1e-06" in flat.evidence
    assert flat.fixes[0].startswith("raise the learning rate")  # the recipe points at the LR first
    losses = [loss for _, loss in result.train_losses]
    fifth = max(1, len(losses) // 5)  # single logged batches vary by ±10% on this model: compare fifths' means
    assert sum(losses[-fifth:]) / fifth > 0.9 * sum(losses[:fifth]) / fifth


@pytest.mark.slow
def test_overfitting(tmp_path):
    result = reproduce("overfit", str(tmp_path))
    findings = diagnose(result)
    assert "overfitting" in _pitfalls(findings), report(findings)
    assert any("best epoch" in fix for f in findings for fix in f.fixes)
    evals = [loss for _, loss in result.eval_losses]
    assert evals[-1] > 1.05 * min(evals)


@pytest.mark.slow  # trains until the loss goes NaN
def test_nan_is_caught_and_training_stopped(tmp_path):
    result = reproduce("nan", str(tmp_path))
    findings = diagnose(result)
    assert "divergence" in _pitfalls(findings), report(findings)
    assert findings[0].severity == "critical"
    assert result.log_history[-1]["step"] < 40  # the guard stopped the run before max_steps


@pytest.mark.slow
def test_forgetting(tmp_path):
    result = reproduce("forgetting", str(tmp_path))
    numbers = forgetting(result.model, result.tokenizer, BASE_TEXTS)
    assert numbers["ratio"] > 3  # measured ×5.3; the clean quickstart runs: ×1.8
    assert "forgetting" in _pitfalls(diagnose(result, forgetting=numbers))


@pytest.mark.slow
def test_unmasked_prompts_degrade_generation_where_masked_ones_do_not(tmp_path):
    unmasked = reproduce("unmasked", str(tmp_path))
    rows, answers, finished = _generate(unmasked)
    unmasked_data = load_dataset("instruction", unmasked.tokenizer, n_train=16, n_eval=4, mask_prompt=False)
    findings = diagnose(unmasked, answers=answers, finished=finished, data=unmasked_data)
    assert "poor generation" in _pitfalls(findings), report(findings)
    assert "mask_prompt=False" in findings[-1].evidence and findings[-1].fixes[0].startswith("mask the prompt")
    # Not from the answers alone: the built-in model learned to end its turns in pre-training, so the unmasked run's
    # answers are short and well-formed; the damage shows in what they say (exact match below) and in the labels.
    masked = lorakit.train("quickstart", learning_rate=1e-3, max_steps=150, n_train=1200, n_eval=48,
                           gradient_checkpointing=False, save_strategy="no", output_dir=tmp_path / "masked")
    rows, masked_answers, masked_finished = _generate(masked)
    masked_data = load_dataset("instruction", masked.tokenizer, n_train=16, n_eval=4)
    findings = diagnose(masked, answers=masked_answers, finished=masked_finished, data=masked_data)
    assert findings == [], report(findings)
    right = {name: sum(a == r["response"] for a, r in zip(ans, rows)) / len(rows)
             for name, ans in (("unmasked", answers), ("masked", masked_answers))}
    print("exact match on 48 instruction rows:", right)
    assert right["masked"] == exact_match(masked.model, masked.tokenizer, rows)
    assert right["masked"] > right["unmasked"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_clean_quickstart_run_raises_no_alarm(seed, tmp_path):
    result = lorakit.train("quickstart", seed=seed, gradient_checkpointing=False, save_strategy="no",
                           output_dir=tmp_path)
    numbers = forgetting(result.model, result.tokenizer, BASE_TEXTS)
    findings = diagnose(result, forgetting=numbers)
    assert findings == [], report(findings)
    assert str(findings) == "✓ no pitfall found"


def test_pad_equal_to_eos_is_flagged_only_when_the_labels_lost_eos():
    class Tok:
        pad_token_id = eos_token_id = 7

    history = [{"step": s, "loss": 5.0 - 0.1 * s, "grad_norm": 1.0} for s in range(1, 11)]
    kept = [{"input_ids": [1, 2, 3, 7, 7], "labels": [-100, 2, 3, 7, -100]}]  # padded by position: eos is a label
    masked_by_id = [{"input_ids": [1, 2, 3, 7, 7], "labels": [-100, 2, 3, -100, -100]}]  # eos masked with the padding
    assert diagnose(history, tokenizer=Tok(), data=kept) == []
    assert diagnose(history, tokenizer=Tok()) == []  # nothing to look at: no finding
    findings = diagnose(history, tokenizer=Tok(), data=masked_by_id)
    assert _pitfalls(findings) == {"poor generation"}
    assert "pad token == eos" in findings[0].evidence and "pad token distinct from eos" in findings[0].fixes[0]


def test_flat_loss_names_the_likely_cause_from_the_recipe():
    flat = [{"step": s, "loss": 3.0 - 0.001 * s, "grad_norm": 1.0} for s in range(1, 21)]
    low_scale = SimpleNamespace(log_history=flat, recipe=get_recipe("quickstart", r=8, lora_alpha=2,
                                                                  target_modules="q,v"))
    finding = diagnose(low_scale)[0]
    assert "alpha/r = 0.25" in finding.evidence and "['q_proj', 'v_proj'] adapted" in finding.evidence
    assert finding.fixes[:2] == [FIXES["loss not decreasing"][1], FIXES["loss not decreasing"][2]]
    no_labels = [{"input_ids": [5, 6, 7, 8], "labels": [-100] * 4, "attention_mask": [1] * 4}] * 3
    findings = diagnose([{"step": 1, "loss": 2.0}], data=no_labels)
    assert findings[0].severity == "critical" and "every label" in findings[0].evidence
    assert findings[0].fixes[0].startswith("check the labels")


def test_synthetic_histories():
    spikes = [{"step": s, "loss": 3.0 - 0.1 * s, "grad_norm": 50.0 if s == 5 else 1.0} for s in range(1, 12)]
    assert _pitfalls(diagnose(spikes)) == {"grad-norm spikes"}
    assert "step 5" in diagnose(spikes)[0].evidence and "50× the median 1" in diagnose(spikes)[0].evidence
    clipped = SimpleNamespace(log_history=spikes, recipe=get_recipe("quickstart"))  # max_grad_norm=0.3 caps both
    assert diagnose(clipped) == []
    unclipped = SimpleNamespace(log_history=spikes, recipe=get_recipe("quickstart", max_grad_norm=0.0))
    assert _pitfalls(diagnose(unclipped)) == {"grad-norm spikes"}
    diverging = [{"step": s, "loss": 2.0 + 0.5 * s, "grad_norm": 1.0} for s in range(1, 12)]
    assert _pitfalls(diagnose(diverging)) == {"divergence"}
    healthy = [{"step": s, "loss": 3.0 * math.exp(-s / 10), "grad_norm": 1.0 + 0.1 * (s % 3)} for s in range(1, 41)]
    healthy += [{"step": 10 * e, "epoch": float(e), "eval_loss": 2.0 - 0.1 * e} for e in range(1, 5)]
    assert diagnose(healthy) == []
    nan = diagnose([{"step": 1, "loss": 2.0}, {"step": 2, "loss": math.nan}])
    assert isinstance(nan[0], Finding) and nan[0].severity == "critical" and "step 2" in nan[0].evidence
    assert report([]) == "✓ no pitfall found"
    with pytest.raises(ValueError, match="run must be a TrainResult"):
        diagnose("not a run")
    with pytest.raises(ValueError, match="pitfall must be one of"):
        reproduce("boredom")


def test_findings_print_and_render():
    findings = diagnose([{"step": s, "loss": 2.0 + 0.5 * s} for s in range(1, 12)])
    assert isinstance(findings, Findings) and isinstance(findings, list)
    text = str(findings)
    assert text == report(findings) and text.startswith("✖ divergence (critical): train loss rose")
    assert "→ lower the learning rate" in text
    assert "<b" in findings._repr_html_() and "divergence" in findings._repr_html_()
    assert "no pitfall" in Findings()._repr_html_()


def test_diagnosis_and_reproductions_are_public_in_lorakit_evaluation():
    import lorakit.evaluation

    assert lorakit.diagnose is diagnose is lorakit.evaluation.diagnose
    assert lorakit.evaluation.reproduce is reproduce and lorakit.evaluation.PITFALLS == PITFALLS
    assert not hasattr(diagnose, "reproduce")  # no attributes wired onto the function


def test_nan_guard_stops_the_trainer():
    class Control:
        should_training_stop = False

    class State:
        global_step = 3

    guard, control = NanGuardCallback(), Control()
    guard.on_log(None, State(), control, logs={"loss": 1.0})
    assert not control.should_training_stop
    guard.on_log(None, State(), control, logs={"loss": math.inf})
    assert control.should_training_stop and "step 3" in guard.finding.evidence


def test_nan_guard_sees_nan_weights_behind_a_filtered_loss():
    """With logging_nan_inf_filter (the Trainer's default) a NaN step logs a finite loss; the weights tell."""
    import torch

    class Control:
        should_training_stop = False

    class State:
        global_step = 3

    model = torch.nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    guard, control = NanGuardCallback(), Control()
    guard.on_log(None, State(), control, logs={"loss": 0.0}, model=model)
    assert not control.should_training_stop
    with torch.no_grad():
        model.bias.fill_(math.nan)  # a frozen weight is not the adapter's doing
    guard.on_log(None, State(), control, logs={"loss": 0.0}, model=model)
    assert not control.should_training_stop
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    guard.on_log(None, State(), control, logs={"loss": 0.0}, model=model)
    assert control.should_training_stop and "trainable weight weight is not finite at step 3" in guard.finding.evidence
