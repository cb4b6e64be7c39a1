"""dvc.yaml and sdft/layout.py agree on the stage chain and on every path a stage writes or reads (issue #15):
the stages, the CLI and the flows ask the layout, DVC reads dvc.yaml, and a path changed in one place only fails
here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from conftest import REPO
from sdft.layout import BASE, Layout
from sdft.params import load_params, with_overrides
from sdft.status import SKILL_STAGES


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _render(text: str, params, key: str | None) -> str:
    """dvc.yaml's templating for the fields used here: ${artifacts_dir}, ${key}, ${item.after}, ${replay.*}."""
    values = {"artifacts_dir": params.artifacts_dir, "key": key,
              "item.after": params.parent(key) if key in params.skills else None,
              "replay.anchor_prompts": params.replay.anchor_prompts,
              "item.path": params.skill(key).path if key else None}
    return re.sub(r"\$\{([\w.]+)\}", lambda m: str(values[m.group(1)]), text)


def _declared(stage: dict, fields=("outs", "metrics", "plots")) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for f in fields for o in stage.get(f, [])]


def test_the_per_skill_stages_of_dvc_yaml_are_the_ones_the_flows_plan():
    per_skill = [name for name, stage in _stages().items() if stage.get("foreach") == "${skills}"]
    assert tuple(per_skill) == SKILL_STAGES


def test_every_stage_writes_exactly_what_the_layout_says():
    params = load_params(REPO / "params.yaml")
    skill, probe = list(params.skills)[1], next(iter(params.probes))  # a skill with a real parent
    for name, stage in _stages().items():
        key = skill if stage.get("foreach") == "${skills}" else probe if stage.get("foreach") == "${probes}" else None
        body = stage.get("do", stage)
        declared = {Path(_render(p, params, key)) for p in _declared(body)}
        assert declared == params.layout.stage_outputs(name, key), name


def test_every_artifact_a_stage_reads_is_a_layout_path_written_by_an_earlier_stage():
    params = load_params(REPO / "params.yaml")
    skill = list(params.skills)[1]
    earlier = [("base", None), *(("ingest_probe", p) for p in params.probes),
               *((stage, s) for s in params.skills_through(skill) for stage in SKILL_STAGES)]
    written = set().union(*(params.layout.stage_outputs(stage, key) for stage, key in earlier))
    root = Path(params.artifacts_dir)
    for name, stage in _stages().items():
        key = skill if stage.get("foreach") == "${skills}" else next(iter(params.probes)) if stage.get("foreach") else None
        for dep in (Path(_render(d, params, key)) for d in stage.get("do", stage).get("deps", [])):
            if root in dep.parents:
                assert dep in written or dep == params.layout.probes_dir() or (
                    name == "report" and dep.parent == root), (name, dep)


def test_the_layout_follows_artifacts_dir_and_so_does_dvc(tmp_path):
    """Moving `artifacts_dir` moves every path in the layout, and DVC renders dvc.yaml under the same folder."""
    params = with_overrides(load_params(REPO / "params.yaml"), {"artifacts_dir": "out/run1"})
    skill = next(iter(params.skills))
    assert params.layout == Layout(Path("out/run1"), frozenset(params.probes))
    for stage in ("ingest", "train", "evaluate", "gate", "register"):
        assert all(Path("out/run1") in p.parents for p in params.layout.stage_outputs(stage, skill))
    assert params.layout.data_dir(next(iter(params.probes))).parent.name == "probes"
    assert params.layout.checkpoint_dir(BASE) == Path("out/run1/checkpoints/base")


def test_no_module_spells_the_artifacts_folder_itself():
    """Every path under the artifacts folder comes from sdft/layout.py (the issue's grep)."""
    hits = subprocess.run(["grep", "-rnE", "(^|[^a-z])artifacts/", "sdft", "flows", "tasks"], cwd=REPO,
                          capture_output=True, text=True).stdout.splitlines()
    assert [h for h in hits if not h.startswith("sdft/layout.py")] == []
