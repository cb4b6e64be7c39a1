"""The pipeline stages, one function each. `dvc.yaml` runs them through the `sdft` CLI and the
Prefect flows run `dvc repro` on them, so each stage is defined exactly once. Where each one writes:
sdft/layout.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .data import write_skill
from .errors import SdftError
from .evaluate import evaluate_model, evaluate_models, write_predictions
from .gate import Verdict, gate
from .layout import BASE, read_json, write_json
from .metrics import AccuracyMatrix
from .outputs import publish_dir, staging_dir
from .models import checkpoint_tensors, load_model, load_tokenizer, non_finite, resolve_model
from .params import Params
from .report import pct, forgetting_plot, matrix_markdown




def base(params: Params) -> None:
    """Freeze the starting model as a checkpoint, score it on the probes, and mark it as passed."""
    source = resolve_model(params.model.name_or_path)
    target = params.layout.checkpoint_dir(BASE)
    tmp = staging_dir(target)
    try:
        if Path(source).is_dir():
            shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
        else:  # a hub id: save what from_pretrained fetched
            load_model(source, params.model).save_pretrained(tmp)
            load_tokenizer(source, params.model.trust_remote_code).save_pretrained(tmp)
        _require_finite(tmp, params.model.name_or_path)
        publish_dir(tmp, target)  # renamed into place: nothing left to clean up after it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The base model learned no skill: an empty data folder, so the first skill's train stage can depend on
    # the data folder of its `after` like every later one (replay reads the skill before it from there).
    write_skill(params.layout.data_dir(BASE), [], [], {"skill": BASE, "probe": False})
    results = evaluate_model(params, str(target), list(params.probes))
    scores = write_predictions(params.layout.predictions_dir(BASE), results)
    write_json(params.layout.scores_file(BASE), {"model": BASE, "scores": scores, "reference": None})
    params.layout.gate_marker(BASE).parent.mkdir(parents=True, exist_ok=True)
    params.layout.gate_marker(BASE).write_text("pass\n")


def _require_finite(folder: Path, name: str) -> None:
    """A starting model with a NaN/inf weight can only give garbage scores and a diverged run: refused before it
    becomes the chain's base."""
    bad = non_finite(checkpoint_tensors(folder))
    if bad:
        raise SdftError(f"the model has non-finite weights (e.g. {bad[0]}); it was not made the base.",
                        where=f"params.yaml: model.name_or_path = {name}",
                        fix="point `model.name_or_path` at an intact model (re-download or re-export it).")


def require_parent_passed(params: Params, skill: str) -> None:
    parent = params.parent(skill)
    marker = params.layout.gate_marker(parent)
    status = marker.read_text().strip() if marker.exists() else "missing"
    if status != "pass":
        raise SdftError(
            f"cannot learn {skill!r}: the skill before it, {parent!r}, "
            + ("failed its regression gate." if status == "fail" else "has no gate verdict yet."),
            where=str(marker),
            fix=f"see {params.layout.gate_report(parent)}; retrain {parent!r} or change its gate in params.yaml, then `dvc repro`.",
        )


def train(params: Params, skill: str) -> dict:
    """Learn `skill` from its parent's checkpoint, which must have passed its gate and be `champion`."""
    from .registry import require_parent_is_champion
    from .train import train_skill

    require_parent_passed(params, skill)
    require_parent_is_champion(params, skill)
    return train_skill(params, skill, params.layout.data_dir(skill), str(params.layout.checkpoint_dir(params.parent(skill))),
                       params.layout.checkpoint_dir(skill))


def evaluate(params: Params, skill: str) -> dict:
    """Candidate (this skill's checkpoint) on every skill so far + probes; reference (the parent) on the new skill.

    The parent's scores on earlier skills and probes come from its own evaluate stage: each model is
    scored once, and this stage depends on that file, which chains every earlier skill's data in.
    """
    parent = params.parent(skill)
    names = params.skills_through(skill) + list(params.probes)
    parent_scores = read_json(params.layout.scores_file(parent), f"evaluate@{parent}" if parent != BASE else BASE)["scores"]
    candidate, reference = evaluate_models(params, [(str(params.layout.checkpoint_dir(skill)), names),
                                                    (str(params.layout.checkpoint_dir(parent)), [skill])])
    cand = write_predictions(params.layout.predictions_dir(skill), candidate)
    ref_new = write_predictions(params.layout.reference_dir(skill), reference)
    result = {"model": skill, "scores": cand, "reference": {"model": parent, "scores": {**parent_scores, **ref_new}}}
    write_json(params.layout.scores_file(skill), result)
    return result


