"""MLflow: one run per learned skill, one registered model version per checkpoint, and aliases.

Aliases (MLflow 3 has no stages): `candidate` = the newest version; `champion` = the version in
service; `previous-champion` = the champion before the last move, which `rollback` restores.
`champion` moves only through `promote`: automatically when a version passes its gate and
`promotion.mode: auto`, or by a person. A version whose gate failed is never promoted unless forced.

Tracking URI: `MLFLOW_TRACKING_URI`, else `sqlite:///<project>/mlflow.db` (an absolute path, so the
UI started from the project root sees the same registry).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import yaml

from .errors import SdftError
from .params import Params

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"

# Fail fast on a dead tracking server instead of retrying for minutes.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def tracking_uri(root: Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or Path.cwd()).resolve() / 'mlflow.db'}"


def client(root: Path | None = None):
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(root)
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
        except OSError as exc:
            raise SdftError(
                f"the MLflow tracking server at {uri} does not answer ({exc}).",
                where="MLFLOW_TRACKING_URI",
                fix="start it (`mlflow server --host 127.0.0.1 --workers 1`) or unset MLFLOW_TRACKING_URI "
                "to use the project's sqlite registry; then rerun (`dvc repro`): nothing was registered.",
            ) from None
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def _alias_version(c, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def aliases(params: Params) -> dict[str, str | None]:
    c, name = client(), params.promotion.registered_model_name
    return {a: _alias_version(c, name, a) for a in (CANDIDATE, CHAMPION, PREVIOUS)}


def promote(params: Params, version: str, force: bool = False) -> str:
    """Move `champion` to `version`; the old champion becomes `previous-champion`."""
    from mlflow.exceptions import MlflowException

    c, name = client(), params.promotion.registered_model_name
    try:
        mv = c.get_model_version(name, str(version))
    except MlflowException:
        raise SdftError(f"model {name!r} has no version {version}.", fix="see the versions in the MLflow UI.") from None
    if mv.tags.get("gate") == "fail" and not force:
        raise SdftError(
            f"version {version} ({mv.tags.get('skill')}) failed its regression gate.",
            fix=f"read its gate report in the MLflow run {mv.run_id}; pass --force to promote anyway.",
        )
    current = _alias_version(c, name, CHAMPION)
    if current == str(version):
        return f"version {version} is already the champion"
    if current is not None:
        c.set_registered_model_alias(name, PREVIOUS, current)
    c.set_registered_model_alias(name, CHAMPION, str(version))
    return f"champion: version {current or '(none)'} -> {version}"


def rollback(params: Params) -> str:
    c, name = client(), params.promotion.registered_model_name
    previous, current = _alias_version(c, name, PREVIOUS), _alias_version(c, name, CHAMPION)
    if previous is None:
        raise SdftError(f"model {name!r} has no `{PREVIOUS}` alias: nothing to roll back to.")
    c.set_registered_model_alias(name, CHAMPION, previous)
    if current is not None:
        c.set_registered_model_alias(name, PREVIOUS, current)
    return f"champion: version {current or '(none)'} -> {previous} (rolled back)"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dvc_lock_md5(stage: str) -> str:
    """The checkpoint's hash as DVC recorded it: `dvc checkout`/`dvc pull` get these exact weights back."""
    lock = Path("dvc.lock")
    if not lock.exists():
        return "unknown"
    entry = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get(stage, {})
    outs = entry.get("outs") or [{}]
    return str(outs[0].get("md5", "unknown"))


def register(params: Params, skill: str, checkpoint: Path, scores: dict, verdict: dict, report_files: list[Path],
             matrix_metrics: dict) -> dict:
    """Log the run, create the model version with lineage tags, set `candidate`, promote if allowed."""
    import mlflow

    c = client()
    pp = params.promotion
    exp = c.get_experiment_by_name(pp.experiment)
    exp_id = exp.experiment_id if exp else c.create_experiment(
        pp.experiment, artifact_location=(Path.cwd() / "mlartifacts").resolve().as_uri())
    train = json.loads((checkpoint / "train_metrics.json").read_text())
    parent = params.parent(skill)
    parent_file = params.registry_file(parent)
    parent_version = json.loads(parent_file.read_text())["version"] if parent_file.exists() else "base"
    tags = {
        "skill": skill,
        "parent_skill": parent,
        "parent_version": str(parent_version),
        "method": train["method"],
        "data_sha256": train["data_sha256"],
        "git_commit": _git_commit(),
        "dvc_lock_md5": _dvc_lock_md5(f"train@{skill}"),
        "gate": "pass" if verdict["passed"] else "fail",
        "base_model": params.model.name_or_path,
    }
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{skill}-{train['method']}") as run:
        tp = train["params"]
        mlflow.log_params({"skill": skill, "method": train["method"], "steps": train["steps"],
                           "rollout_engine": train.get("rollout_engine", "none"),
                           **{f"train.{k}": v for k, v in tp["train"].items() if k != "lora"},
                           **({f"sdft.{k}": v for k, v in tp["sdft"].items() if k != "teacher_templates"}
                              if train["method"] == "sdft" else {})})
        for step, loss in enumerate(train["loss_curve"], start=1):
            mlflow.log_metric("train_loss", loss, step=step)
        mlflow.log_metrics({f"score.{k}": v for k, v in scores["scores"].items()})
        mlflow.log_metrics({f"reference.{k}": v for k, v in scores["reference"]["scores"].items()})
        mlflow.log_metrics({k: v for k, v in matrix_metrics.items() if v is not None})
        mlflow.log_metric("gate_passed", float(verdict["passed"]))
        mlflow.log_metrics({k: train[k] for k in ("train_seconds", "rollout_seconds", "weight_sync_seconds") if k in train})
        for path in report_files:
            mlflow.log_artifact(str(path), "reports")
        mlflow.log_artifacts(str(checkpoint), "model")
        mlflow.set_tags(tags)
    name = pp.registered_model_name
    if not c.search_registered_models(filter_string=f"name = '{name}'"):
        c.create_registered_model(name, description="Continual-learning checkpoints (sdft-pipeline)")
    mv = c.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags)
    c.set_registered_model_alias(name, CANDIDATE, mv.version)
    message = f"registered {name} version {mv.version} as `{CANDIDATE}`"
    promoted = False
    if verdict["passed"] and pp.mode == "auto":
        message += "; " + promote(params, mv.version)
        promoted = True
    elif not verdict["passed"]:
        message += f"; gate failed, `{CHAMPION}` stays at version {_alias_version(c, name, CHAMPION)}"
    else:
        message += f"; promotion is manual: `sdft promote --version {mv.version}` or the MLflow UI"
    return {"model": name, "version": mv.version, "run_id": run.info.run_id, "promoted": promoted,
            "gate": tags["gate"], "message": message}
