"""Train one skill from a base model or the previous skill's checkpoint, and write the checkpoint.

The method (`train.method: sdft|sft`) only picks the recipe: data, model loading, seeding and the
checkpoint layout are the same for both, so every comparison is one parameter away.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import set_seed

from .data import load_meta, load_split
from .errors import SdftError
from .models import load_model, load_tokenizer, resolve_model
from .params import Params, to_dict
from .recipes import sdft as sdft_recipe
from .recipes import sft as sft_recipe
from .recipes.common import merged
from .recipes.vllm_rollouts import VLLMRolloutSDFTTrainer

RECIPES = {"sdft": sdft_recipe, "sft": sft_recipe}
METRICS_FILE = "train_metrics.json"


def loss_curve(log_history: list[dict[str, Any]]) -> list[float]:
    """The optimised loss per logged step (SDFT: the distillation loss; SFT: cross-entropy)."""
    return [row["loss"] for row in log_history if "loss" in row]


def train_skill(params: Params, skill_name: str, data_dir: str | Path, base_model: str, out_dir: str | Path) -> dict:
    if skill_name not in params.skills:
        raise SdftError(f"{skill_name!r} is not a skill under `skills:` in params.yaml (probes are never trained).",
                        fix="add it under `skills:`.")
    skill = params.skill(skill_name)
    method = params.train.method
    if method not in RECIPES:
        raise SdftError(f"unknown train.method {method!r}.", where="params.yaml", fix=f"use one of {sorted(RECIPES)}.")
    records = load_split(data_dir, "train")
    meta = load_meta(data_dir)
    model_path = resolve_model(base_model)
    tokenizer = load_tokenizer(model_path, params.model.trust_remote_code)
    set_seed(params.train.seed)
    model = load_model(model_path, params.model)

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        start = time.perf_counter()
        trainer = RECIPES[method].build_trainer(params, skill, records, model, tokenizer, tmp / "trainer")
        trainer.train()
        seconds = time.perf_counter() - start
        # SDFT samples rollouts (SFT does not): which engine did, and for vLLM what the weight syncs cost.
        rollouts = {}
        if isinstance(trainer, VLLMRolloutSDFTTrainer):
            rollouts = trainer.rollout_stats()
            trainer.engine.close()  # its memory is the checkpoint writer's now
        elif method == "sdft":
            rollouts = {"rollout_engine": "hf"}
        final = merged(trainer.model)
        checkpoint = tmp / "model"
        final.save_pretrained(checkpoint)
        tokenizer.save_pretrained(checkpoint)
        curve = loss_curve(trainer.state.log_history)
        metrics = {
            "skill": skill_name,
            "method": method,
            "base_model": base_model,
            "data_sha256": meta["sha256"],
            "n_train": len(records),
            "steps": trainer.state.global_step,
            "train_seconds": round(seconds, 2),
            "loss_first": curve[0] if curve else None,
            "loss_last": curve[-1] if curve else None,
            "loss_curve": curve,
            **rollouts,
            "log_history": trainer.state.log_history,
            "params": to_dict(params),
        }
        (checkpoint / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        checkpoint.rename(out_dir)  # the checkpoint appears whole, or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return metrics
