"""The fault suite (bench/faults.py) in CI: SIGKILL at random moments of train, evaluate and register (5 each),
a dead tracking server, a full disk, two runs at once, diverged training, damaged and pickled checkpoints,
hostile names and paths, every malformed params value; after each, `dvc repro` again and zero invariant
violations. Real DVC, MLflow (sqlite) and training on the tiny model; nothing mocked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bad_params import BAD_VALUES
from conftest import REPO

pytestmark = pytest.mark.slow


def test_no_fault_breaks_an_invariant(tmp_path):
    out = tmp_path / "faults.md"
    res = subprocess.run([sys.executable, str(REPO / "bench" / "faults.py"), "--points", "5", "--seed", "0",
                          "--out", str(out), "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    table = out.read_text()
    assert table.count("| 5 | 0 |") == 3  # three stages, five kills each, no violation
    assert "| two dvc repro at once | 1 | 0 |" in table
    for row in ("| base model with a NaN weight (training would diverge) | 1 | 0 |", "| truncated checkpoint | 1 | 0 |",
                "| pickle-only checkpoint | 1 | 0 |", "| hostile skill names and --out paths | 14 | 0 |",
                f"| malformed params.yaml values | {len(BAD_VALUES) + 1} | 0 |"):
        assert row in table
