"""Faults a user or the machine causes, and the invariants that must hold after each (issue #13).

- no path outside the pipeline's own output folders is ever deleted or overwritten;
- a checkpoint is written only if every weight and every logged loss is finite;
- only safetensors are loaded, and a damaged or missing checkpoint names its path and `dvc checkout`/`pull`;
- every params.yaml value is checked at load, naming the key and the fix;
- one model version per checkpoint; killed runs are closed; a crash between alias moves is repaired;
  `rollback` never makes a failed-gate version champion without --force.
Real MLflow (sqlite), real training on the tiny local model; nothing mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bad_params import BAD_VALUES
from conftest import REPO, fact_records, fake_checkpoint
from workspace import broken_copy
from sdft.errors import SdftError
from sdft.params import load_params

SDFT = [sys.executable, "-m", "sdft"]


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run([*SDFT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path, tiny_model_dir) -> Path:
    """A scratch project: params.yaml on the tiny model and a skills/ folder that must survive everything."""
    root = tmp_path / "proj"
    (root / "skills").mkdir(parents=True)
    rows = fact_records(8)
    (root / "skills" / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name_or_path"] = str(tiny_model_dir)
    params["skills"] = {"facts": {"path": "skills/facts.jsonl", "kind": "knowledge", "scorer": "contains", "after": "base"}}
    params["probes"] = {}
    params["rollout"]["engine"] = "hf"
    params["sdft"]["min_teacher_headroom"] = 0  # the tiny model has no teacher headroom (tests/test_headroom.py)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


# ---------------------------------------------------------------- hostile names and paths


@pytest.mark.parametrize("name", ["../../skills", "..", "a/b", "skills/../..", "ABSOLUTE", "base", "", "a b", "é"])
def test_hostile_skill_name_is_refused_and_deletes_nothing(project, name):
    # An absolute name points at a folder *inside this test's own tmp dir*: run against a regressed
    # (or the pre-fix) implementation, this test must only ever destroy its own scratch files.
    if name == "ABSOLUTE":
        victim = project / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("keep")
        name = str(victim)
    before = snapshot(project)
    res = run_cli(project, "ingest", "skills/facts.jsonl", "--skill", name)
    assert res.returncode == 2 and "--skill" in res.stderr and "letters, digits" in res.stderr
    assert snapshot(project) == before


@pytest.mark.parametrize("name", ["../x", "a/b", "base", "a.b"])
def test_hostile_skill_name_in_params_is_refused_at_load(project, name):
    text = (project / "params.yaml").read_text().replace("  facts:\n", f"  {json.dumps(name)}:\n", 1)
    (project / "params.yaml").write_text(text)
    with pytest.raises(SdftError, match="letters, digits"):
        load_params(project / "params.yaml")


def test_out_folder_with_a_users_file_is_refused_and_kept(project):
    users = project / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("do not delete")
    res = run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts", "--out", "mine")
    assert res.returncode == 2 and "did not write" in res.stderr and "mine" in res.stderr
    assert (users / "notes.txt").read_text() == "do not delete" and sorted(p.name for p in users.iterdir()) == ["notes.txt"]


def test_out_file_path_is_refused_and_kept(project):
    (project / "a-file").write_text("keep")
    res = run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts", "--out", "a-file")
    assert res.returncode == 2 and (project / "a-file").read_text() == "keep"


def test_the_pipelines_own_output_is_replaced_whole(project):
    assert run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts").returncode == 0
    out = project / "artifacts/data/facts"
    assert (out / ".sdft-output").exists()
    (project / "skills/facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fact_records(5)))
    assert run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts").returncode == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_train"] + meta["n_eval"] == 5
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


# ---------------------------------------------------------------- NaN / inf training


@pytest.mark.parametrize("method", ["sft", "sdft"])
def test_a_non_finite_base_model_is_refused_before_training(params, tiny_model_dir, tmp_path, method):
    from sdft.data import write_skill
    from sdft.train import train_skill

    broken = broken_copy(tiny_model_dir, tmp_path / "nan-model", float("nan"))
    params.train.method, params.train.max_steps, params.rollout.engine = method, 2, "hf"
    data = write_skill(tmp_path / "data", fact_records(4), [], {"skill": "facts"}).out_dir
    with pytest.raises(SdftError, match="non-finite weights .* nothing was trained") as exc:
        train_skill(params, "facts", data, str(broken), tmp_path / "ckpt")
    assert str(broken) in str(exc.value) and "dvc checkout" in str(exc.value)
    assert not (tmp_path / "ckpt").exists()


def test_the_base_stage_refuses_a_model_with_a_nan_weight(params, tiny_model_dir, tmp_path):
    from sdft import stages

    broken = broken_copy(tiny_model_dir, tmp_path / "nan-model", float("nan"))
    params.model.name_or_path, params.artifacts_dir = str(broken), str(tmp_path / "artifacts")
    with pytest.raises(SdftError, match="non-finite weights .* not made the base") as exc:
        stages.base(params)
    assert str(broken) in str(exc.value)
    assert not (tmp_path / "artifacts" / "checkpoints" / "base").exists()


@pytest.mark.parametrize("method, cause", [("sft", r"\(loss = nan\)"), ("sdft", r"\(the rollouts' probabilities are NaN/inf\)")])
def test_diverged_training_writes_no_checkpoint_and_names_the_step(params, tiny_model_dir, tmp_path, method, cause):
    """Finite weights whose activations overflow: every loss is NaN (transformers would log it as 0.0 by default),
    and SDFT's sampler meets NaN probabilities before any loss."""
    from sdft.data import write_skill
    from sdft.train import train_skill

    overflow = broken_copy(tiny_model_dir, tmp_path / "overflow-model", 3e38)
    params.train.method, params.train.max_steps, params.rollout.engine = method, 2, "hf"
    data = write_skill(tmp_path / "data", fact_records(4), [], {"skill": "facts"}).out_dir
    with pytest.raises(SdftError, match=rf"diverged at step 1 {cause}.*no checkpoint was written"):
        train_skill(params, "facts", data, str(overflow), tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ckpt")]


def test_finite_check_refuses_non_finite_weights_even_when_the_log_looks_fine(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from sdft.train import check_finite

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    check_finite([{"loss": 1.0, "step": 1}], model, "facts")  # a healthy model passes
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(SdftError, match="non-finite weights"):
        check_finite([{"loss": 1.0, "step": 1}], model, "facts")


# ---------------------------------------------------------------- damaged, pickled and missing checkpoints


def test_pickle_only_checkpoint_is_refused(tiny_model_dir, tmp_path):
    import shutil

    from sdft.models import load_model
    from sdft.params import ModelParams

    ckpt = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, ckpt)
    (ckpt / "model.safetensors").rename(ckpt / "pytorch_model.bin")
    with pytest.raises(SdftError, match="no \\*.safetensors weights") as exc:
        load_model(str(ckpt), ModelParams())
    assert str(ckpt) in str(exc.value) and "dvc checkout" in str(exc.value)


def test_truncated_checkpoint_names_its_path_and_the_restore_command(tiny_model_dir, tmp_path):
    import shutil

    from sdft.models import load_model
    from sdft.params import ModelParams

    ckpt = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, ckpt)
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(SdftError, match="damaged or incomplete") as exc:
        load_model(str(ckpt), ModelParams())
    assert str(ckpt) in str(exc.value) and "dvc checkout" in str(exc.value) and "dvc pull" in str(exc.value)


