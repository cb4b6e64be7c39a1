"""Learn the curriculum in order from one base model, in one process, through the pipeline's own stages.

Used by `sdft compare`, the demo's baselines and the bench scripts (one working folder per method). The DVC
pipeline runs the same stage functions one CLI call at a time; here they run back to back without the gate
and the registry (a side-by-side comparison, not a promotion). Each model is scored exactly as the evaluate
stage scores it, into the same files, and the accuracy matrix is read back by the one builder,
`sdft.stages.accuracy_matrix`, so a comparison table and the pipeline's report cannot disagree on a number.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import stages
from .headroom import NoTeacherHeadroom
from .ingest import ingest_skill
from .layout import read_json
from .metrics import AccuracyMatrix
from .params import Params, with_overrides
from .train import train_skill


def learn_sequence(params: Params, method: str, workdir: str | Path, max_steps: int | None = None,
                   label: str | None = None) -> AccuracyMatrix:
    """`label` names the column in comparison tables (default: the method), e.g. "sft+replay". A skill refused for
    lack of teacher headroom (sdft/headroom.py) ends the sequence: the matrix holds the skills learned before it."""
    label = label or method
    overrides = {"train.method": method, "artifacts_dir": str(Path(workdir))}
    if max_steps is not None:
        overrides["train.max_steps"] = max_steps
    params = with_overrides(params, overrides, where=label)
    layout = params.layout
    for spec in [*params.skills.values(), *params.probes.values()]:
        ingest_skill(params, spec)
    stages.base(params)
    _progress(label, "base", layout.scores_file("base"))
    for name in params.skills:
        try:
            train_skill(params, name, layout.data_dir(name), str(layout.checkpoint_dir(params.parent(name))),
                        layout.checkpoint_dir(name))
        except NoTeacherHeadroom as refused:  # the chain stops here, as the pipeline's does; the matrix ends before it
            print(f"[{label}] {name} refused: {refused}", flush=True)
            break
        stages.evaluate(params, name)
        _progress(label, f"after {name}", layout.scores_file(name))
    result = stages.accuracy_matrix(params, label=label)
    (Path(workdir) / "sequence.json").write_text(json.dumps({"rows": result.rows, **result.summary()}, indent=2))
    return result


def _progress(label: str, tag: str, scores_file: Path) -> None:
    scores = read_json(scores_file, tag)["scores"]
    print(f"[{label}] {tag}: " + ", ".join(f"{k}={v:.0%}" for k, v in scores.items()), flush=True)
