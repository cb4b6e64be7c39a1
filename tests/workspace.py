"""A pipeline workspace for tests and the fault suite: a temporary git + DVC repo with the project's dvc.yaml,
prefect.yaml and library, a params.yaml on the tiny local model, two small skills and a probe; MLflow on sqlite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, fact_records

BIN = str(Path(sys.executable).parent)


def env(ws: Path) -> dict[str, str]:
    e = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "2"}
    e.pop("MLFLOW_TRACKING_URI", None)  # the project default: sqlite in the workspace
    return e


def sh(ws: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), cwd=ws, env=env(ws), capture_output=True, text=True, timeout=900)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def make_workspace(ws: Path, tiny_model_dir: Path, gate_b: dict | None = None) -> Path:
    ws.mkdir(parents=True)
    for name in ("dvc.yaml", "prefect.yaml"):
        shutil.copy(REPO / name, ws / name)
    for folder in ("flows", "sdft"):  # dvc.yaml lists the library as a dependency of the stages that run it
        shutil.copytree(REPO / folder, ws / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (ws / "skills").mkdir()
    shutil.copy(REPO / "skills" / "anchor_prompts.jsonl", ws / "skills" / "anchor_prompts.jsonl")
    rows = fact_records(8)
    for name, part in {"facts_a": rows[:4], "facts_b": rows[4:], "probe": rows[:4]}.items():
        (ws / "skills" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name_or_path"] = str(tiny_model_dir)
    params["skills"] = {
        "facts_a": {"path": "skills/facts_a.jsonl", "kind": "knowledge", "scorer": "contains", "after": "base"},
        "facts_b": {"path": "skills/facts_b.jsonl", "kind": "knowledge", "scorer": "contains", "after": "facts_a",
                    "gate": gate_b or {}},
    }
    params["probes"] = {"probe": {"path": "skills/probe.jsonl", "kind": "general", "scorer": "contains"}}
    params["train"].update(per_device_train_batch_size=2, max_steps=2, max_completion_length=8, learning_rate=1e-3)
    params["eval"].update(max_new_tokens=6, batch_size=4)
    params["rollout"]["engine"] = "hf"  # pipeline mechanics; the vLLM path has its own tests
    # A random tiny model cannot follow a demonstration in context, so it has no teacher headroom: the check is off
    # here (tests/test_headroom.py covers it).
    params["sdft"]["min_teacher_headroom"] = 0
    # A random tiny model scores ~0 everywhere: let the gate pass unless a test makes it impossible.
    params["gate"] = {"min_new_score": 0.0, "min_new_gain": 0.0, "max_prior_drop": 1.0, "max_general_drop": 1.0}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (ws / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/.sdft-pipeline.lock\n")
    sh(ws, "git", "init", "-q")
    sh(ws, "git", "config", "user.email", "ci@example.com")
    sh(ws, "git", "config", "user.name", "ci")
    sh(ws, sys.executable, "-m", "dvc", "init", "-q")
    shutil.copy(REPO / ".dvc" / "config", ws / ".dvc" / "config")  # the project's local remote
    shutil.copy(REPO / ".dvcignore", ws / ".dvcignore")  # __pycache__ never changes a code dependency
    (ws / ".gitignore").write_text((ws / ".gitignore").read_text() + "/.dvc-storage/\n")
    sh(ws, "git", "add", "-A")
    sh(ws, "git", "commit", "-qm", "workspace")
    return ws


def registry_state(ws: Path) -> dict:
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")

    def alias(a):
        try:
            return c.get_model_version_by_alias("sdft-model", a)
        except Exception:
            return None

    return {a: alias(a) for a in ("champion", "previous-champion", "candidate")}


def versions(ws: Path) -> dict[str, str | None]:
    return {a: (None if mv is None else str(mv.version)) for a, mv in registry_state(ws).items()}


def broken_copy(model_dir: Path, folder: Path, value: float) -> Path:
    """The tiny model with one weight set to `value`: NaN (a damaged model) or a huge finite number (a model whose
    activations overflow to inf: every loss is NaN, the way a diverged run looks)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, folder)
    weights = load_file(folder / "model.safetensors")
    if value != value:  # NaN: one entry of one matrix
        name = next(k for k in weights if "layers.0" in k and k.endswith("weight"))
        weights[name] = weights[name].clone()
        weights[name].view(-1)[0] = value
    else:  # the final norm's scale: every logit overflows
        weights["model.norm.weight"] = torch.full_like(weights["model.norm.weight"], value)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder
