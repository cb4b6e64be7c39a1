"""Fault-injection suite (issue #13): kill, starve and race the real pipeline, then check that nothing was lost.

A workspace (tests/workspace.py: git + DVC, MLflow on sqlite, the tiny local model) learns one skill with
`dvc repro`; that run is the reference. Then each fault is applied to it, `dvc repro` is run again as a user
would, and the invariants are checked:

- the user's files (skills, params.yaml, dvc.yaml, the code) are byte-for-byte unchanged;
- `dvc status` is clean: the rerun finished the chain;
- the checkpoint has the reference's weights (training is deterministic on CPU, resumed or not) and the
  evaluation the reference's scores;
- the registry holds one version per checkpoint, no MLflow run left RUNNING, `champion` on a version whose
  gate passed and `previous-champion` never equal to it, and the aliases where the reference run left them;
- no temporary or resume folder is left in artifacts/.

Faults: SIGKILL of the whole `dvc repro` process group at a random moment of the train, evaluate and register
stages (--points per stage, seeded), a dead tracking server during register, a full disk during train
(RLIMIT_FSIZE: writes fail with EFBIG), two `dvc repro` at once, and SIGKILL of `dvc repro` alone (the stage
it started must not train on as an orphan). Prints the table (fault | runs | violations);
tests/test_fault_suite.py runs it in CI and requires zero violations.

Usage: python bench/faults.py [--points 5] [--seed 0] [--out faults.md]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tiny_model import build_tiny_model  # noqa: E402
from workspace import env, make_workspace, registry_state, sh, versions  # noqa: E402

SKILL = "facts_a"
STAGES = ("train", "evaluate", "register")
USER_PATHS = ("skills", "sdft", "flows", "params.yaml", "dvc.yaml", "prefect.yaml")


def dvc(ws: Path, *args: str, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**env(ws), **(extra_env or {})}
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, env=e, capture_output=True, text=True,
                         timeout=900)
    if check and res.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res


def user_files(ws: Path) -> dict[str, str]:
    files = {}
    for name in USER_PATHS:
        for p in sorted([ws / name] if (ws / name).is_file() else (ws / name).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                files[str(p.relative_to(ws))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def outcome(ws: Path) -> dict:
    """What the reference and every recovered run must agree on."""
    from safetensors.torch import load_file

    weights = load_file(ws / f"artifacts/checkpoints/{SKILL}/model.safetensors")
    scores = json.loads((ws / f"artifacts/eval/{SKILL}/scores.json").read_text())["scores"]
    return {"weights": weights, "scores": scores}


def registry_violations(ws: Path) -> list[str]:
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    out = []
    shas = [mv.tags.get("checkpoint_sha256") for mv in c.search_model_versions("name = 'sdft-model'")]
    if len(shas) != len(set(shas)):
        out.append(f"{len(shas)} model versions for {len(set(shas))} checkpoints")
    for exp in c.search_experiments():
        running = c.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
        if running:
            out.append(f"{len(running)} MLflow run(s) left RUNNING")

    state = registry_state(ws)
    champion, previous = state["champion"], state["previous-champion"]
    if champion is None:
        out.append("no champion")
    elif champion.tags.get("gate") != "pass":
        out.append(f"champion v{champion.version} has gate={champion.tags.get('gate')}")
    if champion is not None and previous is not None and champion.version == previous.version:
        out.append("previous-champion == champion")
    return out


def violations(ws: Path, ref: dict, before: dict) -> list[str]:
    import torch

    out = []
    if user_files(ws) != before:
        out.append("user files changed")
    status = dvc(ws, "status", check=False)
    if status.returncode != 0 or "up to date" not in status.stdout:
        out.append(f"dvc status not clean: {status.stdout.strip()[:200]}")
        return out
    got = outcome(ws)
    if got["weights"].keys() != ref["weights"].keys() or not all(
            torch.allclose(got["weights"][k], ref["weights"][k], atol=1e-6, rtol=0) for k in ref["weights"]):
        out.append("checkpoint differs from the reference")
    if got["scores"] != ref["scores"]:
        out.append("scores differ from the reference")
    out += registry_violations(ws)
    now = versions(ws)
    if now != ref["aliases"]:  # a rerun of a stage must not move an alias the reference run set
        out.append(f"aliases {now} differ from the reference's {ref['aliases']}")
    art = ws / "artifacts"
    left = [p for p in art.rglob("*") if p.is_dir() and (p.name.endswith(".resume") or
                                                         (p.name.startswith(".") and "-" in p.name))]
    if left:
        out.append(f"left behind: {', '.join(str(p.relative_to(ws)) for p in left[:3])}")
    return out


def recover(ws: Path) -> str:
    """What a user does after any failure: run the chain again, then look (`sdft status`). DVC may restore a
    killed stage's output from its run cache without running any `sdft` command; the killed run's temporary
    and resume folders are then removed by the next `sdft` command, whichever it is."""
    res = dvc(ws, "repro", check=False)
    if res.returncode != 0:
        return f"rerun failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
    subprocess.run([str(Path(sys.executable).parent / "sdft"), "status"], cwd=ws, env=env(ws), capture_output=True,
                   timeout=300)
    return ""


def kill_during(ws: Path, stage: str, delay: float) -> None:
    """`dvc repro -f -s <stage>` (forced: the stage really runs), SIGKILL to its whole process group after `delay` s."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", f"{stage}@{SKILL}"], cwd=ws,
                            env=env(ws), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def full_disk(ws: Path) -> str:
    def limit():  # every write past 64 KiB fails with EFBIG (SIGXFSZ ignored, as a full disk fails a write)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    res = subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", f"train@{SKILL}"], cwd=ws, env=env(ws),
                         capture_output=True, text=True, timeout=900, preexec_fn=limit)
    return "" if res.returncode != 0 else "train succeeded on a full disk"


