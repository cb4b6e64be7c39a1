"""bench/step_costs.py's per-skill rows (issue #14): each method's whole train stage, run the pipeline's way on the
same ingested data and base model, replay included. The timings themselves live in the benchmark, not here."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, fact_records, load_script


def test_per_skill_rows_are_each_methods_whole_train_stage_on_the_same_data_and_replay(params, tmp_path):
    with open(params.skills["facts"].path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in fact_records(8))
    with open(params.probes["probe"].path, "w") as fh:  # anchors are checked against the probe's questions
        fh.write(json.dumps({"id": "p0", "prompt": "What is two plus two?", "answer": "4"}) + "\n")
    params.replay.anchor_prompts = str(REPO / "skills" / "anchor_prompts.jsonl")
    params.replay.anchor_fraction = 0.25
    sdft_run, sft_run = load_script("bench/step_costs.py").per_skill(params, tmp_path / "work")
    assert (sdft_run["method"], sft_run["method"]) == ("sdft", "sft")
    assert sdft_run["data_sha256"] == sft_run["data_sha256"] and sdft_run["steps"] == sft_run["steps"] == 4
    assert sdft_run["replay_rows"] == sft_run["replay_rows"] and sdft_run["replay_rows"]["anchor"] > 0
    assert sdft_run["train_seconds"] > 0 and sft_run["train_seconds"] > 0
    assert (tmp_path / "work" / "per-skill-sdft" / "config.json").exists()
    assert (tmp_path / "work" / "per-skill-sft" / "config.json").exists()


def test_a_run_count_of_zero_is_refused_before_any_model_loads(monkeypatch, capsys):
    module = load_script("bench/step_costs.py")
    for flag in ("--pairs", "--steps"):
        monkeypatch.setattr("sys.argv", ["step_costs.py", flag, "0"])
        with pytest.raises(SystemExit) as exit_info:
            module.main()
        assert exit_info.value.code == 2
        assert f"{flag} must be at least 1" in capsys.readouterr().err
