"""The claims audit: verdict rules, the computed figures it relies on, and its CPU measurements (one run)."""

import math

import pytest

from lorakit.claims import Claim, audit, claims_table, verdict


@pytest.fixture(scope="module")
def measured():
    return {c.statement: c for c in audit(measure=True)}


def test_verdict_rule():
    assert verdict(100, 110) == "holds"
    assert verdict(100, 140) == "off" and verdict(100, 70) == "off"
    assert verdict(100, 200) == "wrong" and verdict(4e6, 40e6) == "wrong"


def _find(claims, fragment):
    (claim,) = [c for c in claims if fragment in c.statement]
    return claim


def test_computed_verdicts_without_measuring():
    claims = audit()
    assert all(isinstance(c, Claim) and c.measured is None for c in claims)
    assert _find(claims, "r=8 on q_proj,v_proj").computed == 4_194_304
    assert _find(claims, "r=8 on q_proj,v_proj").verdict == "holds"
    assert _find(claims, "~4M parameters").verdict == "wrong"
    assert _find(claims, "~20M parameters").verdict == "wrong"
    assert _find(claims, "~20M parameters").computed == 39_976_960
    assert _find(claims, "Full fine-tuning").verdict == "holds"
    assert _find(claims, "saves ~40 % of activation").verdict == "wrong"
    assert _find(claims, "saves ~40 % of activation").computed > 90
    eight_bit = _find(claims, "8-bit optimizer")
    assert 74 < eight_bit.computed < 75.5 and eight_bit.verdict == "off"
    qlora = _find(claims, "QLoRA (NF4")
    qlora_gc = _find(claims, "QLoRA with gradient checkpointing")
    assert qlora_gc.computed < qlora.computed
    assert _find(claims, "slower than LoRA").verdict == "not measured"


def test_measurements(measured):
    claims = list(measured.values())
    assert _find(claims, "r=8 on q_proj,v_proj").measured == 4_194_304  # peft on a meta-device 7B
    assert _find(claims, "~20M parameters").measured == 39_976_960
    gc = _find(claims, "saves ~40 % of activation")
    assert gc.measured > 80 and gc.verdict == "wrong"  # it saves far more than 40 %
    assert _find(claims, "more training time").measured > 0  # recomputation is never free
    eight_bit = _find(claims, "8-bit optimizer")
    assert 70 < eight_bit.measured < 76  # 8 bytes → ~2.03 bytes per parameter


def test_table_rows(measured):
    rows = claims_table(list(measured.values()))
    assert len(rows) == len(measured)
    assert set(rows[0]) == {"claim", "stated", "computed", "measured", "verdict", "note"}
    assert rows[0]["computed"] == "4.19M"
    assert all(isinstance(v, str) for row in rows for v in row.values())
    assert _find(list(measured.values()), "slower").computed != _find(list(measured.values()), "slower").computed  # NaN
    assert any(row["measured"] == "—" for row in rows)
    assert math.isnan(_find(list(measured.values()), "slower").computed)
