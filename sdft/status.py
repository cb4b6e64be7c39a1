"""`sdft status`: where the chain stands, in one table, from the files the stages wrote, `dvc status` and the
registry's aliases (the three places a user would otherwise look at one by one).

A skill is "up to date" when DVC has run all of its stages and none has changed since, "changed" when DVC
would rerun one of them (data, params or code changed), "never run" when a stage of it is not in dvc.lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml

from .params import Params

# The per-skill stages of dvc.yaml, in the order they run (also what tasks/dvc.py plans with).
SKILL_STAGES = ("ingest", "train", "evaluate", "gate", "register")


# DVC rewrites dvc.lock in place (open "w+", then the YAML): a `dvc` process killed in that moment leaves it cut
# short, and every later DVC command refuses the whole project. The outputs are safe in DVC's cache and run cache.
BROKEN_LOCK = ("dvc.lock is cut short or damaged (a `dvc` process was killed while writing it: DVC rewrites the "
               "file in place), so DVC cannot read the project")
BROKEN_LOCK_FIX = ("`git checkout dvc.lock` (the last committed one) or `mv dvc.lock dvc.lock.broken`, then "
                   "`dvc repro`: stages DVC already ran come back from its run cache without running again")


def explain_dvc_error(output: str) -> tuple[str, str] | None:
    """(cause, fix) for a DVC failure this project knows (today: an unreadable dvc.lock), else None."""
    if "dvc.lock' validation failed" in output or ("dvc.lock" in output and "unable to read" in output.lower()):
        return BROKEN_LOCK, BROKEN_LOCK_FIX
    return None


def _dvc_changed(proc: subprocess.Popen) -> tuple[set[str], str | None]:
    """Stage names `dvc status` reports as changed, or an error line when DVC cannot answer."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = (err or out).strip().splitlines()
        if known := explain_dvc_error(err + out):
            return set(), f"{known[0]}. Fix: {known[1]}."
        return set(), lines[-1] if lines else f"dvc status exited {proc.returncode}"
    return set(json.loads(out or "{}")), None


def _locked_stages(lock_file: Path) -> set[str]:
    if not lock_file.exists():
        return set()
    return set((yaml.safe_load(lock_file.read_text()) or {}).get("stages", {}))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def chain_status(params: Params, root: Path = Path("."), read_aliases: Callable[[], dict] | None = None) -> dict:
    """One row per skill, the registry's aliases (`read_aliases()`: alias -> version), and whether anything is
    stale. `dvc status` runs in its own process while the aliases are read (each takes a second or two)."""
    dvc = subprocess.Popen([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    registry_aliases = read_aliases() if read_aliases else {}
    changed, dvc_error = _dvc_changed(dvc)
    locked = set() if dvc_error and dvc_error.startswith(BROKEN_LOCK) else _locked_stages(root / "dvc.lock")
    rows = []
    for skill in params.skills:
        stages = [f"{stage}@{skill}" for stage in SKILL_STAGES]
        if not all(s in locked for s in stages):
            state = "never run"
        elif any(s in changed for s in stages):
            state = "changed: " + ", ".join(s.split("@")[0] for s in stages if s in changed)
        else:
            state = "up to date"
        meta = _read(root / params.layout.meta_file(skill)) or {}
        scores = _read(root / params.layout.scores_file(skill)) or {}
        gate_file = root / params.layout.gate_marker(skill)
        version = str((_read(root / params.layout.registry_file(skill)) or {}).get("version", "")) or None
        new = scores.get("scores", {}).get(skill)
        ref = scores.get("reference", {}).get("scores", {}).get(skill)
        rows.append({
            "skill": skill,
            "data": (meta.get("sha256") or "")[:12] or None,
            "dvc": state,
            "score": None if new is None else f"{100 * new:.1f}" + ("" if ref is None else f" (parent {100 * ref:.1f})"),
            "gate": gate_file.read_text().strip() if gate_file.exists() else None,
            "version": version,
            "aliases": ", ".join(sorted(a for a, v in (registry_aliases or {}).items() if version and v == version)),
        })
    stale = dvc_error is not None or any(r["dvc"] != "up to date" for r in rows)
    return {"skills": rows, "aliases": registry_aliases or {}, "dvc_error": dvc_error, "stale": stale}