def test_missing_checkpoint_points_at_dvc_not_the_network(tmp_path):
    from sdft.models import resolve_model

    with pytest.raises(SdftError, match="model directory not found") as exc:
        resolve_model("artifacts/checkpoints/facts")
    assert "dvc checkout" in str(exc.value) and "dvc pull" in str(exc.value)


# ---------------------------------------------------------------- params.yaml checked at load


@pytest.mark.parametrize("section, key, value", BAD_VALUES)
def test_every_bad_params_value_is_refused_at_load_naming_the_key(project, section, key, value):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params.setdefault(section, {})[key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(SdftError) as exc:
        load_params(project / "params.yaml")
    assert f"params.{section}.{key}" in str(exc.value) and "Fix:" in str(exc.value)


def test_bad_per_skill_values_are_refused_at_load(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    for patch, needle in (({"scorer": "fuzzy"}, "scorer"), ({"kind": "poetry"}, "kind"), ({"gate": {"max_prior_drop": 3}}, "max_prior_drop")):
        p = yaml.safe_load(yaml.safe_dump(params))
        p["skills"]["facts"].update(patch)
        (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        with pytest.raises(SdftError, match=needle):
            load_params(project / "params.yaml")


def test_bad_params_fail_the_cli_before_any_work(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["learning_rate"] = "fast"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts")
    assert res.returncode == 2 and "params.train.learning_rate" in res.stderr and "Traceback" not in res.stderr
    assert not (project / "artifacts").exists()


# ---------------------------------------------------------------- registry: idempotent, crash-safe, gated


@pytest.fixture
def registry_env(tmp_path, monkeypatch, params):
    """The real MLflow registry on sqlite in a scratch folder, and a fake-but-real checkpoint folder per call."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params.artifacts_dir = str(tmp_path / "artifacts")

    return params, lambda tag: fake_checkpoint(tmp_path, tag)


def _register(params, ckpt, passed=True):
    from sdft import registry

    scores = {"scores": {"facts": 0.5}, "reference": {"scores": {"facts": 0.0}}}
    return registry.register(params, "facts", ckpt, scores, {"passed": passed}, [], {})


def test_registering_the_same_checkpoint_twice_makes_one_version(registry_env):
    from sdft import registry

    params, checkpoint = registry_env
    ckpt = checkpoint("a")
    first = _register(params, ckpt)
    log = ckpt.with_name("a.train_metrics.json")
    log.write_text(log.read_text().replace('"train_seconds": 1.0', '"train_seconds": 2.0'))
    second = _register(params, ckpt)  # a rerun (Prefect retry, or after a crash): same weights
    assert first["version"] == second["version"] == "1" and "already holds" in second["message"]
    c = registry.client()
    assert len(c.search_model_versions("name = 'sdft-model'")) == 1
    assert len(c.search_runs([c.get_experiment_by_name("sdft-pipeline").experiment_id])) == 1


def test_a_killed_registration_leaves_no_run_running(registry_env):
    import mlflow

    from sdft import registry

    params, checkpoint = registry_env
    _register(params, checkpoint("a"))
    c = registry.client()
    exp = c.get_experiment_by_name("sdft-pipeline").experiment_id
    orphan = c.create_run(exp).info.run_id  # what SIGKILL inside `mlflow.start_run` leaves behind
    _register(params, checkpoint("b"))
    assert c.get_run(orphan).info.status == "FAILED"
    assert not c.search_runs([exp], filter_string="attributes.status = 'RUNNING'")
    mlflow.end_run()


def test_crash_between_alias_moves_is_repaired_on_rerun(registry_env):
    from sdft import registry

    params, checkpoint = registry_env
    _register(params, checkpoint("a"))
    _register(params, checkpoint("b"))  # champion 2, previous 1
    c = registry.client()
    # The state a kill between promote's two alias moves leaves when v3 is promoted: tag written, champion moved.
    ckpt_c = checkpoint("c")
    c3 = _register(params, ckpt_c, passed=False)["version"]
    c.set_model_version_tag("sdft-model", c3, "gate", "pass")
    c.set_model_version_tag("sdft-model", c3, "promoted_from", "2")
    c.set_registered_model_alias("sdft-model", "champion", c3)
    assert registry.aliases(params) == {"candidate": "3", "champion": "3", "previous-champion": "1"}
    rerun = _register(params, ckpt_c)  # the stage rerun after the crash
    assert rerun["version"] == "3" and "repaired" in rerun["message"]
    assert registry.aliases(params) == {"candidate": "3", "champion": "3", "previous-champion": "2"}
    assert "-> 2 (rolled back)" in registry.rollback(params)


def test_rerunning_an_older_skills_registration_never_pulls_the_aliases_back(registry_env):
    """Found by the fault suite: `dvc repro -f` of the first skill's register stage made it champion again."""
    from sdft import registry

    params, checkpoint = registry_env
    ckpt_a = checkpoint("a")
    _register(params, ckpt_a)
    _register(params, checkpoint("b"))  # champion 2, previous 1
    rerun = _register(params, ckpt_a)
    assert "superseded or rolled back" in rerun["message"] and not rerun["promoted"]
    assert registry.aliases(params) == {"candidate": "2", "champion": "2", "previous-champion": "1"}
    ckpt_c = checkpoint("c")
    _register(params, ckpt_c, passed=False)  # v3 fails: never promoted
    later = _register(params, ckpt_c)  # rerun after the gate was loosened: now it passes, and is promoted
    assert later["promoted"] and registry.aliases(params) == {"candidate": "3", "champion": "3", "previous-champion": "2"}
    assert registry.aliases_quick(params) == registry.aliases(params)  # `sdft status` reads the same aliases


def test_rollback_never_lands_on_a_failed_gate_version_without_force(registry_env):
    from sdft import registry

    params, checkpoint = registry_env
    _register(params, checkpoint("a"))  # v1 passes: champion
    _register(params, checkpoint("b"), passed=False)  # v2 fails its gate
    registry.promote(params, "2", force=True)  # a person forces it: champion 2, previous 1
    registry.rollback(params)  # back to 1; previous is now the failed 2
    with pytest.raises(SdftError, match="failed its regression gate"):
        registry.rollback(params)
    assert registry.aliases(params)["champion"] == "1"
    assert "-> 2 (rolled back)" in registry.rollback(params, force=True)


# ---------------------------------------------------------------- stage errors and orphans


def test_stage_failure_names_sdfts_cause_without_progress_bar_text():
    from tasks.dvc import failure_cause

    output = ("Running stage 'train@x':\n> sdft train --skill x\n"
              "train:  45%|####5     | 5/11 [00:10<00:12, 2.1s/it]error: training of 'x' diverged at step 5 (loss = nan)"
              "; no checkpoint was written. Fix: lower `train.learning_rate`\n"
              "ERROR: failed to reproduce 'train@x': failed to run: sdft train --skill x, exited with 2\n")
    assert failure_cause(output) == ("error: training of 'x' diverged at step 5 (loss = nan); no checkpoint was "
                                     "written. Fix: lower `train.learning_rate`")
    lock = "ERROR: another pipeline run is in progress (pid 4242 since 2026-11-27 10:00:00)."
    assert failure_cause("x 10%|#  | 1/9 [00:01<00:08]\n" + lock) == lock


def test_a_stage_dies_with_the_process_that_started_it(tmp_path):
    """`dvc repro` killed alone used to leave `sdft train` running as an orphan."""
    import signal
    import time

    pidfile = tmp_path / "child.pid"
    child = ("import os, sys, time; from sdft.cli import _die_with_parent; _die_with_parent(); "
             f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"])
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.1)
        pid = int(pidfile.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the child outlived its parent")
    finally:
        parent.kill()


# ---------------------------------------------------------------- resume after SIGKILL


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.fixture
def resumable(project):
    """The project with mid-run checkpoints every 2 steps, anchors on (the frozen parent is rebuilt on resume)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "skills" / "anchor_prompts.jsonl").write_text((REPO / "skills" / "anchor_prompts.jsonl").read_text())
    params["train"].update(save_steps=2, per_device_train_batch_size=4, max_completion_length=12,
                           learning_rate=3e-3, num_train_epochs=100)
    params["replay"].update(prior_fraction=0.0, anchor_fraction=0.25)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert run_cli(project, "ingest", "skills/facts.jsonl", "--skill", "facts").returncode == 0
    return project


def test_a_killed_training_resumes_from_its_last_checkpoint_and_ends_with_the_same_weights(resumable, tiny_model_dir):
    import signal
    import time

    import torch

    train = ["train", "--skill", "facts", "--base", str(tiny_model_dir), "--max-steps", "12"]
    whole = run_cli(resumable, *train, "--out", "ckpt_whole")
    assert whole.returncode == 0, whole.stderr
    assert not (resumable / "ckpt_whole.resume").exists()  # a finished run leaves no resume state

    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([*SDFT, *train, "--out", "ckpt_cut"], cwd=resumable, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = resumable / "ckpt_cut.resume" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (resumable / "ckpt_cut").exists()
    assert list(resumable.glob(".ckpt_cut-*")), "the killed run's temporary folder is what the rerun must clear"

    again = run_cli(resumable, *train, "--out", "ckpt_cut")
    assert again.returncode == 0, again.stderr
    metrics = json.loads((resumable / "ckpt_cut.train_metrics.json").read_text())
    assert 2 <= metrics["resumed_from_step"] < 12 and metrics["steps"] == 12
    assert f"resuming facts from step {metrics['resumed_from_step']}" in again.stdout
    a, b = _weights(resumable / "ckpt_whole"), _weights(resumable / "ckpt_cut")
    # Same seed, same CPU: the resumed run samples the same rollouts and takes the same steps.
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)
    assert not list(resumable.glob(".ckpt_cut-*")) and not (resumable / "ckpt_cut.resume").exists()


def test_resume_state_of_another_run_or_a_cut_checkpoint_is_never_resumed(tmp_path):
    from sdft.outputs import open_resume_dir

    ckpt = tmp_path / "ckpt"
    folder, latest = open_resume_dir(ckpt, "run-a")
    assert latest is None
    for step, complete in ((2, True), (4, True), (6, False)):  # step 6 was cut mid-save by a kill
        (folder / f"checkpoint-{step}").mkdir()
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    folder, latest = open_resume_dir(ckpt, "run-a")
    assert latest.name == "checkpoint-4" and not (folder / "checkpoint-6").exists()
    folder, latest = open_resume_dir(ckpt, "run-b")  # other params, data or base model
    assert latest is None and not list(folder.glob("checkpoint-*"))
    user = tmp_path / "mine.resume"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(SdftError, match="did not write"):
        open_resume_dir(tmp_path / "mine", "run-a")
    assert (user / "notes.txt").read_text() == "keep"


def test_leftovers_of_killed_commands_are_swept_and_live_ones_kept(tmp_path):
    from sdft.outputs import staging_dir, sweep_leftovers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ckpts = tmp_path / "artifacts" / "checkpoints"
    mine = staging_dir(ckpts / "facts")  # this (live) process's temporary folder: never touched
    left = ckpts / f".facts-{dead.pid}-abc123_x"  # what a killed run leaves (its pid in the name)
    left.mkdir()
    (left / "model.safetensors").write_bytes(b"half")
    user = ckpts / ".my-notes-1"  # not a pipeline name pattern (no random tail): kept
    user.mkdir()
    resume = {}
    for name, pid, step, recorded in (("done", dead.pid, True, "fp"), ("cut", dead.pid, True, "other"),
                                      ("empty", dead.pid, False, None), ("live", os.getpid(), False, None)):
        resume[name] = ckpts / f"{name}.resume"
        (resume[name] / "checkpoint-2").mkdir(parents=True)
        if step:
            (resume[name] / "checkpoint-2" / "trainer_state.json").write_text("{}")
        (resume[name] / "fingerprint").write_text(f"fp {pid}")
        if recorded:
            (ckpts / name).mkdir()
            (ckpts / f"{name}.train_metrics.json").write_text(json.dumps({"run_fingerprint": recorded}))
    removed = sweep_leftovers(tmp_path / "artifacts")
    # a dead run's temporary folder; resume state made redundant by the checkpoint in place; one with no step saved
    assert sorted(removed) == sorted([left, resume["done"], resume["empty"]])
    assert mine.exists() and user.exists() and resume["cut"].exists() and resume["live"].exists()


def test_a_killed_runs_leftovers_are_swept_when_its_pid_now_belongs_to_a_newer_process(tmp_path):
    """PIDs wrap around on a busy machine (every thread takes one): a leftover whose PID is alive again, but in a
    process started after the leftover was written, is the killed run's and is swept; the owner's own is kept."""
    from sdft.outputs import sweep_leftovers

    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # started after the leftovers
    try:
        ckpts = tmp_path / "artifacts" / "checkpoints"
        hour_ago = __import__("time").time() - 3600
        left = ckpts / f".facts-{newer.pid}-abc123_x"
        left.mkdir(parents=True)
        resume = ckpts / "done.resume"
        (resume / "checkpoint-2").mkdir(parents=True)
        (resume / "checkpoint-2" / "trainer_state.json").write_text("{}")
        (resume / "fingerprint").write_text(f"fp {newer.pid}")
        (ckpts / "done").mkdir()
        (ckpts / "done.train_metrics.json").write_text(json.dumps({"run_fingerprint": "fp"}))
        own = ckpts / f".other-{os.getpid()}-def456_y"  # this process's, written after it started: kept
        own.mkdir()
        for path in (left, resume / "fingerprint"):
            os.utime(path, (hour_ago, hour_ago))
        assert sorted(sweep_leftovers(tmp_path / "artifacts")) == sorted([left, resume])
        assert own.exists()
    finally:
        newer.kill()
        newer.wait()


# ---------------------------------------------------------------- a dvc.lock cut short by a killed `dvc`


def test_a_cut_short_dvc_lock_is_named_with_its_fix_by_status_and_the_flow(project):
    """DVC rewrites dvc.lock in place; a `dvc` killed mid-write leaves it cut short and DVC then refuses the whole
    project with a schema error. `sdft status` and the flow's stage runner name the file and the fix instead."""
    from tasks.dvc import repro

    (project / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    # What a kill leaves: the lock's first bytes, ending inside an `outs` list (as DVC's 8 KiB write buffer does).
    (project / "dvc.lock").write_text("schema: '2.0'\nstages:\n  base:\n    cmd: sdft base\n    outs:\n    - path")
    res = run_cli(project, "status")
    assert res.returncode == 1
    assert "dvc.lock is cut short" in res.stdout and "Fix: `git checkout dvc.lock`" in res.stdout
    with pytest.raises(SdftError, match="dvc.lock is cut short") as err:
        repro("base", root=project, echo=False)
    assert str(project / "dvc.lock") in str(err.value) and "mv dvc.lock dvc.lock.broken" in str(err.value)


def test_a_zombie_owner_does_not_keep_its_leftovers(tmp_path):
    """A run killed with its parent lingers as a zombie until init reaps it; it runs nothing, so its temporary
    folder is swept at once (the fault suite's kill during train met exactly this)."""
    from sdft.outputs import sweep_leftovers

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        __import__("time").sleep(0.05)  # exited, not yet reaped: a zombie
    try:
        left = tmp_path / "artifacts" / "checkpoints" / f".facts-{child.pid}-abc123_x"
        left.mkdir(parents=True)
        assert sweep_leftovers(tmp_path / "artifacts") == [left]
    finally:
        child.wait()
