"""bench/pareto.py gathers points into one pareto.json over several runs (the whole curriculum takes hours per method
on a CPU). A point measured with other settings or other data must not be plotted beside the new ones: it is set aside
and measured again. No model runs here: the digest and the split are what decide."""

from __future__ import annotations

import shutil

from conftest import REPO, load_script
from sdft.params import load_params, with_overrides


def _params_on_copies(tmp_path):
    """params.yaml with every skill, probe and anchor file copied under tmp_path (so a test may edit one)."""
    params = load_params(REPO / "params.yaml")
    overrides = {}
    for group in ("skills", "probes"):
        for name, spec in getattr(params, group).items():
            copy = tmp_path / f"{name}.jsonl"
            shutil.copy(REPO / spec.path, copy)
            overrides[f"{group}.{name}.path"] = str(copy)
    anchors = tmp_path / "anchors.jsonl"
    shutil.copy(REPO / params.replay.anchor_prompts, anchors)
    overrides["replay.anchor_prompts"] = str(anchors)
    return with_overrides(params, overrides)


def test_a_point_is_reused_only_under_the_settings_and_data_it_was_measured_with(tmp_path):
    pareto = load_script("bench/pareto.py")
    params = _params_on_copies(tmp_path)
    digest = {(m, lr): pareto.settings_digest(pareto.variant(params, m, lr)[0])
              for m in ("sdft", "sft", "sft-replay") for lr in (1e-4, 2e-4)}
    assert len(set(digest.values())) == len(digest)  # each method and lr is its own measurement
    assert digest[("sdft", 1e-4)] == pareto.settings_digest(pareto.variant(params, "sdft", 1e-4)[0])  # stable

    points = [{"method": "sdft", "lr": 1e-4, "settings": digest[("sdft", 1e-4)]},
              {"method": "sft", "lr": 2e-4, "settings": digest[("sft", 2e-4)]},
              {"method": "sft-replay", "lr": 1e-4},  # written before points carried their settings
              {"method": "sft", "lr": 1e-4, "settings": digest[("sft", 2e-4)]}]  # another point's settings
    fresh, stale = pareto.current(points, params)
    assert fresh == points[:2] and stale == points[2:]

    # A setting changed since (params.yaml edited between two runs): every point is measured again.
    changed = with_overrides(params, {"sdft.sft_weight": 0.3})
    assert pareto.current(points[:2], changed) == ([], points[:2])

    # A setting left null (one added later whose null keeps the old behaviour) drops out of the digest, so points
    # measured before it existed stay comparable under null; set to anything else, they do not. (The stored
    # docs/pareto_curriculum.json points predate replay.prior_sft_weight: --set replay.prior_sft_weight=null.)
    assert pareto._set_values({"a": 1, "new": None, "sub": {"b": 0, "new": None}}) == {"a": 1, "sub": {"b": 0}}
    assert pareto.current(points[:2], with_overrides(params, {"replay.prior_sft_weight": 0.1}))[1] == points[:2]
    # The same for a later setting whose "off" is a value, not null: `train.freeze: []` leaves no trace; a pattern does.
    assert pareto._set_values({"train": {"freeze": [], "seed": 1}, "skill": {"tasks": []}}) == {
        "train": {"seed": 1}, "skill": {"tasks": []}}
    assert pareto.current(points[:2], with_overrides(params, {"train.freeze": ["^model"]}))[1] == points[:2]

    # A skill's data changed since, settings the same: every point is measured again.
    probe = tmp_path / "general_probe.jsonl"
    probe.write_text(probe.read_text().replace("Paris", "Lyon", 1))
    assert pareto.current(points[:2], params) == ([], points[:2])


def test_a_point_reads_new_skills_right_after_and_what_is_kept_at_the_end():
    """x is each skill's score in the row right after it was learned; retention averages the earlier skills and the
    probes in the last row; the general panel reads the probes alone (replay trains on earlier skills, not on them)."""
    pareto = load_script("bench/pareto.py")
    from sdft.metrics import AccuracyMatrix

    rows = [{"a": 0.0, "b": None, "probe": 1.0},
            {"a": 0.5, "b": 0.0, "probe": 0.9},
            {"a": 0.75, "b": 1.0, "probe": 0.6}]
    result = AccuracyMatrix("sdft", ["a", "b"], ["probe"], rows)
    new, retention = pareto.point(result)
    assert new == (0.5 + 1.0) / 2  # a after a, b after b: not a's end score
    assert retention == (0.75 + 0.6) / 2  # only earlier skills (a) and the probe, at the end
    assert pareto.general_at_end({"rows": rows}, ["probe"]) == 0.6
