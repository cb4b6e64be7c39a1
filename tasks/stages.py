"""Each DVC stage as a Prefect task, and the gate report as a Prefect artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks import dvc
from sdft.params import Params

# Seconds. Training is the long stage; a hung stage should not hold the single-run lock forever.
TIMEOUTS = {"train": 6 * 3600, "evaluate": 2 * 3600}
DEFAULT_TIMEOUT = 3600
# Registration talks to the MLflow server, where a transient failure is worth one more try; the other
# stages are deterministic, so a retry would only repeat the same error.
RETRIES = {"register": 2}


def _kind(stage: str) -> str:
    return stage.split("@")[0]


@task(task_run_name="dvc repro {stage}")
def _run_stage(stage: str, root: str) -> str:
    output = dvc.repro(stage, root)  # echoed live to the worker's console
    get_run_logger().info("%s done; last lines:\n%s", stage, "\n".join(output.splitlines()[-15:]))
    return output


def run_stage(stage: str, root: str = "."):
    """Submit one stage with its kind's retries and timeout."""
    return _run_stage.with_options(
        retries=RETRIES.get(_kind(stage), 0),
        retry_delay_seconds=10,
        timeout_seconds=TIMEOUTS.get(_kind(stage), DEFAULT_TIMEOUT),
    )(stage, root)


@task
def publish_gate_report(params: Params, skill: str, root: str = ".") -> bool:
    """The gate report as a markdown artifact on the flow run; returns whether the gate passed."""
    report = (Path(root) / params.layout.gate_report(skill)).read_text(encoding="utf-8")
    create_markdown_artifact(markdown=report, key=f"gate-{skill}".replace("_", "-").lower(),
                             description=f"Regression gate for {skill}")
    return dvc.gate_passed(params, skill, root)
