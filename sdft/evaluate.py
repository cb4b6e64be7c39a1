"""Score a model on skills' eval splits: per-example predictions (JSONL) and accuracy per skill."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import set_seed

from .data import load_split
from .generation import Generator, make_generator
from .models import resolve_model
from .params import Params
from .scoring import get_scorer


def score_records(generator: Generator, records: list[dict], scorer: str, max_new_tokens: int) -> tuple[float, list[dict]]:
    score = get_scorer(scorer)
    predictions = generator.generate([r["prompt"] for r in records], max_new_tokens)
    rows = [
        {"id": r["id"], "prediction": p, "answer": r.get("answer"), "correct": bool(score(p, r.get("answer")))}
        for r, p in zip(records, predictions)
    ]
    accuracy = sum(row["correct"] for row in rows) / len(rows) if rows else 0.0
    return round(accuracy, 6), rows


def eval_records(params: Params, skill_name: str, split: str = "eval") -> list[dict]:
    """The scorable records (those with an `answer`) of one split; `eval.max_examples` caps them."""
    records = [r for r in load_split(params.data_dir(skill_name), split) if r.get("answer") is not None]
    if params.eval.max_examples > 0:
        records = records[: params.eval.max_examples]
    return records


def evaluate_model(params: Params, model_name_or_path: str, skills: list[str]) -> dict[str, tuple[float, list[dict]]]:
    """Greedy, seeded: the same model and data always give the same scores."""
    set_seed(params.train.seed)
    generator = make_generator(params, resolve_model(model_name_or_path))
    return {
        name: score_records(generator, eval_records(params, name), params.skill(name).scorer, params.eval.max_new_tokens)
        for name in skills
    }


def write_predictions(out_dir: str | Path, results: dict[str, tuple[float, list[dict]]]) -> dict[str, float]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (_, rows) in results.items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return {name: acc for name, (acc, _) in results.items()}
