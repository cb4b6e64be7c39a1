"""Train one skill from a base model or the previous skill's checkpoint, and write the checkpoint.

The method (`train.method: sdft|sft`) only picks the recipe: data, model loading, seeding and the
checkpoint layout are the same for both, so every comparison is one parameter away.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from .data import load_meta, load_split
from .errors import SdftError
from .layout import train_metrics_file
from .outputs import open_resume_dir, processes, publish_dir, staging_dir, write_file_atomic
from .models import load_model, load_tokenizer, non_finite, resolve_model
from .params import Params, to_dict
from .replay import training_rows
from .recipes import sdft as sdft_recipe
from .recipes import sft as sft_recipe
from .recipes.common import freeze_matching, merged

RECIPES = {"sdft": sdft_recipe, "sft": sft_recipe}


def loss_curve(log_history: list[dict[str, Any]]) -> list[float]:
    """The optimised loss per logged step (SDFT: the distillation loss; SFT: cross-entropy)."""
    return [row["loss"] for row in log_history if "loss" in row]


def check_finite(log_history: list[dict[str, Any]], model, skill_name: str) -> None:
    """No checkpoint from a diverged run: every logged loss and every weight must be finite.

    transformers hides NaN/inf steps as 0.0 in its logs unless `logging_nan_inf_filter` is off (the
    recipes turn it off), so a diverged run used to print "loss 5.9 -> 0.0000" and pass.
    """
    for row in log_history:
        for key in ("loss", "grad_norm"):
            value = row.get(key)
            if value is not None and not math.isfinite(float(value)):
                raise SdftError(
                    f"training of {skill_name!r} diverged at step {row.get('step')} ({key} = {value}); "
                    "no checkpoint was written.",
                    where="params.yaml: train",
                    fix="lower `train.learning_rate` (or `train.max_grad_norm`), then rerun the train stage.",
                )
    bad = non_finite(model.named_parameters())
    if bad:
        raise SdftError(
            f"training of {skill_name!r} left non-finite weights ({len(bad)} tensors, e.g. {bad[0]}); "
            "no checkpoint was written.",
            where="params.yaml: train",
            fix="lower `train.learning_rate` (or `train.max_grad_norm`), then rerun the train stage.",
        )


def check_finite_base(model, model_path: str) -> None:
    """A base or parent with a NaN/inf weight can only diverge (SDFT's sampler then fails with a bare
    "probability tensor contains inf/nan"): refuse it before any step, naming the folder."""
    bad = non_finite(model.named_parameters())
    if bad:
        raise SdftError(
            f"the model to learn from has non-finite weights ({len(bad)} tensors, e.g. {bad[0]}); nothing was trained.",
            where=model_path,
            fix="restore the parent checkpoint (`dvc checkout`, or `dvc pull` from the remote), or point "
                "`model.name_or_path` at an intact model.",
        )


def _diverged_while_sampling(exc: RuntimeError, trainer, skill_name: str) -> SdftError | None:
    """torch's sampler refuses NaN/inf probabilities: that is the loss diverging mid-run, said as such."""
    if "inf" not in str(exc) or "nan" not in str(exc):
        return None
    return SdftError(
        f"training of {skill_name!r} diverged at step {trainer.state.global_step + 1} (the rollouts' probabilities "
        "are NaN/inf); no checkpoint was written.",
        where="params.yaml: train",
        fix="lower `train.learning_rate` (or `train.max_grad_norm`), then rerun the train stage.",
    )


def _start_processes(world: int):
    """The process group, before the trainer: the ranks must agree on the trainer's folder first. On a host
    without GPUs the ranks run DDP over gloo (accelerate only does so when told: ACCELERATE_USE_CPU)."""
    if world == 1:
        return None
    from accelerate import PartialState

    cpu = not torch.cuda.is_available()
    if cpu:
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    return PartialState(cpu=cpu)


def _shared(state, value):
    """The main process's `value`, on every rank."""
    if state is None:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def check_replicas_in_sync(state, trainer) -> None:
    """Data parallelism keeps every rank's student, and so its EMA teacher, identical; a rank that drifted would
    make the saved checkpoint one rank's private model. Checked (a float64 sum per tensor) before anything is
    written."""
    if state is None:
        return
    models = [trainer.model] + ([trainer.teacher_model] if getattr(trainer, "teacher_model", None) is not None else [])
    sums = [torch.stack([p.detach().double().sum() for p in trainer.accelerator.unwrap_model(m).parameters()]).cpu()
            for m in models]
    everyone = [None] * state.num_processes
    torch.distributed.all_gather_object(everyone, [s.tolist() for s in sums])
    if any(other != everyone[0] for other in everyone[1:]):
        raise SdftError("the training processes ended with different weights (student or EMA teacher); no checkpoint "
                        "was written.", where="accelerate launch", fix="report it with your accelerate config; "
                        "rerun with one process to train meanwhile.")


