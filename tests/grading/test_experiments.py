"""Graded experiments: the student's settings, collected in the sandbox, are rerun by the grader on its own seed."""

import json

import nbformat
import pytest

from lorakit.grading import experiments
from lorakit.grading.experiments import experiment_seed, rerun_experiments
from lorakit.grading.verdicts import Verdict
from lorakit.lessons.experiments import Outcome, budget_run, settings_problem

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GOOD = {"r": 8, "target_modules": ALL, "learning_rate": 2e-3}


def test_good_settings_have_no_problem():
    assert settings_problem(GOOD) == "" and settings_problem({**GOOD, "learning_rate": 0.05}) == ""


@pytest.mark.parametrize("settings, problem", [
    ([8, ALL, 2e-3], "settings must be a dict with exactly the keys ['r', 'target_modules', 'learning_rate']"),
    ({**GOOD, "lora_alpha": 64}, "settings must be a dict with exactly the keys"),
    ({**GOOD, "r": 0}, "r must be a whole number from 1 to 64, got 0"),
    ({**GOOD, "r": 8.0}, "r must be a whole number from 1 to 64, got 8.0"),
    ({**GOOD, "r": True}, "r must be a whole number from 1 to 64, got True"),
    ({**GOOD, "target_modules": []}, "target_modules must be a list of distinct names from"),
    ({**GOOD, "target_modules": ["q_proj", "q_proj"]}, "target_modules must be a list of distinct names"),
    ({**GOOD, "target_modules": ["lm_head"]}, "target_modules must be a list of distinct names"),
    ({**GOOD, "target_modules": "all-linear"}, "target_modules must be a list"),
    ({**GOOD, "learning_rate": float("nan")}, "learning_rate must be a float from 1e-06 to 0.1, got nan"),
    ({**GOOD, "learning_rate": 0.5}, "learning_rate must be a float from 1e-06 to 0.1, got 0.5"),
    ({**GOOD, "learning_rate": "2e-3"}, "learning_rate must be a float from 1e-06 to 0.1, got '2e-3'"),
    ({**GOOD, "learning_rate": 1}, "learning_rate must be a float from 1e-06 to 0.1, got 1"),
    ({**GOOD, "target_modules": ["x" * 500]}, "got ['xxx"),
])
def test_bad_settings_are_one_line_naming_the_field(settings, problem):
    found = settings_problem(settings)
    assert found.startswith(problem) or problem in found
    assert len(found) < 200 and budget_run(settings, seed=1) == Outcome(False, found)  # refused before training


def _source(experiment="budget-run"):
    cells = [nbformat.v4.new_code_cell("collect(...)"), nbformat.v4.new_code_cell("collect(...)")]
    for cell, grade_id in zip(cells, ("ex-run", "ex-plain")):
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 3.0, "solution": False,
                                     "locked": True, "schema_version": 3, "task": False}
    cells[0].metadata["lorakit"] = {"experiment": experiment}
    return nbformat.v4.new_notebook(cells=cells)


def _collected(**values):
    return "".join(json.dumps({"exercise": ex, "rel": 0.0, "results": [result]}) + "\n"
                   for ex, result in values.items())


@pytest.fixture
def reruns(monkeypatch):
    calls = []

    def fake(settings, seed):
        calls.append((settings, seed))
        return Outcome(settings.get("learning_rate") == 2e-3, f"fake run of {settings} \x1b[31m")

    monkeypatch.setitem(experiments.EXPERIMENTS, "budget-run", fake)
    return calls


def test_the_grader_reruns_the_students_settings_on_its_own_seed(reruns):
    before = {"ex-run": Verdict("ex-run", 1, 0, 3.0), "ex-plain": Verdict("ex-plain", 4, 4, 3.0)}
    text = _collected(**{"ex-run": {"value": GOOD}, "ex-plain": {"value": 1}})
    after, details = rerun_experiments(_source(), text, before, "course-seed")
    assert reruns == [(GOOD, experiment_seed("course-seed", "ex-run"))]
    assert after["ex-run"] == Verdict("ex-run", 1, 1, 3.0) and after["ex-run"].score == 3.0
    assert after["ex-plain"] is before["ex-plain"]  # no experiment: decided as before
    assert details == [f"ex-run: rerun by the grader: fake run of {GOOD} \\x1b[31m"]  # escaped for the terminal


def test_a_run_that_misses_the_target_scores_nothing_even_with_the_reference_settings(reruns):
    before = {"ex-run": Verdict("ex-run", 1, 1, 3.0)}  # equal to the reference's settings
    settings = {**GOOD, "learning_rate": 2e-4}
    after, _ = rerun_experiments(_source(), _collected(**{"ex-run": {"value": settings}}), before, "s")
    assert after["ex-run"].score == 0.0


def test_no_settings_collected_means_no_rerun(reruns):
    before = {"ex-run": Verdict("ex-run", 1, 0, 3.0)}
    for text in ("", _collected(**{"ex-run": {"error": "NotImplementedError"}}), "not json\n"):
        after, details = rerun_experiments(_source(), text, before, "s")
        assert after == before and details == []
    assert reruns == []


def test_the_seed_follows_the_secret_and_the_exercise():
    seeds = {experiment_seed(secret, exercise) for secret in ("a", "b") for exercise in ("ex-1", "ex-2")}
    assert len(seeds) == 4 and experiment_seed("a", "ex-1") == experiment_seed("a", "ex-1")


@pytest.mark.slow
def test_the_chapters_reference_settings_reach_the_target_and_the_guides_default_rate_does_not():
    seed = experiment_seed("course-secret", "ch3-budget-tests")
    reference = budget_run(GOOD, seed=seed)
    default_rate = budget_run({**GOOD, "learning_rate": 2e-4}, seed=seed)
    assert reference.passed and reference.trainable <= 150_000 and f"on seed {seed}" in reference.line
    assert not default_rate.passed and default_rate.eval_loss > reference.eval_loss + 1
