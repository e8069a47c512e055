"""Each pitfall is reproduced on the built-in model with a lorakit call and detected; clean runs raise no alarm."""

import math

import pytest

import lorakit
from lorakit.corpus import pretraining_texts
from lorakit.data import load_dataset
from lorakit.diagnostics import Finding, NanGuardCallback, diagnose, report, reproduce
from lorakit.evaluate import forgetting, generate_answers

BASE_TEXTS = [t[:1500] for t in pretraining_texts("heldout")[:6]]


def _pitfalls(findings):
    return {f.pitfall for f in findings}


def _answers(result):
    rows = load_dataset("instruction", result.tokenizer, n_train=8, n_eval=48).raw_eval
    return generate_answers(result.model, result.tokenizer, [r["prompt"] for r in rows])


def test_flat_loss(tmp_path):
    assert "loss not decreasing" in _pitfalls(diagnose(reproduce("flat", str(tmp_path))))


def test_overfitting(tmp_path):
    findings = diagnose(reproduce("overfit", str(tmp_path)))
    assert "overfitting" in _pitfalls(findings)
    assert any("early" in fix or "best epoch" in fix for f in findings for fix in f.fixes)


def test_nan_is_caught_and_training_stopped(tmp_path):
    result = reproduce("nan", str(tmp_path))
    assert "divergence" in _pitfalls(diagnose(result))
    assert result.log_history[-1]["step"] < 40  # the guard stopped the run before max_steps


def test_forgetting(tmp_path):
    result = reproduce("forgetting", str(tmp_path))
    numbers = forgetting(result.model, result.tokenizer, BASE_TEXTS)
    assert numbers["ratio"] > 2
    assert "forgetting" in _pitfalls(diagnose(result, forgetting=numbers))


def test_unmasked_prompts_collapse_generation_where_masked_ones_do_not(tmp_path):
    unmasked = reproduce("unmasked", str(tmp_path))
    assert "poor generation" in _pitfalls(diagnose(unmasked, answers=_answers(unmasked)))
    masked = lorakit.train("quickstart", learning_rate=1e-3, max_steps=150, n_train=1200, n_eval=48,
                           gradient_checkpointing=False, save_strategy="no", output_dir=tmp_path / "masked")
    assert "poor generation" not in _pitfalls(diagnose(masked, answers=_answers(masked)))


@pytest.mark.parametrize("seed", [1, 2])
def test_clean_quickstart_run_raises_no_alarm(seed, tmp_path):
    result = lorakit.train("quickstart", seed=seed, gradient_checkpointing=False, save_strategy="no",
                           output_dir=tmp_path)
    numbers = forgetting(result.model, result.tokenizer, BASE_TEXTS)
    findings = diagnose(result, forgetting=numbers)
    assert findings == [], report(findings)


def test_pad_equal_to_eos_is_flagged():
    class Tok:
        pad_token_id = eos_token_id = 7

    history = [{"step": s, "loss": 5.0 - 0.1 * s, "grad_norm": 1.0} for s in range(1, 11)]
    assert "poor generation" in _pitfalls(diagnose(history, tokenizer=Tok()))


def test_synthetic_histories():
    spikes = [{"step": s, "loss": 3.0 - 0.1 * s, "grad_norm": 50.0 if s == 5 else 1.0} for s in range(1, 12)]
    assert _pitfalls(diagnose(spikes)) == {"grad-norm spikes"}
    diverging = [{"step": s, "loss": 2.0 + 0.5 * s, "grad_norm": 1.0} for s in range(1, 12)]
    assert _pitfalls(diagnose(diverging)) == {"divergence"}
    assert isinstance(diagnose([{"step": 1, "loss": math.nan}])[0], Finding)
    assert report([]) == "✓ no pitfall found"
    with pytest.raises(ValueError, match="run must be a TrainResult"):
        diagnose("not a run")
    with pytest.raises(ValueError, match="pitfall must be one of"):
        reproduce("boredom")


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
