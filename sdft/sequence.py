"""Learn the curriculum in order from one base model and fill the accuracy matrix as it goes.

Used by `sdft compare`, the demo's baselines and the bench scripts (one working folder per method). The DVC
pipeline runs the same stages one CLI call at a time; this is the in-process loop for side-by-side comparisons.
Both fill the same `sdft.metrics.AccuracyMatrix`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .evaluate import evaluate_model, write_predictions
from .ingest import ingest_skill
from .metrics import AccuracyMatrix
from .params import Params, with_overrides
from .train import train_skill


def learn_sequence(params: Params, method: str, workdir: str | Path, max_steps: int | None = None,
                   label: str | None = None) -> AccuracyMatrix:
    """`label` names the column in comparison tables (default: the method), e.g. "sft+replay"."""
    overrides = {"train.method": method, "artifacts_dir": str(Path(workdir))}
    if max_steps is not None:
        overrides["train.max_steps"] = max_steps
    params = with_overrides(params, overrides, where=label or method)
    skills, probes = list(params.skills), list(params.probes)
    everything = skills + probes
    for spec in [*params.skills.values(), *params.probes.values()]:
        ingest_skill(params, spec)
    result = AccuracyMatrix(label or method, skills, probes)

    def evaluate(model: str, tag: str) -> None:
        result.rows.append(write_predictions(params.layout.eval_dir(tag), evaluate_model(params, model, everything)))
        print(f"[{result.label}] {tag}: " + ", ".join(f"{k}={v:.0%}" for k, v in result.rows[-1].items()), flush=True)

    model = params.model.name_or_path
    evaluate(model, "base")
    for name in skills:
        # The trainer's own time (as in <checkpoint>.train_metrics.json), so pipeline and in-process runs compare alike.
        result.train_seconds += train_skill(params, name, params.layout.data_dir(name), model, params.layout.checkpoint_dir(name))["train_seconds"]
        model = str(params.layout.checkpoint_dir(name))
        evaluate(model, f"after-{name}")
    (Path(workdir) / "sequence.json").write_text(json.dumps({"rows": result.rows, **result.summary()}, indent=2))
    return result
