"""The registry as a person sees it in the MLflow UI (issue #15): each version explains its gate verdict, and a
champion moved through MLflow's REST API (what the UI calls) stops the chain from growing on another model.
A real `mlflow server` on sqlite; nothing mocked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import fake_checkpoint
from sdft.errors import SdftError
from sdft.params import SkillSpec

CHECKS = [{"name": "facts", "kind": "new", "candidate": 0.5, "reference": 0.0, "limit": ">= 0.0", "passed": True},
          {"name": "probe", "kind": "general", "candidate": 0.7, "reference": 0.8, "limit": "drop <= 3.0",
           "passed": False, "reason": "probe fell 10.0 points (limit 3.0)"}]


def _register(params, root, skill: str, tag: str, passed: bool = True) -> str:
    from sdft import registry

    verdict = {"passed": passed, "checks": CHECKS if not passed else CHECKS[:1],
               "reasons": [CHECKS[1]["reason"]] if not passed else []}
    scores = {"scores": {"facts": 0.5}, "reference": {"scores": {"facts": 0.0}}}
    version = registry.register(params, skill, fake_checkpoint(root, tag), scores, verdict, [], {})["version"]
    params.layout.registry_file(skill).parent.mkdir(parents=True, exist_ok=True)
    params.layout.registry_file(skill).write_text(json.dumps({"version": version}))  # what the register stage writes
    return version


@pytest.fixture
def server(tmp_path, monkeypatch, params):
    """`mlflow server` on a sqlite file, as a team would start it (one worker on 2 cores)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp_path / "mlartifacts")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    params.artifacts_dir = str(tmp_path / "artifacts")
    params.skills["facts_b"] = SkillSpec(name="facts_b", path="b.jsonl", after="facts")
    params.skills["other"] = SkillSpec(name="other", path="o.jsonl", after="facts_b")
    yield params, url
    proc.terminate()
    proc.wait(timeout=30)


def _rest(url: str, path: str, body: dict) -> None:
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def test_a_version_page_says_why_it_is_not_champion(server, tmp_path):
    from sdft import registry

    params, _ = server
    _register(params, tmp_path, "facts", "a")
    failed = _register(params, tmp_path, "facts_b", "b", passed=False)
    mv = registry.client().get_model_version("sdft-model", failed)
    assert "Regression gate: **FAIL**" in mv.description and "probe fell 10.0 points" in mv.description
    assert "probe (general): 70.0 vs 80.0" in mv.description


def test_champion_moved_in_the_ui_stops_the_next_skill_until_chain_and_champion_agree(server, tmp_path):
    from sdft import registry

    params, url = server
    v1 = _register(params, tmp_path, "facts", "a")  # gate passed, promotion auto: champion
    registry.require_parent_is_champion(params, "facts_b")  # agree: facts_b may learn from facts
    other = _register(params, tmp_path, "other", "x")  # a later model becomes champion ...
    _rest(url, "registered-models/alias", {"name": "sdft-model", "alias": "champion", "version": other})  # via the UI's API
    with pytest.raises(SdftError) as err:
        registry.require_parent_is_champion(params, "facts_b")
    message = str(err.value)
    assert f"version {v1}" in message and f"`champion` is version {other} ('other')" in message
    assert f"sdft promote --version {v1}" in message and "after: other" in message
    _rest(url, "registered-models/alias", {"name": "sdft-model", "alias": "champion", "version": v1})  # promoted back
    registry.require_parent_is_champion(params, "facts_b")
