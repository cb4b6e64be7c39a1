"""Prefect flows over the DVC skill chain.

- `learn-skill`: learn the curriculum through one named skill (earlier skills first, if pending).
- `learn-pending-skills`: learn every skill in params.yaml not learned yet (the scheduled deployment).

Each step is `dvc repro --single-item <stage>`, so a flow run leaves dvc.lock exactly as `dvc repro`
would, and an up-to-date stage is skipped. A failed gate stops the chain after registering the
candidate; only one run at a time holds the workspace.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from sdft.params import load_params
from tasks.dvc import pipeline_lock, stage_plan
from tasks.stages import publish_gate_report, run_stage


@flow(name="learn-skill")
def learn_skill(skill: str, root: str = ".") -> dict:
    logger = get_run_logger()
    root = str(Path(root).resolve())
    params = load_params(Path(root) / "params.yaml")
    params.skill(skill)  # unknown names fail before anything runs
    learned: list[str] = []
    with pipeline_lock(root):
        groups = stage_plan(params, skill)
        for stage in groups[0]:
            run_stage(stage, root)
        for name, group in zip(params.skills_through(skill), groups[1:]):
            for stage in group:
                run_stage(stage, root)
            learned.append(name)
            if not publish_gate_report(params, name, root):
                logger.warning("gate failed for %s: the chain stops here; see %s", name, params.layout.gate_report(name))
                run_stage("report", root)
                return {"learned": learned, "stopped_at": name, "gate_passed": False}
        run_stage("report", root)
    return {"learned": learned, "stopped_at": None, "gate_passed": True}


@flow(name="learn-pending-skills")
def learn_pending_skills(root: str = ".") -> dict:
    params = load_params(Path(root) / "params.yaml")
    return learn_skill(list(params.skills)[-1], root)


if __name__ == "__main__":
    import sys

    from sdft.errors import SdftError

    try:
        with pipeline_lock("."):  # refused at once, before Prefect starts (its failure log is a traceback)
            pass
        learn_pending_skills()
    except SdftError as exc:  # e.g. another run holds the workspace: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
