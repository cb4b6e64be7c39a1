"""dvc.yaml and the code agree on the stage chain and where each stage writes (issue #15, partly: the file
names inside each stage's folder are still literals in sdft/stages.py)."""

from __future__ import annotations

import yaml

from conftest import REPO
from sdft.outputs import train_metrics_file
from sdft.params import load_params
from sdft.status import SKILL_STAGES


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_the_per_skill_stages_of_dvc_yaml_are_the_ones_the_flows_plan():
    per_skill = [name for name, stage in _stages().items() if stage.get("foreach") == "${skills}"]
    assert tuple(per_skill) == SKILL_STAGES


def test_each_stage_writes_under_the_folder_params_names_for_it():
    params = load_params(REPO / "params.yaml")
    skill = next(iter(params.skills))
    folders = {"ingest": params.data_dir(skill), "train": params.checkpoint_dir(skill),
               "evaluate": params.eval_dir(skill), "gate": params.gate_dir(skill),
               "register": params.registry_file(skill).parent}
    for name in SKILL_STAGES:
        stage = _stages()[name]["do"]
        written = [next(iter(o)) if isinstance(o, dict) else o
                   for key in ("outs", "metrics", "plots") for o in stage.get(key, [])]
        for path in (p.replace("${key}", skill) for p in written):
            owner = folders[name] if name != "register" or path.endswith((".json", ".gate")) else params.gate_dir(skill)
            assert path == str(owner) or path.startswith(str(owner) + "/") or (
                name == "train" and path == str(train_metrics_file(params.checkpoint_dir(skill)))), (name, path)
