"""How long the CLI takes to answer (issue #14, item 3): `sdft --help`, `sdft ingest` of a 3-record file, `sdft status`.

Each command runs as a new process (what a user or a DVC stage pays, imports included), `--repeats` times after one
untimed run; the table gives the median and the slowest, in seconds. Run from the repository root (params.yaml's
skills and model are the ones the commands see); the ingest writes to a temporary folder, never to artifacts/.

Usage: python bench/cli_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sdft ingest (3 records)": 3.0, "sdft status": 2.0}  # issue #14's bars, seconds


def timed(cmd: list[str], repeats: int, answers: tuple[int, ...] = (0,)) -> list[float]:
    """Seconds per run; an exit code outside `answers` stops the benchmark (a failure is no fast row)."""
    def once() -> float:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode not in answers:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return time.perf_counter() - start

    once()  # untimed: file caches warm, as for a user
    return [once() for _ in range(repeats)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sdft = [sys.executable, "-m", "sdft"]
    from sdft.params import load_params

    skill = next(iter(load_params(ROOT / "params.yaml").skills.values()))
    work = Path(tempfile.mkdtemp(prefix="cli-latency-"))
    try:
        rows = [json.loads(line) for line in (ROOT / skill.path).read_text().splitlines() if line.strip()]
        small = work / "three.jsonl"
        small.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
        commands = {  # name: (command, the exit codes that are an answer)
            "sdft --help": (sdft + ["--help"], (0,)),
            "sdft ingest (3 records)": (sdft + ["ingest", str(small), "--skill", skill.name, "--out", str(work / "out")],
                                        (0,)),
            "sdft status": (sdft + ["status"], (0, 1)),  # 1: something is stale, as `dvc status` reports it
        }
        print(f"\nCLI latency, a new process per call, {args.repeats} timed runs after 1 untimed (seconds):\n")
        print("| command | median | slowest | target |")
        print("|---|---|---|---|")
        for name, (cmd, answers) in commands.items():
            t = timed(cmd, args.repeats, answers)
            target = f"< {TARGETS[name]:g}" if name in TARGETS else "-"
            print(f"| {name} | {statistics.median(t):.2f} | {max(t):.2f} | {target} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
