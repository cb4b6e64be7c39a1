"""A team on two machines (issue #16): one MLflow tracking server over PostgreSQL, started by
scripts/team_registry.sh as a user would, and one shared DVC remote. Machine A learns the first skill and
pushes; machine B (another clone) pulls A's checkpoint, learns the next skill from it without retraining
anything, and registers a version whose lineage points at A's. Aliases and rollback go through the server.

Real PostgreSQL, real `mlflow server`, real DVC and training on the tiny model; nothing mocked."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from workspace import env, make_workspace, sh

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "team_registry.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def team_server():
    # PostgreSQL runs as the `postgres` user when the tests run as root: its folder must be reachable by
    # others (pytest's tmp root is private), so it lives in a folder of its own under /tmp.
    home = Path(tempfile.mkdtemp(prefix="team-registry-"))
    home.chmod(0o755)
    script_env = {**os.environ, "MLFLOW_PORT": str(_free_port()), "PG_PORT": str(_free_port()),
                  "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(SCRIPT), "start", str(home / "reg")], env=script_env, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    url = f"http://127.0.0.1:{script_env['MLFLOW_PORT']}"
    assert f"export MLFLOW_TRACKING_URI={url}" in res.stdout
    try:
        yield url
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(home / "reg")], env=script_env, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def _on(ws: Path, url: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command on one machine of the team: its workspace, the team's tracking server."""
    res = subprocess.run(list(cmd), cwd=ws, env={**env(ws), "MLFLOW_TRACKING_URI": url}, capture_output=True,
                         text=True, timeout=900)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_script_refuses_an_unknown_command_naming_the_fix():
    res = subprocess.run(["bash", str(SCRIPT), "restart"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "unknown command 'restart'" in res.stderr and "Fix:" in res.stderr


def test_two_machines_share_the_registry_and_the_remote(team_server, tmp_path, tiny_model_dir):
    from mlflow import MlflowClient

    url, dvc = team_server, (sys.executable, "-m", "dvc")
    remote, origin = tmp_path / "dvc-remote", tmp_path / "origin.git"
    sh(tmp_path, "git", "init", "-q", "--bare", str(origin))

    # Machine A: the shared remote in its DVC config, the first skill learned, pushed (git + DVC).
    a = make_workspace(tmp_path / "machine-a", tiny_model_dir)
    sh(a, *dvc, "remote", "modify", "local", "url", str(remote))
    sh(a, "git", "commit", "-qam", "team remote")
    _on(a, url, *dvc, "repro", "register@facts_a")
    _on(a, url, *dvc, "push")
    sh(a, "git", "add", "-A")
    sh(a, "git", "commit", "-qm", "facts_a learned")
    sh(a, "git", "push", "-q", str(origin), "HEAD:main")

    # Machine B: a clone; pulls A's outputs, then learns the next skill only.
    b = tmp_path / "machine-b"
    sh(tmp_path, "git", "clone", "-q", "-b", "main", str(origin), str(b))
    _on(b, url, *dvc, "pull", "--allow-missing")  # the next skill's outputs do not exist yet
    assert _sha(b / "artifacts/checkpoints/facts_a/model.safetensors") == _sha(a / "artifacts/checkpoints/facts_a/model.safetensors")
    run = _on(b, url, *dvc, "repro")
    assert "Running stage 'train@facts_b'" in run.stdout
    assert "Running stage 'train@facts_a'" not in run.stdout and "Running stage 'register@facts_a'" not in run.stdout

    c = MlflowClient(url)
    by_skill = {mv.tags["skill"]: mv for mv in c.search_model_versions("name = 'sdft-model'")}
    assert sorted(by_skill) == ["facts_a", "facts_b"]  # one version each: B registered nothing of A's again
    va, vb = by_skill["facts_a"], by_skill["facts_b"]
    assert vb.tags["parent_skill"] == "facts_a" and vb.tags["parent_version"] == va.version
    assert va.tags["parent_version"] == "base"
    assert json.loads((b / "artifacts/registry/facts_b.json").read_text())["version"] == vb.version

    # The model files live on the server (mlflow-artifacts:/), so any machine of the team can fetch them: a third
    # process that knows only the server's address (a process of its own: MLflow keeps URIs in process globals).
    assert c.get_run(vb.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    fetch = ("import sys; from mlflow.artifacts import download_artifacts; "
             "print(download_artifacts(sys.argv[1], dst_path=sys.argv[2]))")
    res = _on(tmp_path, url, sys.executable, "-c", fetch, f"models:/sdft-model/{vb.version}", str(tmp_path / "fetched"))
    fetched = Path(res.stdout.strip().splitlines()[-1])
    assert _sha(fetched / "model.safetensors") == _sha(b / "artifacts/checkpoints/facts_b/model.safetensors")

    # Aliases and rollback through the server, from either machine.
    assert c.get_model_version_by_alias("sdft-model", "champion").version == vb.version
    back = _on(a, url, sys.executable, "-m", "sdft", "rollback")
    assert f"-> {va.version} (rolled back)" in back.stdout
    assert c.get_model_version_by_alias("sdft-model", "champion").version == va.version
    assert c.get_model_version_by_alias("sdft-model", "previous-champion").version == vb.version

    # A rerun of B's registration finds its version and, champion having been rolled back, leaves it there.
    _on(b, url, *dvc, "repro", "-f", "-s", "register@facts_b")
    assert len(c.search_model_versions("name = 'sdft-model'")) == 2
    assert c.get_model_version_by_alias("sdft-model", "champion").version == va.version
