"""Skill data: read any supported layout, validate it, split it, hash it, write it atomically.

A skill record is `{id, prompt, demonstration, answer?}`:
- `prompt`: text, or chat messages `[{"role": ..., "content": ...}, ...]` ending with a user turn;
- `demonstration`: the expert response or a document (a list of strings is joined with newlines);
- `answer`: what the scorer compares against (optional; any JSON value);
- `split`: optional `train`/`eval` to pin a record (held-out paraphrases, for instance).

Every problem is reported with the file, the record number and the fix, and nothing is written
unless the whole file is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import SdftError
from .layout import META
from .outputs import publish_dir, staging_dir

FIELDS = ("id", "prompt", "demonstration", "answer", "split")
SUPPORTED = "JSONL (.jsonl), JSON (.json), Parquet (.parquet), CSV (.csv), or a `datasets.save_to_disk` folder"


@dataclass
class IngestResult:
    out_dir: Path
    n_train: int
    n_eval: int
    sha256: str


# ---------------------------------------------------------------- reading


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SdftError(
            f"not UTF-8 (bad byte at offset {exc.start}, line {line}).",
            where=str(path),
            fix="re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`.",
        ) from None


def _read_jsonl(path: Path) -> list[Any]:
    rows = []
    for lineno, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SdftError(
                f"line {lineno} is not valid JSON ({exc.msg}).",
                where=str(path),
                fix="write one JSON object per line.",
            ) from None
    return rows


def _read_json(path: Path) -> list[Any]:
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise SdftError(f"not valid JSON ({exc.msg} at line {exc.lineno}).", where=str(path)) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise SdftError(
            "a JSON skill file must hold a list of records (or {\"data\": [...]}).",
            where=str(path),
            fix="wrap the records in a list, or use JSONL.",
        )
    return data


def _read_csv(path: Path) -> list[Any]:
    return list(csv.DictReader(io.StringIO(_decode(path))))


def _read_parquet(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise SdftError(f"cannot read Parquet ({exc}).", where=str(path)) from None


def _read_hf_folder(path: Path) -> list[Any]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise SdftError(
            f"cannot load the `datasets` folder ({exc}).",
            where=str(path),
            fix="pass a folder written by `Dataset.save_to_disk` (its .arrow files included).",
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    return ds.to_list()


READERS: dict[str, Callable[[Path], list[Any]]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def read_records(path: str | Path, max_file_mb: int = 512) -> list[Any]:
    path = Path(path)
    if not path.exists():
        raise SdftError("skill data not found.", where=str(path), fix="check the skill's `path` in params.yaml.")
    if path.is_dir():
        return _read_hf_folder(path)
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_file_mb:
        raise SdftError(
            f"file is {size_mb:.0f} MiB, over the {max_file_mb} MiB limit.",
            where=str(path),
            fix="split it into several skills, or raise `data.max_file_mb` in params.yaml.",
        )
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SdftError(f"unsupported file type {path.suffix!r}.", where=str(path), fix=f"use {SUPPORTED}.")
    return reader(path)


# ---------------------------------------------------------------- validation


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
    )


def prompt_text(prompt: str | list[dict]) -> str:
    """The prompt as plain text (for length checks, hashing and logs)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt)


def prompt_key(prompt: str | list[dict]) -> str:
    """What makes two prompts "the same question": text, case and spacing aside."""
    return " ".join(prompt_text(prompt).split()).lower()


def _normalize(raw: Any, index: int, columns: dict[str, str], where: str) -> dict[str, Any]:
    rec_where = f"{where}, record {index + 1}"
    if not isinstance(raw, dict):
        raise SdftError(f"is a {type(raw).__name__}, not an object.", where=rec_where, fix="each record must be an object.")
    get = {f: raw.get(columns.get(f, f)) for f in FIELDS}
    for required in ("prompt", "demonstration"):
        value = get[required]
        column = columns.get(required, required)
        if value is None or (isinstance(value, str) and not value.strip()):
            present = ", ".join(sorted(raw)) or "none"
            raise SdftError(
                f"missing or blank `{column}` (columns present: {present}).",
                where=rec_where,
                fix=f"fill `{column}`, or map your column to `{required}` under the skill's `columns:` in params.yaml.",
            )
    prompt = get["prompt"]
    if isinstance(prompt, str) and prompt.lstrip().startswith("[") and columns.get("prompt"):
        # CSV/Parquet exports sometimes store chat messages as a JSON string.
        try:
            prompt = json.loads(prompt)
        except json.JSONDecodeError:
            pass
    if not (isinstance(prompt, str) or _is_messages(prompt)):
        raise SdftError(
            f"`prompt` must be text or a list of {{role, content}} messages, got {type(prompt).__name__}.",
            where=rec_where,
        )
    if isinstance(prompt, list) and prompt[-1]["role"] != "user":
        raise SdftError("chat `prompt` must end with a user message.", where=rec_where)
    demo = get["demonstration"]
    if isinstance(demo, list) and all(isinstance(x, str) for x in demo):
        demo = "\n".join(demo)
    if not isinstance(demo, str) or not demo.strip():
        raise SdftError(
            f"`demonstration` must be non-empty text, got {type(demo).__name__}.",
            where=rec_where,
        )
    split = get["split"]
    if split not in (None, "", "train", "eval"):
        raise SdftError(f"`split` must be 'train' or 'eval', got {split!r}.", where=rec_where)
    record_id = get["id"]
    if record_id is None or record_id == "":
        record_id = hashlib.sha1(json.dumps([prompt, demo], ensure_ascii=False).encode()).hexdigest()[:12]
    record = {"id": str(record_id), "prompt": prompt, "demonstration": demo}
    if get["answer"] is not None:
        record["answer"] = get["answer"]
    if split:
        record["split"] = split
    return record


