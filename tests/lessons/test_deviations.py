"""The "where we differ from the guide" table: verbatim guide quotes, live course values, a reason and evidence for
every difference."""

import pytest

from lorakit.config.recipes import RECIPES
from lorakit.lessons.deviations import DROPOUT_BANDS, TOPICS, deviations, deviations_table
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
    assert DROPOUT_BANDS[0] == (1_000, 0.2)


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
