"""Probes from lm-evaluation-harness (`kind: lm_eval` under `probes:`), the tool the SDFT paper scored prior
tasks with. The probe's `path` is a folder of local task YAMLs and their data files (no hub); ingest validates
and copies it into the workspace (a DVC output like any probe's data), evaluate runs its `tasks` on a model
through the harness's HF model class, and the mean of `metric` over the tasks enters the accuracy matrix and the
gate as the probe's score.

Task files name their data relative to the task folder (`dataset_kwargs: {data_files: {test: qa.jsonl}}`): the
harness runs with that folder as the working directory, so the same files work in `skills/` and in the workspace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from .errors import SdftError
from .layout import META
from .outputs import publish_dir, staging_dir
from .params import Params, SkillSpec

KIND = "lm_eval"
HOW = ("a folder of lm-evaluation-harness task YAMLs with their data files beside them (e.g. "
       "`dataset_path: json`, `dataset_kwargs: {data_files: {test: qa.jsonl}}`); README \"lm-evaluation-harness probes\"")


def _task_manager(spec: SkillSpec, folder: Path):
    """The harness's task index over `folder` alone: the built-in tasks are left out (they download their data),
    so a probe is exactly the files DVC versions."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder.resolve()), include_defaults=False)
    unknown = [t for t in spec.tasks if t not in manager.all_tasks]
    if unknown:
        raise SdftError(f"lm_eval tasks {unknown} are not defined in the probe's folder.", where=str(folder),
                        fix=f"name tasks that the YAML files there define (`task:` key), or add them: {HOW}.")
    return manager


def _check_tasks(spec: SkillSpec, folder: Path) -> None:
    """Build the tasks as the evaluation will (this loads their data: a broken file fails at ingest, not later)."""
    manager = _task_manager(spec, folder)
    try:
        with contextlib.chdir(folder):
            manager.load(list(spec.tasks))
    except SdftError:
        raise
    except Exception as exc:  # noqa: BLE001 - the harness and datasets raise many types for one bad file
        raise SdftError(f"lm_eval could not build the probe's tasks: {type(exc).__name__}: {exc}", where=str(folder),
                        fix=f"fix the task YAML or its data file; the folder must hold {HOW}.") from None


def ingest_lm_eval(params: Params, spec: SkillSpec, source: str | Path | None = None,
                   out_dir: str | Path | None = None) -> Path:
    source, out_dir = Path(source or spec.path), Path(out_dir or params.layout.data_dir(spec.name))
    if not source.is_dir():
        raise SdftError("an lm_eval probe's path must be a folder.", where=str(source), fix=f"point `path` at {HOW}.")
    _check_tasks(spec, source)
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    digest = hashlib.sha256(b"".join(p.relative_to(source).as_posix().encode() + b"\0" + p.read_bytes()
                                     for p in files)).hexdigest()
    tmp = staging_dir(out_dir)
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
        meta = {"skill": spec.name, "source": str(source), "kind": KIND, "tasks": spec.tasks, "probe": True,
                "files": len(files), "sha256": digest}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def score_lm_eval(params: Params, model_path: str, names: list[str]) -> dict[str, tuple[float, list[dict]]]:
    """Each lm_eval probe on one model: (mean of its metric over its tasks, one row per scored document)."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from .models import load_model, load_tokenizer

    model = load_model(model_path, params.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = HFLM(pretrained=model.to(device), tokenizer=load_tokenizer(model_path, params.model.trust_remote_code),
              batch_size=8, device=device)
    limit = params.eval.max_examples or None
    out = {}
    for name in names:
        spec, folder = params.skill(name), params.layout.data_dir(name)
        manager = _task_manager(spec, folder)
        with contextlib.chdir(folder):  # task files name their data relative to their folder
            result = simple_evaluate(model=lm, tasks=spec.tasks, task_manager=manager, limit=limit, log_samples=True,
                                     bootstrap_iters=0)
        key = f"{spec.metric},none"
        missing = [t for t in spec.tasks if key not in result["results"].get(t, {})]
        if missing:
            raise SdftError(f"lm_eval tasks {missing} report no `{spec.metric}` metric.", where=str(folder),
                            fix=f"set `probes.{name}.metric` to one the tasks' `metric_list` defines.")
        score = sum(result["results"][t][key] for t in spec.tasks) / len(spec.tasks)
        rows = [{"id": f"{t}/{s['doc_id']}", "prediction": s["filtered_resps"], "answer": s["target"],
                 "correct": bool(s[spec.metric])}
                for t in spec.tasks for s in result["samples"][t]]
        out[name] = (round(float(score), 6), json.loads(json.dumps(rows, default=str)))
    return out
