"""The pipeline for real: DVC in a temporary git repo, MLflow on sqlite, Prefect's test server, a tiny local model.

Nothing here is mocked. Each workspace is a copy of the project's dvc.yaml and prefect.yaml with a
params.yaml that points at the tiny model and two small skills.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdft.errors import SdftError
from workspace import BIN, env, make_workspace, registry_state, sh, versions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def learned_two(tmp_path_factory, tiny_model_dir, prefect_server):
    """Two skills learned in sequence by the Prefect flow."""
    from flows.pipeline import learn_pending_skills

    ws = make_workspace(tmp_path_factory.mktemp("ws") / "two", tiny_model_dir)
    cwd = os.getcwd()
    os.chdir(ws)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = BIN + os.pathsep + old_path
    try:
        result = learn_pending_skills(root=str(ws))
    finally:
        os.chdir(cwd)
        os.environ["PATH"] = old_path
    return ws, result


def test_flow_learns_two_skills_promotes_and_leaves_dvc_clean(learned_two):
    ws, result = learned_two
    assert result == {"learned": ["facts_a", "facts_b"], "stopped_at": None, "gate_passed": True}
    assert versions(ws) == {"champion": "2", "previous-champion": "1", "candidate": "2"}
    tags = registry_state(ws)["champion"].tags
    assert tags["skill"] == "facts_b" and tags["parent_skill"] == "facts_a" and tags["parent_version"] == "1"
    assert tags["method"] == "sdft" and tags["gate"] == "pass" and len(tags["data_sha256"]) == 64
    assert len(tags["git_commit"]) == 40 and tags["dvc_lock_md5"].endswith(".dir")
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert tags["dvc_lock_md5"] == lock["train@facts_b"]["outs"][0]["md5"]
    assert {"base", "ingest@facts_a", "train@facts_b", "register@facts_b", "report"} <= set(lock)
    from mlflow import MlflowClient

    run = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}").get_run(registry_state(ws)["champion"].run_id).data
    assert run.params["rollout_engine"] == "hf" and run.metrics["train_seconds"] > 0

    assert "up to date" in sh(ws, sys.executable, "-m", "dvc", "status").stdout
    again = sh(ws, sys.executable, "-m", "dvc", "repro")
    assert "Running stage" not in again.stdout

    metrics = json.loads((ws / "artifacts/report/metrics.json").read_text())
    assert metrics["skills_learned"] == 2 and metrics["gates_passed"] == 2 and "bwt" in metrics
    assert (ws / "artifacts/report/forgetting.png").stat().st_size > 1000
    shown = sh(ws, sys.executable, "-m", "dvc", "metrics", "show").stdout
    assert "artifacts/report/metrics.json" in shown and "bwt" in shown


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_checkpoint_is_stored_once_on_disk_and_the_champion_resolves_to_it(learned_two):
    """A learned checkpoint lives in three places, the workspace, DVC's cache and the MLflow artifact store of its
    version; together they hold its bytes once (hard links: `cache.type` in .dvc/config,
    sdft/registry.py:_store_model), not three times. (The DVC remote stands for another machine: not counted.)"""
    import hashlib

    from mlflow import MlflowClient

    ws, _ = learned_two
    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    for skill in ("facts_a", "facts_b"):
        checkpoint = ws / "artifacts" / "checkpoints" / skill
        files = sorted(f for f in checkpoint.rglob("*") if f.is_file())
        size = sum(f.stat().st_size for f in files)
        version = json.loads((ws / f"artifacts/registry/{skill}.json").read_text())["version"]
        registered = Path(c.get_model_version_download_uri("sdft-model", version).removeprefix("file://"))
        places = []
        for f in files:
            md5 = hashlib.md5(f.read_bytes()).hexdigest()
            places += [f, ws / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:], registered / f.relative_to(checkpoint)]
        assert all(p.is_file() for p in places), [str(p) for p in places if not p.is_file()]
        on_disk = {(p.stat().st_dev, p.stat().st_ino): p.stat().st_size for p in places}
        weights = {(p.stat().st_dev, p.stat().st_ino) for p in places if p.name == "model.safetensors" or
                   p.stat().st_size == (checkpoint / "model.safetensors").stat().st_size}
        assert len(weights) == 1, skill  # the weights: one inode behind all three names
        # The small files (config, tokenizer) may be there twice: DVC links a workspace file to its cache object
        # when it stores that object, so a tokenizer identical to the previous skill's stays a copy. At 135M that
        # is 3.5 MB beside 540 MB of weights (1.007x); the tiny test model's tokenizer is 10% of its size.
        small = size - (checkpoint / "model.safetensors").stat().st_size
        assert sum(on_disk.values()) <= size + small, (skill, sum(on_disk.values()), size)
        assert _sha(registered / "model.safetensors") == _sha(checkpoint / "model.safetensors")
    champion = c.get_model_version_by_alias("sdft-model", "champion")
    assert json.loads((ws / "artifacts/registry/facts_b.json").read_text())["version"] == str(champion.version)


def test_rollback_moves_champion_back(learned_two):
    ws, _ = learned_two
    res = sh(ws, sys.executable, "-m", "sdft", "rollback")
    assert "-> 1 (rolled back)" in res.stdout
    assert versions(ws)["champion"] == "1" and versions(ws)["previous-champion"] == "2"
    res = sh(ws, sys.executable, "-m", "sdft", "promote", "--version", "2")
    assert "champion: version 1 -> 2" in res.stdout and versions(ws)["champion"] == "2"
    same = sh(ws, sys.executable, "-m", "sdft", "promote", "--version", "2")
    assert "already the champion" in same.stdout and versions(ws)["previous-champion"] == "1"
    bad = sh(ws, sys.executable, "-m", "sdft", "promote", "--version", "9", check=False)
    assert bad.returncode == 2 and "has no version 9" in bad.stderr


def test_second_concurrent_run_is_refused(learned_two, prefect_server):
    from flows.pipeline import learn_skill

    ws, _ = learned_two
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tasks.dvc import pipeline_lock\n"
         "with pipeline_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(ws)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock_before = (ws / "dvc.lock").read_text()
        with pytest.raises(SdftError, match="another pipeline run is in progress \\(pid"):
            learn_skill("facts_b", root=str(ws))
        assert (ws / "dvc.lock").read_text() == lock_before
        # From the shell: one line naming the holder, exit 2, no traceback.
        res = sh(ws, sys.executable, "-m", "flows.pipeline", check=False)
        assert res.returncode == 2 and "another pipeline run is in progress (pid" in res.stderr
        assert "Traceback" not in res.stderr and (ws / "dvc.lock").read_text() == lock_before
    finally:
        holder.kill()


def test_dvc_push_and_pull_work_with_the_configured_local_remote(learned_two):
    ws, _ = learned_two
    sh(ws, sys.executable, "-m", "dvc", "push")
    assert any((ws / ".dvc-storage").rglob("*"))
    shutil.rmtree(ws / "artifacts/checkpoints/facts_a")
    assert "deleted" in sh(ws, sys.executable, "-m", "dvc", "status").stdout
    sh(ws, sys.executable, "-m", "dvc", "pull")
    assert (ws / "artifacts/checkpoints/facts_a/model.safetensors").exists()
    assert "up to date" in sh(ws, sys.executable, "-m", "dvc", "status").stdout


def test_impossible_gate_keeps_the_champion_and_says_why(tmp_path, tiny_model_dir):
    """`dvc repro` as a user runs it, with skill b's gate made impossible for the tiny model (minimum score 100%)."""
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, gate_b={"min_new_score": 1.0})
    sh(ws, sys.executable, "-m", "dvc", "repro")
    assert versions(ws) == {"champion": "1", "previous-champion": None, "candidate": "2"}
    assert registry_state(ws)["candidate"].tags["gate"] == "fail"
    verdict = json.loads((ws / "artifacts/gate/facts_b/verdict.json").read_text())
    assert verdict["passed"] is False
    assert any("below the minimum 100.0" in r for r in verdict["reasons"])
    assert (ws / "artifacts/registry/facts_b.gate").read_text().strip() == "fail"
    refused = sh(ws, sys.executable, "-m", "sdft", "promote", "--version", "2", check=False)
    assert refused.returncode == 2 and "failed its regression gate" in refused.stderr
    assert versions(ws)["champion"] == "1"


