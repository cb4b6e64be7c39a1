"""Score a model on skills' eval splits: per-example predictions (JSONL) and a summary (JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import set_seed

from .data import load_split
from .generation import Generator, HFGenerator
from .models import load_model, load_tokenizer, resolve_model
from .params import Params
from .scoring import get_scorer

SCORES_FILE = "scores.json"


def score_records(generator: Generator, records: list[dict], scorer: str, max_new_tokens: int) -> tuple[float, list[dict]]:
    score = get_scorer(scorer)
    predictions = generator.generate([r["prompt"] for r in records], max_new_tokens)
    rows = [
        {"id": r["id"], "prediction": p, "answer": r.get("answer"), "correct": bool(score(p, r.get("answer")))}
        for r, p in zip(records, predictions)
    ]
    accuracy = sum(row["correct"] for row in rows) / len(rows) if rows else 0.0
    return accuracy, rows


def eval_records(params: Params, skill_name: str, data_dir: Path) -> list[dict]:
    records = [r for r in load_split(data_dir, "eval") if r.get("answer") is not None]
    if params.eval.max_examples > 0:
        records = records[: params.eval.max_examples]
    return records


def evaluate_model(
    params: Params, model_name_or_path: str, skills: list[str], data_root: str | Path, out_dir: str | Path
) -> dict[str, Any]:
    """Evaluate one model on several skills; writes `<out>/<skill>.predictions.jsonl` and `<out>/scores.json`."""
    set_seed(params.train.seed)
    path = resolve_model(model_name_or_path)
    tokenizer = load_tokenizer(path, params.model.trust_remote_code)
    generator = HFGenerator(load_model(path, params.model), tokenizer, params.eval.batch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores: dict[str, Any] = {}
    for name in skills:
        spec = params.skill(name)
        records = eval_records(params, name, Path(data_root) / name)
        accuracy, rows = score_records(generator, records, spec.scorer, params.eval.max_new_tokens)
        with (out_dir / f"{name}.predictions.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        scores[name] = {"accuracy": round(accuracy, 4), "n": len(rows), "scorer": spec.scorer}
    summary = {"model": model_name_or_path, "scores": scores}
    (out_dir / SCORES_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