def run_fingerprint(params: Params, skill_name: str, meta: dict, base_model: str) -> str:
    """What a mid-run checkpoint belongs to: resumed only by a run with the same params, data and base model
    (a base folder is identified by its files' names, sizes and mtimes: a retrained parent changes it)."""
    base = Path(resolve_model(base_model))
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in base.iterdir() if f.is_file()) if base.is_dir() else []
    blob = json.dumps({"params": to_dict(params), "skill": skill_name, "data": meta["sha256"],
                       "base": str(base), "base_files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def prepare_trainer(params: Params, skill_name: str, records: list[dict], base_model: str, work_dir: Path):
    """The recipe's trainer, ready to `.train()`, on the replay mixture around `records` (also what
    bench/gpu_check.py times). Returns (trainer, training rows)."""
    method = params.train.method
    model_path = resolve_model(base_model)
    tokenizer = load_tokenizer(model_path, params.model.trust_remote_code)
    set_seed(params.train.seed)
    model = load_model(model_path, params.model, for_training=True)
    check_finite_base(model, model_path)
    freeze_matching(model, params.train.freeze)
    rows, mixed = training_rows(params, skill_name, records)
    trainer = RECIPES[method].build_trainer(params, params.skill(skill_name), rows, model, tokenizer, work_dir, mixed=mixed)
    return trainer, rows


def train_skill(params: Params, skill_name: str, data_dir: str | Path, base_model: str, out_dir: str | Path) -> dict:
    if skill_name not in params.skills:
        raise SdftError(f"{skill_name!r} is not a skill under `skills:` in params.yaml (probes are never trained).",
                        fix="add it under `skills:`.")
    method = params.train.method
    if method not in RECIPES:
        raise SdftError(f"unknown train.method {method!r}.", where="params.yaml", fix=f"use one of {sorted(RECIPES)}.")
    records = load_split(data_dir, "train")
    meta = load_meta(data_dir)
    out_dir = Path(out_dir)
    # Under `accelerate launch` every rank trains (DDP: each its share of the batch) and only the main process
    # touches files: the folders below, the checkpoint and the metrics (the register stage runs once, after).
    rank, world = processes()
    state = _start_processes(world)
    main = rank == 0
    # The checkpoint is written into `tmp` and renamed into place as the very last step (nothing to clean up after
    # it); the trainer's own folder is the resume folder (`train.save_steps`) or a second temporary one.
    tmp = staging_dir(out_dir) if main else None  # refuses a folder the pipeline did not write, before any training
    resume_from, scratch, work_dir = None, None, None
    try:
        start = time.perf_counter()
        fingerprint = run_fingerprint(params, skill_name, meta, base_model)
        if not main:
            work_dir = None
        elif params.train.save_steps:  # mid-run state survives a kill, in <checkpoint>.resume/
            work_dir, resume_from = open_resume_dir(out_dir, fingerprint)
        else:
            work_dir = scratch = staging_dir(out_dir)
        work_dir, resume_from = _shared(state, (work_dir, resume_from))
        trainer, rows = prepare_trainer(params, skill_name, records, base_model, work_dir)
        tokenizer = trainer.processing_class
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        if resume_from is not None:
            print(f"resuming {skill_name} from step {resume_from.name.rsplit('-', 1)[1]} ({resume_from})", flush=True)
        try:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        except RuntimeError as exc:
            diverged = _diverged_while_sampling(exc, trainer, skill_name)
            if diverged is None:
                raise
            raise diverged from exc
        seconds = time.perf_counter() - start
        rollouts = RECIPES[method].finish(trainer)  # each recipe's own run metrics (SDFT: rollout engine, syncs)
        final = merged(trainer.model).to(getattr(torch, params.model.dtype))  # saved in the serving dtype
        curve = loss_curve(trainer.state.log_history)
        check_finite(trainer.state.log_history, final, skill_name)
        check_replicas_in_sync(state, trainer)
        if not main:
            return {"skill": skill_name, "rank": rank}
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        metrics = {
            "skill": skill_name,
            "method": method,
            "base_model": base_model,
            "data_sha256": meta["sha256"],
            "n_train": len(records),
            "replay_rows": {src: sum(r["source"] == src for r in rows) for src in ("new", "prior", "anchor")},
            "steps": trainer.state.global_step,
            "trainable_params": trainable,  # what `train.freeze` (or LoRA) left to train
            "processes": world,
            "replicas_in_sync": True if world > 1 else None,  # check_replicas_in_sync passed
            "resumed_from_step": int(resume_from.name.rsplit("-", 1)[1]) if resume_from else None,
            "run_fingerprint": fingerprint,  # what resume state this checkpoint makes redundant (outputs.sweep_leftovers)
            "train_seconds": round(seconds, 2),
            "loss_first": curve[0] if curve else None,
            "loss_last": curve[-1] if curve else None,
            "loss_curve": curve,
            **rollouts,
            "log_history": trainer.state.log_history,
            "params": to_dict(params),
        }
        # The run is done: its resume state goes first (a kill from here on retrains from step 1, never resumes
        # a finished run), then the log beside the checkpoint, and the checkpoint appears whole as the last step.
        shutil.rmtree(work_dir, ignore_errors=True)
        write_file_atomic(train_metrics_file(out_dir), json.dumps(metrics, indent=2, default=str) + "\n")
        publish_dir(tmp, out_dir)
    except SdftError:
        # Refused (bad input, no teacher headroom, diverged): a resume folder with no saved step holds nothing to
        # resume, so it goes too. A killed run never gets here, and its folder stays for the rerun.
        if main and work_dir is not None and not any(Path(work_dir).glob("checkpoint-*")):
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)  # already renamed on success
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return metrics
