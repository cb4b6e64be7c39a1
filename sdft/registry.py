"""MLflow: one run per learned skill, one registered model version per checkpoint, and aliases.

Aliases (MLflow 3 has no stages): `candidate` = the newest version; `champion` = the version in
service; `previous-champion` = the champion before the last move, which `rollback` restores.
`champion` moves only through `promote`: automatically when a version passes its gate and
`promotion.mode: auto`, or by a person. A version whose gate failed is never promoted unless forced.

Tracking URI: `MLFLOW_TRACKING_URI`, else `sqlite:///<project>/mlflow.db` (an absolute path, so the
UI started from the project root sees the same registry).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import yaml

from .errors import SdftError
from .layout import train_metrics_file
from .outputs import MARKER
from .params import Params

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"
ALIASES = (CANDIDATE, CHAMPION, PREVIOUS)
NO_CHAMPION = "none"  # `promoted_from` of a version promoted when there was no champion yet

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


def aliases_quick(params: Params) -> dict[str, str | None]:
    """`aliases`, read straight from the project's sqlite registry when that is the store (MLflow's own
    `registered_model_aliases` table, read-only): `sdft status` answers without importing MLflow (~3 s).
    Any other store, or a schema this does not know, goes through the MLflow client."""
    import sqlite3

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        db_file = uri.removeprefix("sqlite:///")
        if not Path(db_file).exists():  # nothing registered yet (and nothing to create)
            return dict.fromkeys(ALIASES)
        try:
            with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
                rows = db.execute("SELECT alias, version FROM registered_model_aliases WHERE name = ?",
                                  (params.promotion.registered_model_name,)).fetchall()
            found = {alias: str(version) for alias, version in rows}
            return {a: found.get(a) for a in ALIASES}
        except sqlite3.Error:
            pass
    return aliases(params)


def aliases(params: Params) -> dict[str, str | None]:
    c, name = client(), params.promotion.registered_model_name
    return {a: _alias_version(c, name, a) for a in ALIASES}


def promote(params: Params, version: str, force: bool = False) -> str:
    """Move `champion` to `version`; the old champion becomes `previous-champion`.

    Crash-safe order: the version first records which champion it replaces (tag `promoted_from`), then
    `champion` moves, then `previous-champion`. A crash at any point leaves either the old aliases or a
    champion whose tag names the real previous one, and rerunning `promote` repairs `previous-champion`.
    """
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
        before = mv.tags.get("promoted_from")
        if before and before != NO_CHAMPION and _alias_version(c, name, PREVIOUS) != before:  # crash between the moves
            c.set_registered_model_alias(name, PREVIOUS, before)
            return f"version {version} is already the champion; `{PREVIOUS}` repaired to {before}"
        return f"version {version} is already the champion"
    # Also marks the version as promoted once, which a rerun of its registration reads (_set_aliases).
    c.set_model_version_tag(name, str(version), "promoted_from", current or NO_CHAMPION)
    c.set_registered_model_alias(name, CHAMPION, str(version))
    if current is not None:
        c.set_registered_model_alias(name, PREVIOUS, current)
    return f"champion: version {current or '(none)'} -> {version}"


def rollback(params: Params, force: bool = False) -> str:
    """Swap `champion` and `previous-champion`; never onto a version that failed its gate unless forced."""
    c, name = client(), params.promotion.registered_model_name
    previous, current = _alias_version(c, name, PREVIOUS), _alias_version(c, name, CHAMPION)
    if previous is None or previous == current:
        raise SdftError(f"model {name!r} has no `{PREVIOUS}` alias apart from the champion: nothing to roll back to.",
                        fix="promote a version by number: `sdft promote --version N`.")
    if c.get_model_version(name, previous).tags.get("gate") == "fail" and not force:
        raise SdftError(f"`{PREVIOUS}` is version {previous}, which failed its regression gate; `champion` stays at {current}.",
                        fix="promote a passing version (`sdft promote --version N`), or pass --force.")
    c.set_registered_model_alias(name, CHAMPION, previous)
    if current is not None:
        c.set_registered_model_alias(name, PREVIOUS, current)
    return f"champion: version {current or '(none)'} -> {previous} (rolled back)"


def _git_commit() -> str:
    """HEAD, with `+dirty` when tracked files differ from it (the run is then not reproducible from the commit).
    dvc.lock is left out: `dvc repro` itself rewrites it while the chain runs."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)dvc.lock"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
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