def test_dead_tracking_server_is_a_clear_error_and_changes_nothing(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    sh(ws, sys.executable, "-m", "dvc", "repro", "gate@facts_a")
    e = {**env(ws), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # nothing listens on port 9
    res = subprocess.run([sys.executable, "-m", "sdft", "register", "--skill", "facts_a"], cwd=ws, env=e,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "does not answer" in res.stderr and "MLFLOW_TRACKING_URI" in res.stderr
    assert not (ws / "artifacts/registry/facts_a.json").exists()


def test_demo_reads_the_pipelines_matrix_into_the_comparison_table(learned_two):
    from sdft.params import load_params
    from sdft.stages import accuracy_matrix
    from sdft.report import compare_table

    ws, _ = learned_two
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        result = accuracy_matrix(load_params("params.yaml"), label="sdft (pipeline)")
    finally:
        os.chdir(cwd)
    assert result.skills == ["facts_a", "facts_b"] and result.probes == ["probe"] and len(result.rows) == 3
    assert result.train_seconds == sum(json.loads((ws / f"artifacts/checkpoints/{s}.train_metrics.json").read_text())
                                       ["train_seconds"] for s in result.skills) > 0
    summary = result.summary()
    assert set(summary["new_skill"]) == {"facts_a", "facts_b"} and summary["bwt"] is not None
    table = compare_table([result, result])
    assert "| new skill: facts_b |" in table and "| BWT (retention of prior skills) |" in table


def test_dvc_sees_earlier_skills_data_and_the_code_that_trains(learned_two):
    """Last in this module: it changes the shared workspace. Replay reads the earlier skill's training split,
    and the stages run the library: `dvc status` must flag the later train stage for either change."""
    ws, _ = learned_two
    assert "up to date" in sh(ws, sys.executable, "-m", "dvc", "status").stdout
    ok = sh(ws, sys.executable, "-m", "sdft", "status").stdout  # exit 0: nothing stale
    rows = {line.split("│")[1].strip(): line for line in ok.splitlines() if line.count("│") > 5}
    assert "up to date" in rows["facts_a"] and "pass" in rows["facts_a"] and "previous-champion" in rows["facts_a"]
    assert "up to date" in rows["facts_b"] and "candidate, champion" in rows["facts_b"], ok
    skill_a = ws / "skills/facts_a.jsonl"
    skill_a.write_text(skill_a.read_text().replace("BLUE-HARBOR", "RED-HARBOR"))
    sh(ws, sys.executable, "-m", "dvc", "repro", "--single-item", "ingest@facts_a")
    status = sh(ws, sys.executable, "-m", "dvc", "status").stdout
    later = status[status.index("train@facts_b:"):]
    assert "artifacts/data/facts_a" in later.split("@")[1], status
    stale = sh(ws, sys.executable, "-m", "sdft", "status", check=False)
    assert stale.returncode == 1 and "changed: train" in stale.stdout and "something is stale" in stale.stdout
    with open(ws / "sdft/replay.py", "a") as fh:
        fh.write("\n# a changed loss or sampler is a changed dependency\n")
    status = sh(ws, sys.executable, "-m", "dvc", "status", "train@facts_a").stdout
    assert "train@facts_a:" in status and "sdft" in status, status
