"""Orchestration: run DVC stages one at a time under the workspace's single-run lock (moved out of `sdft/`,
which is the library only).

The Prefect tasks (`tasks/stages.py`) and `python -m flows.pipeline` call this, so a flow run leaves the
workspace exactly as `dvc repro` would: the stages are DVC's, recorded in dvc.lock. No Prefect import here.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sdft.errors import SdftError
from sdft.params import Params
from sdft.status import SKILL_STAGES, explain_dvc_error  # SKILL_STAGES: the per-skill stages of dvc.yaml, in order

LOCK_FILE = ".sdft-pipeline.lock"


def stage_plan(params: Params, skill: str) -> list[list[str]]:
    """Groups of DVC stages to learn the curriculum through `skill`: the shared setup, then one group per skill."""
    setup = [f"ingest_probe@{p}" for p in params.probes] + ["base"]
    return [setup] + [[f"{stage}@{s}" for stage in SKILL_STAGES] for s in params.skills_through(skill)]


def _env() -> dict[str, str]:
    # Stage commands call `sdft`: make this interpreter's bin folder (the venv) win on PATH.
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}


def repro(stage: str, root: str | Path = ".", echo: bool = True) -> str:
    """`dvc repro --single-item STAGE`: runs the stage if its deps, params or outs changed, else skips it.

    The stage's output (progress bars included) is echoed as it comes, and returned for the logs.
    """
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=root, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    while chunk := os.read(proc.stdout.fileno(), 4096):  # returns as soon as anything arrives
        chunks.append(chunk)
        if echo:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    proc.wait()
    output = b"".join(chunks).decode("utf-8", "replace").replace("\r", "\n").strip()
    if proc.returncode != 0:
        if known := explain_dvc_error(output):  # DVC could not start the stage at all
            raise SdftError(f"stage {stage} did not start: {known[0]}", where=str(Path(root).resolve() / "dvc.lock"),
                            fix=known[1] + ".")
        raise SdftError(f"stage {stage} failed: {failure_cause(output)}", where=str(Path(root).resolve() / "dvc.yaml"),
                        fix="read the stage output above; fix the cause and rerun (finished stages are kept).")
    return output


_PROGRESS = re.compile(r"[^\n|]*\d+%\|[^|\n]*\|[^\]\n]*\]")  # a tqdm bar: "desc:  45%|####  | 5/11 [00:10<00:12]"


def failure_cause(output: str) -> str:
    """The line that says why a stage failed: `sdft`'s own `error:` line (file, cause, fix) if there is one,
    else DVC's, with any progress-bar text that shared its line removed."""
    lines = [_PROGRESS.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    ours = [line[line.index("error: "):] for line in lines if "error: " in line]
    dvcs = [line[line.index("ERROR: "):] for line in lines if "ERROR: " in line]
    return (ours or dvcs or lines or ["(no output)"])[-1]


def gate_passed(params: Params, skill: str, root: str | Path = ".") -> bool:
    verdict = Path(root) / params.layout.verdict_file(skill)
    return json.loads(verdict.read_text())["passed"]


@contextmanager
def pipeline_lock(root: str | Path = ".") -> Iterator[None]:
    """One pipeline run at a time per workspace; a second is refused at once with who holds the lock."""
    path = Path(root) / LOCK_FILE
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise SdftError(
            f"another pipeline run is in progress ({holder}).",
            where=str(path.resolve()),
            fix="wait for it to finish; nothing was changed by this attempt.",
        ) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
    finally:
        fh.seek(0)
        fh.truncate()
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