def validate_records(
    raw_records: list[Any],
    where: str,
    columns: dict[str, str] | None = None,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = 0,
) -> list[dict[str, Any]]:
    if not raw_records:
        raise SdftError("no records (the file is empty).", where=where, fix="add at least one {prompt, demonstration} record.")
    columns = columns or {}
    records = [_normalize(raw, i, columns, where) for i, raw in enumerate(raw_records)]
    seen_ids: dict[str, int] = {}
    seen_prompts: dict[str, int] = {}
    for i, rec in enumerate(records, start=1):
        if rec["id"] in seen_ids:
            raise SdftError(
                f"record {i} repeats id {rec['id']!r} of record {seen_ids[rec['id']]}.",
                where=where,
                fix="give every record a unique id.",
            )
        key = prompt_key(rec["prompt"])
        if key in seen_prompts:
            raise SdftError(
                f"record {i} repeats the prompt of record {seen_prompts[key]}.",
                where=where,
                fix="remove the duplicate (a repeated prompt would also leak between the train and eval splits).",
            )
        seen_ids[rec["id"]] = i
        seen_prompts[key] = i
        if count_tokens is not None and max_tokens > 0:
            n = count_tokens(prompt_text(rec["prompt"]) + "\n" + rec["demonstration"])
            if n > max_tokens:
                raise SdftError(
                    f"record {i} is {n} tokens (prompt + demonstration), over the limit of {max_tokens}.",
                    where=where,
                    fix="shorten or split the record, or raise `data.max_record_tokens` (up to the model context).",
                )
    return records


# ---------------------------------------------------------------- split, hash, write


def split_records(records: list[dict], eval_fraction: float, seed: int, *, train_enabled: bool = True) -> tuple[list, list]:
    """Deterministic split: pinned records go where they say, the rest by a seeded shuffle of ids."""
    if not train_enabled:
        return [], list(records)
    pinned_train = [r for r in records if r.get("split") == "train"]
    pinned_eval = [r for r in records if r.get("split") == "eval"]
    free = sorted((r for r in records if not r.get("split")), key=lambda r: r["id"])
    random.Random(seed).shuffle(free)
    n_eval = 0 if pinned_eval else round(len(free) * eval_fraction)
    train = pinned_train + free[n_eval:]
    evals = pinned_eval + free[:n_eval]
    if not train:
        raise SdftError("the split left no training records.", fix="lower `data.eval_fraction` or add records.")
    return train, evals


def _dumps_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def write_skill(out_dir: Path, train: list[dict], evals: list[dict], meta: dict[str, Any]) -> IngestResult:
    """Write train.jsonl, eval.jsonl and meta.json all at once (temp dir + rename): never half a skill,
    and never over a folder the pipeline did not write (`sdft.outputs`)."""
    train_text, eval_text = _dumps_jsonl(train), _dumps_jsonl(evals)
    digest = hashlib.sha256((train_text + "\0" + eval_text).encode()).hexdigest()
    meta = {**meta, "n_train": len(train), "n_eval": len(evals), "sha256": digest}
    tmp = staging_dir(out_dir)
    try:
        (tmp / "train.jsonl").write_text(train_text, encoding="utf-8")
        (tmp / "eval.jsonl").write_text(eval_text, encoding="utf-8")
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IngestResult(out_dir, len(train), len(evals), digest)


def load_split(skill_dir: str | Path, split: str) -> list[dict]:
    path = Path(skill_dir) / f"{split}.jsonl"
    if not path.exists():
        raise SdftError("ingested skill data not found.", where=str(path), fix="run `sdft ingest` for this skill first.")
    return _read_jsonl(path)


def load_meta(skill_dir: str | Path) -> dict[str, Any]:
    path = Path(skill_dir) / META
    if not path.exists():
        raise SdftError("skill metadata not found.", where=str(path), fix="run `sdft ingest` for this skill first.")
    return json.loads(path.read_text(encoding="utf-8"))
