"""bench/cli_latency.py (issue #14, item 3): every command it times answers (a failed command is an error, not a
fast row), and the ingest it times leaves the project's artifacts alone. The timings live in the benchmark."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_cli_latency_times_each_command_and_writes_nothing_into_the_project():
    before = sorted(p.name for p in (REPO / "artifacts").glob("*")) if (REPO / "artifacts").exists() else None
    out = subprocess.run([sys.executable, "bench/cli_latency.py", "--repeats", "1"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| sdft")}
    assert set(rows) == {"sdft --help", "sdft ingest (3 records)", "sdft status"}
    after = sorted(p.name for p in (REPO / "artifacts").glob("*")) if (REPO / "artifacts").exists() else None
    assert after == before


def test_a_failing_command_stops_the_benchmark():
    code = ("import sys; sys.argv = ['x']; sys.path.insert(0, 'bench'); import cli_latency as c; "
            "c.timed([sys.executable, '-m', 'sdft', 'ingest', 'no-such-file.jsonl', '--skill', 'nope'], 1)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode != 0 and "failed" in done.stderr
