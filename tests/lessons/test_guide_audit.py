"""The verbatim audit: every quote is the guide's own text, every number of the guide is covered, the verdicts follow
from computed or measured values (none hard-coded), and the guide's self-contradictions are named."""


import pytest

from lorakit.lessons.guide_audit import (
    NUMBER,
    VERDICTS,
    Claim,
    audit,
    claims_table,
    counts,
    guide_number_lines,
    inconsistencies,
    verdict,
)
from lorakit.lessons.guide_measurements import measure_shared_base, nf4_bits_per_weight
from tests.helpers import GUIDE, GUIDE_NUMBERS


@pytest.fixture(scope="module")
def measured():
    return audit(measure=True)


def _quotes(claims):
    return [c.quote for c in claims] + [q for i in inconsistencies() for q in i.quotes]


def _find(claims, quote):
    (claim,) = [c for c in claims if c.quote == quote]
    return claim


def test_verdict_rule():
    assert verdict(100, 124) == "holds" and verdict(100, 126) == "wrong" and verdict(100, 70) == "wrong"
    assert verdict(12, 14.6, floor=13.48) == "impossible"
    assert verdict(32, 32, exact=True) == "holds" and verdict(32, 31, exact=True) == "wrong"
    assert verdict(20, None) == "not measurable here"


def test_stored_guide_lines_are_the_guides_own():
    if not GUIDE.exists():
        pytest.skip(f"the guide is not at {GUIDE} (set LORAKIT_GUIDE)")
    assert guide_number_lines(GUIDE.read_text()) == GUIDE_NUMBERS


def test_every_quote_is_verbatim_in_the_guide():
    text = GUIDE.read_text() if GUIDE.exists() else "\n".join(GUIDE_NUMBERS)
    quotes = _quotes(audit())
    missing = [q for q in quotes if q not in text]
    if not GUIDE.exists():  # only quotes of number-bearing lines can be checked against the stored copy
        missing = [q for q in missing if NUMBER.search(q)]
    assert missing == []


def test_every_guide_number_is_covered_by_an_audit_quote():
    quotes = _quotes(audit())
    uncovered = []
    for line in GUIDE_NUMBERS:
        spans = [(line.find(q), line.find(q) + len(q)) for q in quotes if q in line]
        for number in NUMBER.finditer(line):
            if not any(a <= number.start() and number.end() <= b for a, b in spans):
                uncovered.append((number.group(), line))
    assert uncovered == []
    assert len(GUIDE_NUMBERS) > 50


def test_the_7b_memory_table_as_the_guide_states_it():
    claims = audit()
    table = {c.quote: c for c in claims if c.section == "5.4 7B memory table"}
    assert [c.stated for c in table.values()] == [120, 16, 12, 6, 4.5]
    assert table["| Full FP16 fine-tuning | ~120 GB |"].verdict == "holds"
    lora_gc = table["| LoRA + gradient checkpointing | ~12 GB |"]
    assert lora_gc.verdict == "impossible" and "13.48 GB > ~12 GB" in lora_gc.reason
    assert table["| QLoRA 4-bit | ~6 GB |"].verdict == "wrong"  # 9.05 GB at 1 × 512 tokens
    assert table["| QLoRA 4-bit + gradient checkpointing | **~4.5 GB** |"].verdict == "holds"


def test_computed_verdicts_without_measuring():
    claims = audit()
    assert all(isinstance(c, Claim) and c.verdict in VERDICTS for c in claims)
    assert _find(claims, '| `"all-linear"` | ~10M').value == 39_976_960
    assert _find(claims, "| 8 | Standard fine-tuning | ~2M |").value == 4_194_304
    assert _find(claims, "| 8-bit optimizer | ~50% less optimizer memory").verdict == "wrong"
    assert _find(claims, "cuts optimizer memory by 75%").verdict == "holds"
    time_claim = _find(claims, "~20% slower | All models")
    assert time_claim.value is None and time_claim.verdict == "not measurable here"  # measured only, never assumed
    assert 4.12 < nf4_bits_per_weight() < 4.13 and nf4_bits_per_weight(double_quant=False) == pytest.approx(4.5)


def test_measurements(measured):
    gc = _find(measured, "| Gradient checkpointing | ~40% less activation memory")
    assert gc.value > 80 and gc.verdict == "wrong" and gc.source.startswith("measured")
    gc_time = _find(measured, "~20% slower | All models")
    assert gc_time.value > 0 and gc_time.source.startswith("measured")  # recomputation is never free
    assert gc_time.verdict == "not measurable here"  # a GPU speed claim: a CPU timing is shown, never a verdict
    assert _find(measured, "trades ~20% speed").value == gc_time.value
    eight_bit = _find(measured, "cuts optimizer memory by 75%")
    assert 70 < eight_bit.value < 76 and eight_bit.verdict == "holds"
    assert sum(counts(measured).values()) == len(measured)


def test_inconsistencies_are_named():
    found = inconsistencies()
    assert {q for i in found for q in i.quotes} >= {"lower (1e-5) for DPO", "**Train for 1-3 epochs**",
                                                     "~40% less activation memory", "~60% memory savings",
                                                     "~50% less optimizer memory", "cuts optimizer memory by 75%"}
    assert all(len(i.quotes) >= 2 and i.explanation for i in found)


def test_the_ab_snippet_shares_one_base(tmp_path):
    shared = measure_shared_base(str(tmp_path))
    assert shared["shared_layers"] == 1.0 and shared["max_logit_change"] > 0


def test_table_rows(measured):
    rows = claims_table(measured)
    assert len(rows) == len(measured)
    assert set(rows[0]) == {"section", "quote", "stated", "value", "verdict", "source", "reason"}
    assert all(isinstance(v, str) for row in rows for v in row.values())
