"""lm-evaluation-harness probes (issue #15 item 7): a probe of `kind: lm_eval` names local task YAMLs; ingest copies
and checks them, evaluate runs them through the harness's HF model class, and their score enters the scores, the
accuracy matrix and the gate like any probe. No hub: the task and its data are files written here."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import fact_records
from sdft import stages
from sdft.data import write_skill
from sdft.errors import SdftError
from sdft.evaluate import evaluate_model
from sdft.gate import gate
from sdft.ingest import ingest_skill
from sdft.params import SkillSpec, with_overrides

TASK = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: tiny_mc.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
DOCS = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "label": 0},
    {"question": "How many legs does a dog have?", "choices": ["two", "four", "six"], "label": 1},
    {"question": "What is 2 + 2?", "choices": ["3", "4", "5"], "label": 1},
    {"question": "Which animal says meow?", "choices": ["cat", "cow", "dog"], "label": 0},
    {"question": "What do bees make?", "choices": ["milk", "honey", "silk"], "label": 1},
    {"question": "What is the opposite of hot?", "choices": ["cold", "warm", "loud"], "label": 0},
]


@pytest.fixture
def task_dir(tmp_path):
    folder = tmp_path / "harness"
    folder.mkdir()
    (folder / "tiny_mc.yaml").write_text(TASK)
    (folder / "tiny_mc.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return folder


@pytest.fixture
def lm_params(params, task_dir):
    params.probes["harness"] = SkillSpec(name="harness", path=str(task_dir), kind="lm_eval", tasks=["tiny_mc"])
    return params


def _independent_verdicts(model_dir) -> list[bool]:
    """The harness's multiple-choice rule computed by hand: the choice whose tokens (after " ") have the highest
    summed log-probability given the question wins."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    right = []
    for doc in DOCS:
        context = f"Question: {doc['question']}\nAnswer:"
        ctx = tok(context, add_special_tokens=False)["input_ids"]
        scores = []
        for choice in doc["choices"]:
            whole = tok(context + " " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
            scores.append(sum(logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole))))
        right.append(max(range(len(scores)), key=scores.__getitem__) == doc["label"])
    return right


def test_an_lm_eval_probe_is_ingested_scored_by_the_harness_and_gated_like_any_probe(lm_params, tiny_model_dir):
    params = lm_params
    folder = ingest_skill(params, params.probes["harness"]).out_dir
    assert (folder / "tiny_mc.yaml").read_text() == TASK and (folder / "tiny_mc.jsonl").exists()
    write_skill(params.layout.data_dir("probe"), [], fact_records(4), {"skill": "probe", "probe": True})

    results = evaluate_model(params, str(tiny_model_dir), ["probe", "harness"])
    assert list(results) == ["probe", "harness"]
    score, rows = results["harness"]
    assert len(rows) == len(DOCS) and score == pytest.approx(sum(r["correct"] for r in rows) / len(DOCS), abs=1e-6)
    assert [r["correct"] for r in rows] == _independent_verdicts(tiny_model_dir)

    # The gate treats it as a general probe: a drop beyond the limit fails, none passes.
    limits = params.gate_for("facts")
    parent = {"facts": 0.0, "probe": 1.0, "harness": score}
    worse = {"facts": 1.0, "probe": 1.0, "harness": score - limits.max_general_drop - 0.1}
    for candidate, passed in ((worse, False), ({**worse, "harness": score}, True)):
        verdict = gate(candidate, parent, new_skill="facts", prior_skills=[], general=list(params.probes), params=limits)
        assert verdict.passed is passed, verdict.to_markdown()
        assert "harness" in verdict.to_markdown()


def test_the_base_stage_scores_lm_eval_probes_into_scores_json(lm_params, tiny_model_dir):
    params = lm_params
    params.probes.pop("probe")
    ingest_skill(params, params.probes["harness"])
    stages.base(params)
    scores = json.loads(params.layout.scores_file("base").read_text())["scores"]
    assert set(scores) == {"harness"} and 0.0 <= scores["harness"] <= 1.0
    rows = [json.loads(line) for line in (params.layout.predictions_dir("base") / "harness.jsonl").open()]
    assert [r["id"] for r in rows] == [f"tiny_mc/{i}" for i in range(len(DOCS))]


def test_a_task_the_folder_does_not_define_is_refused_at_ingest_naming_the_folder(lm_params, task_dir):
    spec = lm_params.probes["harness"]
    spec.tasks = ["tiny_mc", "mmlu"]  # mmlu is a built-in task: never looked up (it would download)
    with pytest.raises(SdftError, match=r"\['mmlu'\] are not defined") as exc:
        ingest_skill(lm_params, spec)
    assert str(task_dir) in str(exc.value) and "`task:` key" in str(exc.value)
    assert not lm_params.layout.data_dir("harness").exists()


def test_a_broken_data_file_is_refused_at_ingest(lm_params, task_dir):
    (task_dir / "tiny_mc.jsonl").write_text('{"question": "cut short", "choi')
    with pytest.raises(SdftError, match="lm_eval could not build the probe's tasks") as exc:
        ingest_skill(lm_params, lm_params.probes["harness"])
    assert str(task_dir) in str(exc.value)
    assert not lm_params.layout.data_dir("harness").exists()


@pytest.mark.parametrize("group, spec, message", [
    ("skills", {"path": "x", "kind": "lm_eval", "tasks": ["t"], "after": "base"}, "is a skill"),
    ("probes", {"path": "x", "kind": "general", "tasks": ["t"]}, "`kind: general`"),
    ("probes", {"path": "x", "kind": "lm_eval"}, "no `tasks`"),
])
def test_lm_eval_settings_in_the_wrong_place_are_refused_by_params(params, group, spec, message):
    overrides = {f"{group}.odd": spec}
    if group == "skills":
        overrides = {"skills": {"odd": spec}}
    with pytest.raises(SdftError, match=message):
        with_overrides(params, overrides, where="params.yaml")


def test_dvc_repro_ingests_and_scores_an_lm_eval_probe_in_a_workspace(tmp_path, tiny_model_dir, task_dir):
    """As a user adds one: the task folder under skills/, the probe in params.yaml, `dvc repro base`."""
    import shutil
    import sys

    import yaml

    from workspace import make_workspace, sh

    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    shutil.copytree(task_dir, ws / "skills" / "harness")
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p["probes"]["harness"] = {"path": "skills/harness", "kind": "lm_eval", "tasks": ["tiny_mc"]}
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(ws, sys.executable, "-m", "dvc", "repro", "base")
    scores = json.loads((ws / "artifacts/eval/base/scores.json").read_text())["scores"]
    assert set(scores) == {"probe", "harness"}
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert "ingest_probe@harness" in lock
    # Editing the task's data changes the probe: DVC sees its ingest stage as changed, and a rerun rescores.
    (ws / "skills/harness/tiny_mc.jsonl").write_text(json.dumps(DOCS[0]) + "\n")
    assert "ingest_probe@harness" in sh(ws, sys.executable, "-m", "dvc", "status").stdout
    sh(ws, sys.executable, "-m", "dvc", "repro", "base")
    rows = (ws / "artifacts/eval/base/predictions/harness.jsonl").read_text().splitlines()
    assert len(rows) == 1