def run_gate(params: Params, skill: str) -> Verdict:
    scores = read_json(params.layout.scores_file(skill), f"evaluate@{skill}")
    verdict = gate(
        scores["scores"],
        scores["reference"]["scores"],
        new_skill=skill,
        prior_skills=params.skills_through(skill)[:-1],
        general=list(params.probes),
        params=params.gate_for(skill),
    )
    params.layout.gate_dir(skill).mkdir(parents=True, exist_ok=True)
    params.layout.verdict_file(skill).write_text(verdict.to_json(), encoding="utf-8")
    params.layout.gate_report(skill).write_text(verdict.to_markdown(), encoding="utf-8")
    return verdict


def accuracy_matrix(params: Params, label: str = "pipeline") -> AccuracyMatrix:
    """The accuracy matrix from the evaluate outputs: row 0 = base, row i = after the i-th skill. The one
    builder: the report and register stages, `sdft compare`, the demo and the bench scripts all read it here
    (in-process runs write the same files through `sdft.sequence.learn_sequence`).

    Stops at the first skill not evaluated yet. R[i][i+1] (a skill just before learning it) comes
    from the next skill's reference scores; entries further ahead are never measured (None).
    """
    learned = []
    for name in params.skills:
        if not params.layout.scores_file(name).exists():
            break
        learned.append(name)
    cols = learned + list(params.probes)
    base_scores = read_json(params.layout.scores_file(BASE), BASE)["scores"]
    evals = [read_json(params.layout.scores_file(s), f"evaluate@{s}") for s in learned]
    rows = [{c: base_scores.get(c) for c in cols}]
    rows += [{c: e["scores"].get(c) for c in cols} for e in evals]
    for i, e in enumerate(evals):  # the parent row's score on the skill it was about to learn
        rows[i][learned[i]] = e["reference"]["scores"][learned[i]]
    # The trainer's own time (train stage's metrics), so pipeline and in-process runs compare alike.
    seconds = sum(read_json(f, f"train@{s}")["train_seconds"]
                  for s in learned if (f := params.layout.train_metrics(s)).exists())
    return AccuracyMatrix(label, learned, list(params.probes), rows, seconds)


def register(params: Params, skill: str) -> dict:
    from . import registry

    verdict = read_json(params.layout.verdict_file(skill), f"gate@{skill}")
    scores = read_json(params.layout.scores_file(skill), f"evaluate@{skill}")
    matrix = accuracy_matrix(params).through(skill)
    plot = forgetting_plot(matrix, params.layout.gate_plot(skill))
    result = registry.register(params, skill, params.layout.checkpoint_dir(skill), scores, verdict,
                               [params.layout.gate_report(skill), params.layout.verdict_file(skill), plot],
                               matrix.metrics().as_dict())
    write_json(params.layout.registry_file(skill), result)
    params.layout.gate_marker(skill).write_text(f"{result['gate']}\n")
    return result


def report(params: Params) -> dict:
    """The whole curriculum so far: matrix.md, metrics.json (DVC metrics), forgetting.png (DVC plot)."""
    matrix = accuracy_matrix(params)
    cl = matrix.metrics().as_dict()
    layout = params.layout
    layout.report_dir().mkdir(parents=True, exist_ok=True)
    verdicts = {s: read_json(layout.verdict_file(s), f"gate@{s}")["passed"] for s in matrix.skills}
    metrics = {**cl, "skills_learned": len(matrix.skills), "gates_passed": sum(verdicts.values()),
               "final": {c: matrix.rows[-1][c] for c in matrix.columns()}}
    write_json(layout.metrics_file(), metrics)
    table = matrix_markdown(matrix)
    gates = "\n".join(f"- {s}: {'pass' if ok else 'FAIL'} ({layout.gate_report(s)})" for s, ok in verdicts.items())
    layout.report_file().write_text(
        f"# Continual-learning report\n\nAccuracy (%), rows = after learning that skill:\n\n{table}\n\n"
        f"ACC {pct(cl['acc'])} · BWT {pct(cl['bwt'])} · forgetting {pct(cl['forgetting'])}\n\nGates:\n{gates}\n",
        encoding="utf-8")
    forgetting_plot(matrix, layout.report_plot())
    return metrics
