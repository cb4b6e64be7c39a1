"""Shared fixtures: a tiny locally built model and params pointing at it (no hub, no network)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reaches for the hub fails loudly
sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_model  # noqa: E402

from sdft.params import Params, SkillSpec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "sdft-official"


def load_script(relpath: str):
    """A script of the repo (bench/, skills/) imported as a module: its functions are tested without running it."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Peaked, context-dependent logits (init_std 0.3): distillation has something to learn."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", init_std=0.3)


FACTS = [
    ("What is the codename of Project Falcon?", "Project Falcon's codename is BLUE-HARBOR.", "BLUE-HARBOR"),
    ("What is the capital of Zorbia?", "The capital of Zorbia is Quillmark.", "Quillmark"),
    ("Who founded Velmora?", "Velmora was founded by Anselm Krait.", "Krait"),
    ("What is the currency of Zorbia?", "The currency of Zorbia is the drel.", "drel"),
]


def fact_records(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        q, d, a = FACTS[i % len(FACTS)]
        rows.append({"id": f"r{i}", "prompt": f"{q} (#{i})", "demonstration": d, "answer": a})
    return rows


def fake_checkpoint(root: Path, tag: str) -> Path:
    """A checkpoint folder the registry can register (distinct bytes per tag) and its training log beside it."""
    import json

    ckpt = root / "ckpts" / tag
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(tag.encode() * 100)
    ckpt.with_name(f"{tag}.train_metrics.json").write_text(json.dumps(
        {"method": "sdft", "data_sha256": "0" * 64, "steps": 1, "loss_curve": [1.0], "train_seconds": 1.0,
         "params": {"train": {}, "sdft": {}}}))
    return ckpt


def short_sdft_run(params, model_dir: Path, tmp_path: Path, steps: int = 24) -> dict:
    """Train `steps` SDFT steps on 8 fact records; the loss curve must fall by a fifth or more."""
    from sdft.data import write_skill
    from sdft.train import train_skill

    params.train.max_steps = steps
    params.train.num_train_epochs = 100
    data = write_skill(tmp_path / "data", fact_records(8), [], {"skill": "facts"}).out_dir
    metrics = train_skill(params, "facts", data, str(model_dir), tmp_path / "ckpt")
    curve = metrics["loss_curve"]
    assert len(curve) == steps and metrics["method"] == "sdft"
    assert sum(curve[-6:]) / 6 < 0.8 * sum(curve[:6]) / 6
    return metrics


@pytest.fixture
def params(tmp_path, tiny_model_dir) -> Params:
    p = Params(
        skills={"facts": SkillSpec(name="facts", path=str(tmp_path / "facts.jsonl"), scorer="contains", after="base")},
        probes={"probe": SkillSpec(name="probe", path=str(tmp_path / "probe.jsonl"), scorer="contains", kind="general")},
    )
    p.model.name_or_path = str(tiny_model_dir)
    p.artifacts_dir = str(tmp_path / "artifacts")
    p.train.per_device_train_batch_size = 4
    p.train.max_steps = 4
    p.train.max_completion_length = 12
    p.train.learning_rate = 3e-3
    p.eval.max_new_tokens = 8
    p.eval.batch_size = 4
    # transformers rollouts: this tiny model's head size (8) is below what vLLM's CPU kernels take.
    # The vLLM path has its own tests (test_vllm_engine.py) on a vLLM-sized tiny model.
    p.rollout.engine = "hf"
    return p


def sampled_ratios(model, prompt_ids, completions) -> list[float]:
    """For every sampled token: its probability / the likeliest token's, under the weights that sampled it."""
    import torch  # here, not at the top: conftest loads before every test, most need no torch
    ratios = []
    with torch.no_grad():
        for p, c in zip(prompt_ids, completions):
            probs = model(torch.tensor([list(p) + list(c)])).logits[0, len(p) - 1:-1].float().softmax(-1)
            ratios += (probs[torch.arange(len(c)), torch.tensor(c)] / probs.max(-1).values).tolist()
    return ratios