def checkpoint_sha256(checkpoint: Path) -> str:
    """The weights' identity: every file of the checkpoint but the output marker (the training log, with
    its wall-clock times, lives beside the checkpoint), so the same weights map to the same model version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
        if path.name == MARKER:
            continue
        digest.update(path.relative_to(checkpoint).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _close_interrupted_runs(c, exp_id: str) -> None:
    """A register stage killed mid-way leaves its MLflow run RUNNING: the next run closes it as FAILED."""
    for run in c.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'"):
        c.set_terminated(run.info.run_id, status="FAILED")


def gate_word(verdict: dict) -> str:
    """The `gate` tag of a version (and the gate marker file's content): pass | fail."""
    return "pass" if verdict["passed"] else "fail"


def version_description(skill: str, verdict: dict) -> str:
    """What a person promoting in the MLflow UI needs on the version page: the verdict, why, and the scores."""
    lines = [f"Learned `{skill}`. Regression gate: **{'PASS' if verdict['passed'] else 'FAIL'}**."]
    if verdict.get("reasons"):
        lines += ["", "Why it failed:", *[f"- {r}" for r in verdict["reasons"]]]
    lines += ["", "Scores (this version vs the model it would replace):"]
    lines += [f"- {c['name']} ({c['kind']}): {100 * c['candidate']:.1f} vs {100 * c['reference']:.1f} "
              f"(limit {c['limit']})" for c in verdict.get("checks", [])]
    lines += ["", "Gate report and forgetting plot: this version's run, artifacts `reports/`."]
    return "\n".join(lines)


def _rerun_aliases(params: Params, c, version: str, run_id: str, verdict: dict) -> dict:
    """Registration rerun for a checkpoint that already has `version` (a retry, a crash, `dvc repro -f`).

    `candidate` stays on the newest version; `champion` moves only if this version was never promoted (the crash
    came before its promotion). A version that was champion once and was then superseded or rolled back stays
    where a later skill or a person put it."""
    name = params.promotion.registered_model_name
    newest = max(int(v.version) for v in c.search_model_versions(f"name = '{name}'"))
    if int(version) == newest:
        c.set_registered_model_alias(name, CANDIDATE, version)
    message = f"{name} version {version} already holds this checkpoint"
    champion = _alias_version(c, name, CHAMPION)
    was_promoted = "promoted_from" in c.get_model_version(name, version).tags
    promoted = False
    if champion == str(version):
        message += "; " + promote(params, version)  # repairs `previous-champion` after a crash between moves
    elif was_promoted:
        message += f"; it was champion before and was superseded or rolled back: `{CHAMPION}` stays at {champion}"
    elif verdict["passed"] and params.promotion.mode == "auto":
        message += "; " + promote(params, version)
        promoted = True
    else:
        message += f"; `{CHAMPION}` stays at {champion}"
    return {"model": name, "version": str(version), "run_id": run_id, "promoted": promoted,
            "gate": gate_word(verdict), "message": message}


def require_parent_is_champion(params: Params, skill: str) -> None:
    """The model that learns next is the model that serves: a skill trains from its parent's checkpoint, so the
    parent's registered version must be `champion`. A person who rolled back or promoted another version (the
    MLflow UI, `sdft rollback`) would otherwise see the chain grow from a model that no longer serves.
    The first skill learns from the base model, which is not a registered version: nothing to compare."""
    parent = params.parent(skill)
    parent_file = params.layout.registry_file(parent)
    if not parent_file.exists():
        return
    version = str(json.loads(parent_file.read_text())["version"])
    c = client()
    name = params.promotion.registered_model_name
    champion = _alias_version(c, name, CHAMPION)
    if champion == version:
        return
    held = c.get_model_version(name, champion).tags.get("skill", "?") if champion else None
    raise SdftError(
        f"{skill!r} would learn from {parent!r} ({name} version {version}), but `{CHAMPION}` is "
        + (f"version {champion} ({held!r})" if champion else "not set")
        + ": the model that serves and the model that learns would diverge.",
        where=f"MLflow registry {tracking_uri()}: {name}@{CHAMPION}",
        fix=f"promote the parent (`sdft promote --version {version}` or the MLflow UI) and rerun, "
            + (f"or learn {skill!r} after the champion's skill (`after: {held}` in params.yaml)." if held and held != "?"
               else "or change the chain in params.yaml."))


def _artifact_location() -> str | None:
    """A tracking server stores the model files itself (`mlflow-artifacts:/`), so every machine of a team reads
    them; a local store keeps them beside its database (mlartifacts/, not MLflow's ./mlruns default)."""
    if tracking_uri().startswith(("http://", "https://")):
        return None
    return (Path.cwd() / "mlartifacts").resolve().as_uri()


def _store_model(checkpoint: Path) -> None:
    """The run's `model/` artifacts: the checkpoint's files, stored once on a machine.

    A local artifact store gets hard links to the DVC-tracked files (which DVC's `hardlink` cache already shares
    with the cache), so the workspace, DVC's cache and the registry hold one copy of the weights, not three
    (~45 GB per skill saved for a 7B model in bf16). Safe because nothing writes a checkpoint file in place: every
    stage publishes a new folder by rename, and DVC marks the files read-only. A tracking server (or another
    filesystem, where a link cannot be made) gets a copy."""
    import mlflow
    from mlflow.utils.file_utils import local_file_uri_to_path

    uri = mlflow.get_artifact_uri("model")
    if not uri.startswith("file:"):
        mlflow.log_artifacts(str(checkpoint), "model")
        return
    target = Path(local_file_uri_to_path(uri))
    for src in sorted(p for p in Path(checkpoint).rglob("*") if p.is_file()):
        dst = target / src.relative_to(checkpoint)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def register(params: Params, skill: str, checkpoint: Path, scores: dict, verdict: dict, report_files: list[Path],
             matrix_metrics: dict) -> dict:
    """Log the run, create the model version with lineage tags, set `candidate`, promote if allowed.

    Idempotent: a checkpoint already registered (same `checkpoint_sha256` tag) gets no second run or
    version; a rerun only brings its gate tag and the aliases up to date.
    """
    import mlflow

    c = client()
    pp = params.promotion
    exp = c.get_experiment_by_name(pp.experiment)
    exp_id = exp.experiment_id if exp else c.create_experiment(pp.experiment, artifact_location=_artifact_location())
    _close_interrupted_runs(c, exp_id)
    name = pp.registered_model_name
    gate_tag = gate_word(verdict)
    weights_hash = checkpoint_sha256(checkpoint)
    found = c.search_model_versions(f"name = '{name}' and tags.checkpoint_sha256 = '{weights_hash}'")
    if found:
        mv = max(found, key=lambda v: int(v.version))
        c.set_model_version_tag(name, mv.version, "gate", gate_tag)
        c.update_model_version(name, mv.version, description=version_description(skill, verdict))
        return _set_aliases(params, c, mv.version, mv.run_id, verdict, already=True)
    train = json.loads(train_metrics_file(checkpoint).read_text())
    parent = params.parent(skill)
    parent_file = params.layout.registry_file(parent)
    parent_version = json.loads(parent_file.read_text())["version"] if parent_file.exists() else "base"
    tags = {
        "skill": skill,
        "parent_skill": parent,
        "parent_version": str(parent_version),
        "method": train["method"],
        "data_sha256": train["data_sha256"],
        "git_commit": _git_commit(),
        "dvc_lock_md5": _dvc_lock_md5(f"train@{skill}"),
        "gate": gate_tag,
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
        headroom = train.get("teacher_headroom") or {}  # measured before training (sdft/headroom.py) when checked
        mlflow.log_metrics({f"teacher_headroom.{k}": headroom[k] for k in ("student", "teacher", "gain") if k in headroom})
        for path in report_files:
            mlflow.log_artifact(str(path), "reports")
        _store_model(checkpoint)
        mlflow.set_tags(tags)
    if not c.search_registered_models(filter_string=f"name = '{name}'"):
        c.create_registered_model(name, description="Continual-learning checkpoints (sdft-pipeline)")
    mv = c.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                tags={**tags, "checkpoint_sha256": weights_hash},
                                description=version_description(skill, verdict))
    return _set_aliases(params, c, mv.version, run.info.run_id, verdict)


def _set_aliases(params: Params, c, version: str, run_id: str, verdict: dict, already: bool = False) -> dict:
    name, pp = params.promotion.registered_model_name, params.promotion
    if already:  # a rerun of an older skill's registration must not pull the aliases back to it
        return _rerun_aliases(params, c, version, run_id, verdict)
    c.set_registered_model_alias(name, CANDIDATE, version)
    message = f"registered {name} version {version} as `{CANDIDATE}`"
    promoted = False
    if verdict["passed"] and pp.mode == "auto":
        message += "; " + promote(params, version)
        promoted = True
    elif not verdict["passed"]:
        message += f"; gate failed, `{CHAMPION}` stays at version {_alias_version(c, name, CHAMPION)}"
    else:
        message += f"; promotion is manual: `sdft promote --version {version}` or the MLflow UI"
    return {"model": name, "version": str(version), "run_id": run_id, "promoted": promoted,
            "gate": gate_word(verdict), "message": message}
