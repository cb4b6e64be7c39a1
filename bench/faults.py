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
(RLIMIT_FSIZE: writes fail with EFBIG), two `dvc repro` at once, SIGKILL of `dvc repro` alone (the stage
it started must not train on as an orphan), a base model whose training diverges (NaN), a truncated and a
pickle-only checkpoint, hostile skill names and `--out` paths, and every malformed params.yaml value of
tests/bad_params.py. The input faults must be refused with the file and the fix, leaving the artifacts and
the registry as they were; the user then does what the message says (restore params.yaml, `dvc checkout`)
and reruns. Prints the table (fault | runs | violations); tests/test_fault_suite.py runs it in CI and
requires zero violations.

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

from bad_params import BAD_VALUES  # noqa: E402
from tiny_model import build_tiny_model  # noqa: E402
from workspace import broken_copy, env, make_workspace, registry_state, sh, versions  # noqa: E402

SKILL = "facts_a"
LOCK_REPAIRS: list[int] = []  # kills that cut dvc.lock short, each recovered with the fix `sdft status` gave
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


def layout(ws: Path):
    from sdft.params import load_params

    return load_params(ws / "params.yaml").layout


def outcome(ws: Path) -> dict:
    """What the reference and every recovered run must agree on."""
    from safetensors.torch import load_file

    weights = load_file(ws / layout(ws).checkpoint_dir(SKILL) / "model.safetensors")
    scores = json.loads((ws / layout(ws).scores_file(SKILL)).read_text())["scores"]
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
        # A kill while DVC rewrote dvc.lock (in place) leaves it cut short; `sdft status` must say so and give the
        # fix, and the fix it gives must bring everything back (the invariants are checked after it).
        status = subprocess.run([str(Path(sys.executable).parent / "sdft"), "status"], cwd=ws, env=env(ws),
                                capture_output=True, text=True, timeout=300)
        if "dvc.lock is cut short" not in status.stdout or "mv dvc.lock dvc.lock.broken" not in status.stdout:
            return f"rerun failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
        LOCK_REPAIRS.append(len(LOCK_REPAIRS) + 1)
        (ws / "dvc.lock").rename(ws / f"dvc.lock.broken-{len(LOCK_REPAIRS)}")
        res = dvc(ws, "repro", check=False)
        if res.returncode != 0:
            return f"rerun after the dvc.lock fix failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
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


# ---------------------------------------------------------------- bad input: refused, nothing touched


def sdft(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "sdft"), *args], cwd=ws, env=env(ws),
                          capture_output=True, text=True, timeout=300)


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def registry_snapshot(ws: Path) -> tuple:
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    return versions(ws), sorted((mv.version, mv.tags.get("checkpoint_sha256"))
                                for mv in c.search_model_versions("name = 'sdft-model'"))


def edit_params(ws: Path, change) -> None:
    import yaml

    p = yaml.safe_load((ws / "params.yaml").read_text())
    change(p)
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def restore_params(ws: Path) -> None:
    sh(ws, "git", "checkout", "--", "params.yaml")  # what the user does once the error named the key


def refused_untouched(ws: Path, res: subprocess.CompletedProcess, needles: tuple[str, ...], art: dict, reg: tuple,
                      label: str) -> list[str]:
    """A bad input: one-line error (exit 2, no traceback) naming `needles`, artifacts and registry as before."""
    out, err = [], res.stderr
    if res.returncode != 2:
        out.append(f"{label}: exit {res.returncode}, not 2")
    if "Traceback" in err:
        out.append(f"{label}: traceback instead of a one-line error")
    missing = [n for n in needles if n not in err]
    if missing:
        out.append(f"{label}: the error does not name {missing}")
    if tree_hashes(ws / "artifacts") != art:
        out.append(f"{label}: artifacts changed")
    if registry_snapshot(ws) != reg:
        out.append(f"{label}: the registry changed")
    return out


def diverged_training(ws: Path) -> str:
    """The user points the model at a broken copy (one NaN weight): training could only diverge. The chain
    must stop (at the base stage) naming the broken model, with no checkpoint written and nothing registered."""
    import shutil

    import torch
    from safetensors.torch import load_file

    base = Path(__import__("yaml").safe_load((ws / "params.yaml").read_text())["model"]["name_or_path"])
    broken = ws.parent / "nan-model"
    shutil.rmtree(broken, ignore_errors=True)
    broken_copy(base, broken, float("nan"))
    reg = registry_snapshot(ws)
    edit_params(ws, lambda p: p["model"].update(name_or_path=str(broken)))
    res = dvc(ws, "repro", check=False)
    problems = []
    if res.returncode == 0:
        problems.append("dvc repro succeeded on a diverged run")
    elif "non-finite weights" not in res.stdout + res.stderr or str(broken) not in res.stdout + res.stderr:
        problems.append("the failure does not name the broken model")
    ckpt = ws / layout(ws).checkpoint_dir(SKILL) / "model.safetensors"
    if ckpt.exists() and not all(torch.isfinite(t).all() for t in load_file(ckpt).values()):
        problems.append("a non-finite checkpoint was written")
    if registry_snapshot(ws) != reg:
        problems.append("the registry changed")
    restore_params(ws)
    return "; ".join(problems)


