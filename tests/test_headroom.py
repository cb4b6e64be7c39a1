"""The teacher-headroom check (sdft/headroom.py): a skill the model cannot do even with the demonstration in
context is refused before SDFT trains on it, naming the skill's file and the fix, and nothing is written.

The random tiny test model cannot follow a demonstration (its teacher scores what its student scores), so the
refusal runs on it end to end; the arithmetic of the scores, where the teacher must be right and the student not,
uses a scripted answerer in the model's place (the one thing here that needs a model able to read in context).
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import fact_records
from test_faults import run_cli, snapshot

from sdft.errors import SdftError
from sdft.headroom import Headroom, check_headroom, measure_headroom
from sdft.params import Params, SkillSpec
from sdft.prompts import teacher_prompt
from sdft.recipes.sdft import teacher_headroom

TEMPLATE = "{demonstration}\n\n{prompt}"


def reader(calls: list):
    """Answers a view right exactly when the view holds its record's demonstration (a model that reads in context),
    else with a wrong answer; logs every call."""
    def generate(views: list, max_new_tokens: int) -> list[str]:
        calls.append(list(views))
        out = []
        for v in views:
            said = [w for w in str(v).split() if w.startswith("ANSWER-")]
            out.append(f"It is {said[0].rstrip('.')}." if said else "I do not know.")
        return out
    return generate


def records(n: int, kind_of_answer=lambda i: f"ANSWER-{i}") -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"Question {i}?", "demonstration": f"The answer is {kind_of_answer(i)}.",
             "answer": [kind_of_answer(i)]} for i in range(n)]


def test_headroom_scores_the_prompt_alone_and_the_teacher_view_in_one_call_with_the_skills_scorer():
    calls: list = []
    rows = records(4)
    rows[3]["prompt"] = "Question 3? ANSWER-3"  # the student can answer this one alone
    rows.append({"id": "open", "prompt": "Say hi.", "demonstration": "Hi!"})  # no answer: not scored
    h = measure_headroom(reader(calls), rows, TEMPLATE, "contains", 12)
    assert h == Headroom(n=4, student=0.25, teacher=1.0) and h.gain == 0.75
    assert len(calls) == 1  # one batch: both views scheduled together
    assert calls[0] == [r["prompt"] for r in rows[:4]] + [teacher_prompt(r["prompt"], r["demonstration"], TEMPLATE)
                                                          for r in rows[:4]]
    assert measure_headroom(reader(calls), [rows[-1]], TEMPLATE, "contains", 12) is None  # nothing to score


def test_the_check_refuses_below_the_minimum_naming_the_file_and_is_off_at_zero():
    check_headroom(Headroom(n=8, student=0.0, teacher=0.125), 0.05, "facts", "skills/facts.jsonl")  # 12.5 >= 5
    check_headroom(Headroom(n=8, student=0.5, teacher=0.5), 0.0, "facts", "skills/facts.jsonl")  # off
    check_headroom(None, 0.05, "facts", "skills/facts.jsonl")  # nothing scorable: nothing to judge
    with pytest.raises(SdftError) as err:
        check_headroom(Headroom(n=8, student=0.25, teacher=0.25), 0.05, "facts", "skills/facts.jsonl")
    text = str(err.value)
    assert text.startswith("skills/facts.jsonl: ") and "'facts'" in text and "25%" in text
    assert "sdft.min_teacher_headroom: 0" in text and "train.method: sft" in text


def test_the_recipe_measures_the_new_skills_training_records_once_each_never_replayed_rows(tmp_path):
    params = Params(skills={"facts": SkillSpec(name="facts", path="skills/facts.jsonl", scorer="contains",
                                               kind="knowledge", after="base")})
    params.sdft.min_teacher_headroom = 0.05
    params.sdft.teacher_templates = {"knowledge": TEMPLATE}
    new = [{**r, "source": "new", "skill": "facts", "kind": "knowledge"} for r in records(3)]
    prior = [{**r, "id": f"old{i}", "prompt": f"Old {i}? ANSWER-9", "source": "prior", "skill": "old", "kind": "knowledge"}
             for i, r in enumerate(records(2))]
    anchor = [{"id": "a0", "prompt": "What is 2 + 2?", "demonstration": "", "source": "anchor", "kind": "general"}]
    calls: list = []
    mixture = new + prior + anchor + new  # a second pass repeats the new skill's rows
    h = teacher_headroom(params, params.skill("facts"), mixture, reader(calls))
    assert h == Headroom(n=3, student=0.0, teacher=1.0)
    assert calls == [[r["prompt"] for r in new[:3]] + [teacher_prompt(r["prompt"], r["demonstration"], TEMPLATE)
                                                       for r in new[:3]]]
    params.sdft.min_teacher_headroom = 0  # off: not even measured
    calls.clear()
    assert teacher_headroom(params, params.skill("facts"), mixture, reader(calls)) is None and calls == []


def test_a_skill_the_teacher_cannot_do_is_refused_by_sdft_train_before_any_step_and_writes_nothing(tmp_path,
                                                                                                    tiny_model_dir):
    from conftest import REPO

    root = tmp_path / "proj"
    (root / "skills").mkdir(parents=True)
    (root / "skills" / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fact_records(8)))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["sdft"]["min_teacher_headroom"] > 0  # the shipped default checks
    params["model"]["name_or_path"] = str(tiny_model_dir)
    params["skills"] = {"facts": {"path": "skills/facts.jsonl", "kind": "knowledge", "scorer": "contains", "after": "base"}}
    params["probes"] = {}
    params["rollout"]["engine"] = "hf"
    params["replay"].update(prior_fraction=0.0, anchor_fraction=0.0)
    params["train"].update(max_steps=2, per_device_train_batch_size=2, max_completion_length=8)
    params["eval"].update(max_new_tokens=6, batch_size=4)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert run_cli(root, "ingest", "skills/facts.jsonl", "--skill", "facts").returncode == 0
    before = snapshot(root)

    train = ["train", "--skill", "facts", "--base", str(tiny_model_dir), "--out", "ckpt"]
    refused = run_cli(root, *train)
    assert refused.returncode == 2, refused.stderr
    assert "skills/facts.jsonl: SDFT has nothing to teach for skill 'facts'" in refused.stderr
    assert "sdft.min_teacher_headroom: 0" in refused.stderr
    assert snapshot(root) == before and not (root / "ckpt").exists()  # no checkpoint, no metrics, no leftovers

    params["sdft"]["min_teacher_headroom"] = 0  # the user's way to train anyway
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    trained = run_cli(root, *train)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((root / "ckpt.train_metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["teacher_headroom"] is None  # off: not measured


def test_an_in_process_sequence_stops_at_a_refused_skill_with_the_matrix_of_what_came_before(params, tmp_path, capsys):
    """`sdft compare`, the demo's baselines and the bench scripts learn in process: a refused skill ends the chain
    there, as it ends the pipeline's, and the matrix holds the base row only (nothing was learned)."""
    from sdft.sequence import learn_sequence

    for name, rows in {"facts": fact_records(6), "probe": fact_records(4)}.items():
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params.sdft.min_teacher_headroom = 0.05
    result = learn_sequence(params, "sdft", tmp_path / "seq", max_steps=1)
    assert result.skills == [] and len(result.rows) == 1 and "probe" in result.rows[0]
    assert "[sdft] facts refused: " in capsys.readouterr().out
    assert not (tmp_path / "seq" / "checkpoints" / "facts").exists()


def test_the_measured_headroom_is_on_the_versions_mlflow_run(tmp_path, monkeypatch, params):
    """Real MLflow on sqlite: what the check measured is beside the scores in the UI."""
    from conftest import fake_checkpoint

    from sdft import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params.artifacts_dir = str(tmp_path / "artifacts")
    ckpt = fake_checkpoint(tmp_path, "a")
    log = ckpt.with_name("a.train_metrics.json")
    log.write_text(json.dumps({**json.loads(log.read_text()), "teacher_headroom": Headroom(12, 0.0, 0.75).as_dict()}))
    scores = {"scores": {"facts": 0.5}, "reference": {"scores": {"facts": 0.0}}}
    version = registry.register(params, "facts", ckpt, scores, {"passed": True}, [], {})
    c = registry.client()
    metrics = c.get_run(c.get_model_version("sdft-model", version["version"]).run_id).data.metrics
    assert {k: metrics[k] for k in metrics if k.startswith("teacher_headroom.")} == {
        "teacher_headroom.student": 0.0, "teacher_headroom.teacher": 0.75, "teacher_headroom.gain": 0.75}
