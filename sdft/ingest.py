"""Ingest stage: a skill's raw file in, validated train/eval splits + metadata out (or nothing)."""

from __future__ import annotations

from pathlib import Path

from .data import IngestResult, load_meta, read_records, split_records, validate_records, write_skill
from .models import context_length, resolve_model, token_counter
from .params import Params, SkillSpec


def validated_records(params: Params, spec: SkillSpec, source: str | Path | None = None) -> list[dict]:
    """A skill file's records, checked (format, schema, duplicates, size, token length) or refused with the fix;
    what `sdft ingest` writes and what `sdft add-skill` accepts."""
    source = Path(source or spec.path)
    raw = read_records(source, params.data.max_file_mb)
    model = resolve_model(params.model.name_or_path)
    return validate_records(
        raw,
        where=str(source),
        columns=spec.columns,
        count_tokens=token_counter(model, params.model.trust_remote_code),
        max_tokens=params.data.max_record_tokens or context_length(model),
    )


def ingest_skill(params: Params, spec: SkillSpec, source: str | Path | None = None, out_dir: str | Path | None = None) -> IngestResult:
    if spec.kind == "lm_eval":  # a folder of harness tasks, copied whole (sdft/lm_eval_probe.py)
        from .lm_eval_probe import ingest_lm_eval

        folder = ingest_lm_eval(params, spec, source, out_dir)
        return IngestResult(folder, 0, 0, load_meta(folder)["sha256"])
    source = Path(source or spec.path)
    records = validated_records(params, spec, source)
    train, evals = split_records(records, params.data.eval_fraction, params.data.split_seed, train_enabled=spec.name not in params.probes)
    meta = {"skill": spec.name, "source": str(source), "scorer": spec.scorer, "kind": spec.kind,
            "probe": spec.name in params.probes}
    return write_skill(Path(out_dir or params.layout.data_dir(spec.name)), train, evals, meta)
