"""Continual-learning metrics on a hand-computed matrix, and gate verdicts on constructed score tables."""

from __future__ import annotations

import pytest

from sdft.gate import gate
from sdft.metrics import AccuracyMatrix, cl_metrics
from sdft.params import GateParams

# rows: base, after skill 1, after skill 2, after skill 3; columns: skills 1..3
R = [
    [0.10, 0.20, 0.00],
    [0.80, 0.20, 0.10],
    [0.70, 0.90, 0.10],
    [0.60, 0.85, 0.70],
]


def test_acc_bwt_forgetting_by_hand():
    m = cl_metrics(R)
    assert m.acc == pytest.approx((0.60 + 0.85 + 0.70) / 3)
    # BWT = mean over j<T of R[T][j] - R[j][j] = ((0.60-0.80) + (0.85-0.90)) / 2
    assert m.bwt == pytest.approx(-0.125)
    # forgetting = mean over j<T of max_{l in j..T-1} R[l][j] - R[T][j] = ((0.80-0.60) + (0.90-0.85)) / 2
    assert m.forgetting == pytest.approx(0.125)


def test_single_skill_has_no_backward_transfer_and_bad_shapes_are_refused():
    m = cl_metrics([[0.1], [0.9]])
    assert m.acc == pytest.approx(0.9) and m.bwt is None and m.forgetting is None
    with pytest.raises(ValueError):
        cl_metrics([[0.1, 0.2], [0.3]])


def test_forgetting_uses_the_best_past_score_not_just_the_first():
    m = cl_metrics([[0, 0, 0], [0.5, 0, 0], [0.9, 0.5, 0], [0.6, 0.5, 0.5]])
    assert m.forgetting == pytest.approx(((0.9 - 0.6) + 0) / 2)
    assert m.bwt == pytest.approx(((0.6 - 0.5) + 0) / 2)  # positive: skill 1 improved later


REF = {"new": 0.10, "old": 0.80, "general": 0.90}
GP = GateParams(min_new_score=0.5, min_new_gain=0.2, max_prior_drop=0.05, max_general_drop=0.02)


def verdict(cand, params=GP):
    return gate(cand, REF, "new", ["old"], ["general"], params)


def test_one_accuracy_matrix_gives_the_summary_the_report_and_each_stage_read():
    rows = [{"a": 0.0, "b": 0.1, "probe": 1.0}, {"a": 0.8, "b": 0.2, "probe": 0.9}, {"a": 0.6, "b": 0.7, "probe": 0.85}]
    m = AccuracyMatrix("sdft", ["a", "b"], ["probe"], rows, train_seconds=12.0)
    assert m.row_labels() == ["base", "a", "b"] and m.columns() == ["a", "b", "probe"]
    summary = m.summary()
    assert summary["new_skill"] == {"a": 0.8, "b": 0.7} and summary["general"] == {"probe": 0.85}
    assert summary["acc"] == pytest.approx(0.65) and summary["bwt"] == pytest.approx(-0.2)
    first = m.through("a")  # what the register stage of `a` logged: the matrix right after `a`
    assert first.rows == rows[:2] and first.metrics().bwt is None and first.metrics().acc == pytest.approx(0.8)


def test_gate_passes_a_candidate_within_every_limit():
    v = verdict({"new": 0.60, "old": 0.78, "general": 0.90})
    assert v.passed and v.reasons == []
    assert "PASS" in v.to_markdown()


def test_gate_boundary_drop_exactly_at_the_limit_passes_and_just_over_fails():
    assert verdict({"new": 0.60, "old": 0.75, "general": 0.88}).passed  # drops of exactly 0.05 and 0.02
    v = verdict({"new": 0.60, "old": 0.7499, "general": 0.88})
    assert not v.passed and len(v.reasons) == 1 and "prior skill old: dropped 5.0 points" in v.reasons[0]


def test_gate_reports_one_reason_per_failed_check():
    v = verdict({"new": 0.20, "old": 0.50, "general": 0.80})
    kinds = sorted(c.kind for c in v.checks if not c.passed)
    assert kinds == ["general", "new", "new", "prior"] and len(v.reasons) == 4
    assert "below the minimum 50.0" in " ".join(v.reasons)
    assert v.as_dict()["passed"] is False and "Why it failed" in v.to_markdown()


def test_impossible_threshold_always_fails_and_verdicts_are_deterministic():
    cand = {"new": 1.0, "old": 0.8, "general": 0.9}
    impossible = GateParams(min_new_score=1.01)
    a, b = verdict(cand, impossible), verdict(cand, impossible)
    assert not a.passed and a.to_json() == b.to_json()