def dead_server(ws: Path) -> str:
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    before = [(mv.version, mv.aliases) for mv in c.search_model_versions("name = 'sdft-model'")]
    res = dvc(ws, "repro", "-f", "-s", f"register@{SKILL}", check=False,
              extra_env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})  # nothing listens on port 9
    after = [(mv.version, mv.aliases) for mv in c.search_model_versions("name = 'sdft-model'")]
    if res.returncode == 0:
        return "register succeeded against a dead server"
    if "MLFLOW_TRACKING_URI" not in res.stdout + res.stderr:
        return "the error does not name MLFLOW_TRACKING_URI"
    return "" if before == after else "the registry changed"


def concurrent(ws: Path) -> str:
    cmd = [sys.executable, "-m", "dvc", "repro", "-f", "-s", f"evaluate@{SKILL}"]
    procs = [subprocess.Popen(cmd, cwd=ws, env=env(ws), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    refused = [o for p, o in zip(procs, outs) if p.returncode != 0]
    # One may be refused, by DVC's lock and saying so; what both leave behind is checked after the rerun.
    if any("lock" not in o.lower() for o in refused):
        return "a concurrent run failed for another reason than the lock"
    return ""


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [c for c, ppid in parents.items() if ppid in frontier]
        found += kids
        frontier = kids
    return found


def _is_stage(pid: int) -> bool:
    try:
        return b"sdft" in Path(f"/proc/{pid}/cmdline").read_bytes() and b"dvc" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def dvc_killed_alone(ws: Path) -> str:
    """SIGKILL to `dvc repro` only (not its group), with /bin/sh as DVC's shell: the stage must stop with it."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", f"train@{SKILL}"], cwd=ws,
                            env={**env(ws), "SHELL": "/bin/sh"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline, stage = time.monotonic() + 120, []
    while not stage and time.monotonic() < deadline and proc.poll() is None:
        stage = [p for p in _descendants(proc.pid) if _is_stage(p)]
        time.sleep(0.1)
    if not stage:
        proc.wait()
        return "the stage never started"
    proc.send_signal(signal.SIGKILL)  # as soon as the stage starts: it is importing, seconds from its end
    proc.wait()
    deadline = time.monotonic() + 3  # the parent-death signal is immediate; the stage alone would take 10 s more
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _is_stage(p) for p in stage):
        time.sleep(0.2)
    alive = [p for p in stage if Path(f"/proc/{p}").exists() and _is_stage(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    return f"stage pid {alive[0]} outlived dvc" if alive else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=5, help="SIGKILL moments per stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--workdir", help="default: a new temporary folder")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="faults-"))
    model = build_tiny_model(work / "model", init_std=0.3)
    ws = make_workspace(work / "ws", model)
    # Mid-run checkpoints every step, so kills inside training exercise the resume path.
    sh(ws, sys.executable, "-c", "import yaml; p = yaml.safe_load(open('params.yaml')); p['train'].update("
       "save_steps=1, max_steps=4); yaml.safe_dump(p, open('params.yaml', 'w'), sort_keys=False)")
    sh(ws, "git", "commit", "-qam", "fault suite: save every step")
    dvc(ws, "repro")
    ref, before = {**outcome(ws), "aliases": versions(ws)}, user_files(ws)
    seconds = {}
    for stage in STAGES:  # each stage's length, to draw kill moments inside it
        start = time.perf_counter()
        dvc(ws, "repro", "-f", "-s", f"{stage}@{SKILL}")
        seconds[stage] = time.perf_counter() - start
    first = violations(ws, ref, before)
    rows = [("reference run, then each stage forced again", 1, first)]

    for stage in STAGES:
        found = []
        for _ in range(args.points):
            delay = rng.uniform(0.05, 1.0) * seconds[stage]
            kill_during(ws, stage, delay)
            problem = recover(ws)
            found += [f"kill at {delay:.1f}s: {v}" for v in ([problem] if problem else violations(ws, ref, before))]
        rows.append((f"SIGKILL during {stage} (random moments in {seconds[stage]:.0f}s)", args.points, found))
    for name, fault in (("tracking server dead during register", dead_server),
                        ("disk full during train (RLIMIT_FSIZE 64 KiB)", full_disk),
                        ("two dvc repro at once", concurrent),
                        ("dvc repro killed alone, /bin/sh as its shell", dvc_killed_alone)):
        problem = fault(ws)
        rerun = recover(ws)
        found = [p for p in (problem, rerun) if p] or violations(ws, ref, before)
        rows.append((name, 1, found))

    lines = [f"Fault suite (bench/faults.py, seed {args.seed}, tiny model):", "",
             "| fault | runs | invariant violations |", "|---|---|---|"]
    for name, runs, found in rows:
        lines.append(f"| {name} | {runs} | {len(found)}{': ' + '; '.join(found[:3]) if found else ''} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if any(found for _, _, found in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