def damaged_checkpoint(ws: Path, how: str) -> str:
    """The checkpoint on disk is cut short or replaced by a pickle: the evaluate stage's command must refuse it
    naming the path and `dvc checkout`, and `dvc checkout` (the fix it names) must bring the real one back."""
    import torch
    from safetensors.torch import load_file

    ckpt = ws / layout(ws).checkpoint_dir(SKILL)
    art, reg = tree_hashes(ws / "artifacts"), registry_snapshot(ws)
    weights = ckpt / "model.safetensors"
    if how == "truncated":  # a copy cut short lands as a new file (the tracked one is a read-only hard link into
        data = weights.read_bytes()  # DVC's cache and the registry: writing through it would damage all three)
        weights.unlink()
        weights.write_bytes(data[: len(data) // 2])
    else:  # pickle-only: what `save_pretrained(safe_serialization=False)` writes; loading it runs pickle
        torch.save(load_file(weights), ckpt / "pytorch_model.bin")
        weights.unlink()
    damaged = tree_hashes(ws / "artifacts")
    res = sdft(ws, "evaluate", "--skill", SKILL)
    problems = refused_untouched(ws, res, (f"checkpoints/{SKILL}", "dvc checkout"), damaged, reg, how)
    dvc(ws, "checkout", "-f", check=False)
    if tree_hashes(ws / "artifacts") != art:
        problems.append("`dvc checkout` did not restore the checkpoint")
    return "; ".join(problems)


def hostile_inputs(ws: Path) -> tuple[int, list[str]]:
    """Skill names that are paths, `--out` at the user's own files, and a path-like skill name in params.yaml."""
    art, reg, user = tree_hashes(ws / "artifacts"), registry_snapshot(ws), user_files(ws)
    calls = [("--skill", name) for name in ("../../skills", "..", "a/b", "skills/../..", str(ws / "skills"), "base", "")]
    calls += [("--skill", SKILL, "--out", out) for out in ("skills", "params.yaml", "sdft", str(ws))]
    problems = []
    for extra in calls:
        res = sdft(ws, "ingest", f"skills/{SKILL}.jsonl", *extra)
        problems += refused_untouched(ws, res, ("Fix:",), art, reg, " ".join(extra))
    for name in ("../x", "a/b", "base"):
        edit_params(ws, lambda p: p["skills"].__setitem__(name, p["skills"].pop("facts_b")))
        res = sdft(ws, "status")
        problems += refused_untouched(ws, res, ("params.yaml", "letters, digits"), art, reg, f"skill {name!r} in params.yaml")
        restore_params(ws)
    if user_files(ws) != user:
        problems.append("user files changed")
    return len(calls) + 3, problems


def malformed_params(ws: Path) -> tuple[int, list[str]]:
    """Every value of tests/bad_params.py through the CLI (`sdft status` loads params.yaml as every stage does),
    then one through `dvc repro`: the chain must stop before any stage does work."""
    art, reg = tree_hashes(ws / "artifacts"), registry_snapshot(ws)
    problems = []
    for section, key, value in BAD_VALUES:
        edit_params(ws, lambda p: p.setdefault(section, {}).__setitem__(key, value))
        res = sdft(ws, "status")
        problems += refused_untouched(ws, res, (f"params.{section}.{key}", "Fix:"), art, reg, f"{section}.{key}={value!r}")
        restore_params(ws)
    edit_params(ws, lambda p: p["train"].update(learning_rate="fast"))
    res = dvc(ws, "repro", check=False)
    if res.returncode == 0 or "params.train.learning_rate" not in res.stdout + res.stderr:
        problems.append("dvc repro with learning_rate 'fast' did not stop naming the key")
    restore_params(ws)
    return len(BAD_VALUES) + 1, problems


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
    for name, fault in (("base model with a NaN weight (training would diverge)", diverged_training),
                        ("truncated checkpoint", lambda w: damaged_checkpoint(w, "truncated")),
                        ("pickle-only checkpoint", lambda w: damaged_checkpoint(w, "pickle"))):
        problem = fault(ws)
        rerun = recover(ws)
        rows.append((name, 1, [p for p in (problem, rerun) if p] or violations(ws, ref, before)))
    for name, fault in (("hostile skill names and --out paths", hostile_inputs),
                        ("malformed params.yaml values", malformed_params)):
        runs, found = fault(ws)
        rerun = recover(ws)
        rows.append((name, runs, found + ([rerun] if rerun else []) or violations(ws, ref, before)))

    lines = [f"Fault suite (bench/faults.py, seed {args.seed}, tiny model):", "",
             "| fault | runs | invariant violations |", "|---|---|---|"]
    for name, runs, found in rows:
        lines.append(f"| {name} | {runs} | {len(found)}{': ' + '; '.join(found[:3]) if found else ''} |")
    if LOCK_REPAIRS:
        lines += ["", f"dvc.lock was cut short by {len(LOCK_REPAIRS)} kill(s) (DVC rewrites it in place); each time "
                  "`sdft status` named it and the fix, and the invariants above were checked after that fix."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if any(found for _, _, found in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
