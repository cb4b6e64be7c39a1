"""Score a model on skills' eval splits: per-example predictions (JSONL) and accuracy per skill."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import set_seed

from .data import load_split
from .generation import Generator, make_generator
from .models import resolve_model, same_architecture
from .params import Params
from .scoring import get_scorer
from .vllm_engine import VLLMEngine


def score_records(generator: Generator, records: list[dict], scorer: str, max_new_tokens: int) -> tuple[float, list[dict]]:
    return score_answers(generator.generate([r["prompt"] for r in records], max_new_tokens), records, scorer)


def eval_records(params: Params, skill_name: str, split: str = "eval") -> list[dict]:
    """The scorable records (those with an `answer`) of one split; `eval.max_examples` caps them."""
    records = [r for r in load_split(params.layout.data_dir(skill_name), split) if r.get("answer") is not None]
    if params.eval.max_examples > 0:
        records = records[: params.eval.max_examples]
    return records


def score_skills(generator: Generator, params: Params, skills: list[str]) -> dict[str, tuple[float, list[dict]]]:
    """Every skill's eval split in one batched call (the engine schedules them together), scored per skill.
    (lm_eval probes are scored by the harness instead: `evaluate_models`.)"""
    records = {name: eval_records(params, name) for name in skills}
    flat = [r for name in skills for r in records[name]]
    answers = iter(generator.generate([r["prompt"] for r in flat], params.eval.max_new_tokens))
    return {name: score_answers([next(answers) for _ in records[name]], records[name], params.skill(name).scorer)
            for name in skills}


def score_answers(predictions: list[str], records: list[dict], scorer: str) -> tuple[float, list[dict]]:
    score = get_scorer(scorer)
    rows = [
        {"id": r["id"], "prediction": p, "answer": r.get("answer"), "correct": bool(score(p, r.get("answer")))}
        for r, p in zip(records, predictions, strict=True)
    ]
    accuracy = sum(row["correct"] for row in rows) / len(rows) if rows else 0.0
    return round(accuracy, 6), rows


def evaluate_models(params: Params, runs: list[tuple[str, list[str]]]) -> list[dict[str, tuple[float, list[dict]]]]:
    """Several models, each on its skills. Greedy, seeded: the same model and data always give the same scores.

    A vLLM engine is started once: a later checkpoint of the same architecture is swapped into it (an evaluate
    stage scores the candidate and its parent), anything else gets an engine of its own."""
    set_seed(params.train.seed)
    results, generator, served = [], None, None
    for model_name_or_path, skills in runs:
        path = resolve_model(model_name_or_path)
        harness = [s for s in skills if params.skill(s).kind == "lm_eval"]
        generated = [s for s in skills if s not in harness]
        scores = {}
        if generated:
            if isinstance(generator, VLLMEngine) and same_architecture(served, path):
                generator.swap(path)
            else:
                generator = make_generator(params, path)
            served = path
            scores = score_skills(generator, params, generated)
        if harness:
            from .lm_eval_probe import score_lm_eval

            scores.update(score_lm_eval(params, path, harness))
        results.append({s: scores[s] for s in skills})  # in the order asked
    return results


def evaluate_model(params: Params, model_name_or_path: str, skills: list[str]) -> dict[str, tuple[float, list[dict]]]:
    return evaluate_models(params, [(model_name_or_path, skills)])[0]


def write_predictions(out_dir: str | Path, results: dict[str, tuple[float, list[dict]]]) -> dict[str, float]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (_, rows) in results.items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return {name: acc for name, (acc, _) in results.items()}
