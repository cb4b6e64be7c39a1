"""`prefect deployment run` as the README tells a user: a local server on 127.0.0.1, a process work
pool, `prefect deploy` from prefect.yaml, a worker, then the scheduled deployment run by hand."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from workspace import BIN, make_workspace, versions

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not come up in {timeout}s")


def test_prefect_deployment_run_learns_the_curriculum(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    port = free_port()
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    prefect = [sys.executable, "-m", "prefect"]
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ws, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = None
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health")

        def run(*args, timeout=300):
            res = subprocess.run([*prefect, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)
            assert res.returncode == 0, f"prefect {args}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            return res.stdout

        run("work-pool", "create", "sdft-pool", "--type", "process")
        deployed = run("--no-prompt", "deploy", "--all")
        assert "learn-pending-skills/nightly" in deployed
        worker_log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen([*prefect, "worker", "start", "--pool", "sdft-pool"], cwd=ws, env=env,
                                  stdout=worker_log, stderr=subprocess.STDOUT)
        out = run("deployment", "run", "learn-pending-skills/nightly", "--watch", "--watch-timeout", "900", timeout=960)
        assert "Completed" in out, out
        assert versions(ws)["champion"] == "2"
        assert (ws / "dvc.lock").exists() and (ws / "artifacts/report/metrics.json").exists()
    finally:
        for proc in (worker, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.mark.parametrize("given, expected", [(None, 180), ("45", 45)])
def test_flows_give_prefects_temporary_server_time_to_migrate_a_fresh_database(given, expected):
    """`make demo` in a fresh clone died at its first flow run: Prefect waits 20 s for its temporary server, whose
    first start migrates a new database (23 s on 2 cores). Importing the flows raises that wait (a given value wins)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    if given is not None:
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = given
    code = ("import flows.pipeline\n"
            "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as wait\n"
            "print(wait.value())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == expected
