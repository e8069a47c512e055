"""The "where we differ from the guide" table: verbatim guide quotes, live course values, a reason and evidence for
every difference."""

import pytest

from lorakit.config.recipes import RECIPES
from lorakit.lessons.deviations import TOPICS, deviations, deviations_table, dropout_for
from lorakit.training.schedules import LR_RANGES
from tests.helpers import GUIDE


def test_quotes_are_the_guides_own():
    if not GUIDE.exists():  # the stored lines hold no code, and some quotes are the guide's code
        pytest.skip(f"the guide is not at {GUIDE} (set LORAKIT_GUIDE)")
    assert [d.guide for d in deviations() if d.guide not in GUIDE.read_text()] == []


def test_every_difference_has_a_reason_and_evidence():
    rows = deviations()
    assert {d.topic for d in rows} == set(TOPICS)
    assert all(d.reason and d.evidence for d in rows if not d.follows)


def test_the_course_follows_the_guide_where_it_says_so():
    follows = {d.setting for d in deviations() if d.follows}
    assert {"< 1K examples", "< 10K examples", "QLoRA", "DoRA", "classification dropout"} <= follows
    assert LR_RANGES["QLoRA"] == (1e-4, 2e-4) and LR_RANGES["DoRA"] == (5e-5, 2e-4)
    assert RECIPES["classification"].lora_dropout == 0.1


@pytest.mark.parametrize("n_examples,dropout", [(1, 0.2), (999, 0.2), (1_000, 0.1), (9_999, 0.1), (10_000, 0.05),
                                                (100_000, 0.05), (100_001, 0.0), (10**9, 0.0)])
def test_dropout_for_follows_the_bands_at_their_edges(n_examples, dropout):
    assert dropout_for(n_examples) == dropout


@pytest.mark.parametrize("bad", [0, -5, 1.5, "1000", True])
def test_dropout_for_refuses_a_count_that_is_not_one(bad):
    with pytest.raises(ValueError, match="n_examples must be an integer ≥ 1"):
        dropout_for(bad)


def test_code_length_evidence_is_computed():
    (code,) = [d for d in deviations() if d.setting == "code max length"]
    assert not code.follows and "512 positions" in code.reason
    assert code.evidence == "load_dataset('code', max_length=384) keeps 120 of 120 training rows"


def test_table_by_topic():
    dropout = deviations_table("dropout")
    assert "0.2 | Very small datasets" in dropout and "QLoRA" not in dropout
    assert "evidence:" in deviations_table("recipes")
    with pytest.raises(ValueError, match="topic must be None or one of"):
        deviations_table("rank")
