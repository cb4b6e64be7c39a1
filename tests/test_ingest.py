"""Ingest: every supported layout reads, every bad input fails with file + record + fix, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED_DATA, fact_records
from sdft.data import load_meta, load_split
from sdft.errors import SdftError
from sdft.ingest import ingest_skill
from sdft.params import SkillSpec


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def spec(path: Path, **kw) -> SkillSpec:
    return SkillSpec(name="s", path=str(path), **kw)


def test_jsonl_roundtrip_split_and_hash_are_deterministic(params, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", fact_records(12))
    r1 = ingest_skill(params, spec(src), out_dir=tmp_path / "o1")
    r2 = ingest_skill(params, spec(src), out_dir=tmp_path / "o2")
    assert (r1.n_train, r1.n_eval) == (9, 3)
    assert r1.sha256 == r2.sha256
    assert load_split(r1.out_dir, "eval") == load_split(r2.out_dir, "eval")
    ids = {r["id"] for r in load_split(r1.out_dir, "train")} | {r["id"] for r in load_split(r1.out_dir, "eval")}
    assert ids == {f"r{i}" for i in range(12)}
    assert load_meta(r1.out_dir)["sha256"] == r1.sha256
    params.data.split_seed = 1
    r3 = ingest_skill(params, spec(src), out_dir=tmp_path / "o3")
    assert r3.sha256 != r1.sha256  # another seed, another split


def test_pinned_split_and_eval_only_skill(params, tmp_path):
    rows = fact_records(6)
    rows[0]["split"] = "eval"
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    res = ingest_skill(params, spec(src), out_dir=tmp_path / "o")
    assert [r["id"] for r in load_split(res.out_dir, "eval")] == ["r0"]
    probe = ingest_skill(params, params.skill("probe"), source=src, out_dir=tmp_path / "p")
    assert (probe.n_train, probe.n_eval) == (0, 6)


def test_json_csv_parquet_and_datasets_folder_with_column_mapping(params, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = fact_records(4)
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "a.csv").write_text(
        "id,prompt,demonstration,answer\n" + "".join(f'{r["id"]},"{r["prompt"]}","{r["demonstration"]}",{r["answer"]}\n' for r in rows),
        encoding="utf-8",
    )
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    digests = {ingest_skill(params, spec(tmp_path / f"a.{ext}"), out_dir=tmp_path / ext).sha256 for ext in ("json", "csv", "parquet")}
    assert len(digests) == 1  # the same records, whatever the container

    # The official SDFT science layout: chat `messages` + `output_text` (schema from shared/ train_data).
    official = datasets.Dataset.from_list(
        [{"messages": [{"role": "system", "content": "Answer in tags."}, {"role": "user", "content": r["prompt"]}],
          "output_text": r["demonstration"]} for r in rows]
    )
    official.save_to_disk(str(tmp_path / "hf"))
    res = ingest_skill(params, spec(tmp_path / "hf", columns={"prompt": "messages", "demonstration": "output_text"}), out_dir=tmp_path / "ho")
    rec = load_split(res.out_dir, "train")[0]
    assert rec["prompt"][0]["role"] == "system" and rec["prompt"][-1]["role"] == "user"
    assert rec["demonstration"] in {r["demonstration"] for r in rows}


BAD_CASES = {
    "empty": (b"", "no records"),
    "malformed": (b'{"prompt": "q", "demonstration": "d"}\n{"prompt": oops}\n', "line 2 is not valid JSON"),
    "missing_field": (b'{"prompt": "q"}\n', "record 1: missing or blank `demonstration`"),
    "blank_field": (b'{"prompt": "   ", "demonstration": "d"}\n', "record 1: missing or blank `prompt`"),
    "wrong_type": (b'{"prompt": 5, "demonstration": "d"}\n', "record 1: `prompt` must be text"),
    "not_object": (b'["q", "d"]\n', "record 1: is a list"),
    "dup_id": (b'{"id": 1, "prompt": "a", "demonstration": "d"}\n{"id": 1, "prompt": "b", "demonstration": "d"}\n', "repeats id"),
    "dup_prompt": (b'{"prompt": "Same?", "demonstration": "d"}\n{"prompt": "same? ", "demonstration": "e"}\n', "repeats the prompt of record 1"),
    "oversize": (json.dumps({"prompt": "word " * 600, "demonstration": "d"}).encode() + b"\n", "over the limit of 512"),
    "not_utf8": ('{"prompt": "caf\u00e9", "demonstration": "d"}\n'.encode("latin-1"), "not UTF-8"),
    "chat_ends_with_assistant": (b'{"prompt": [{"role": "assistant", "content": "x"}], "demonstration": "d"}\n', "must end with a user message"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_and_fix_and_keeps_previous_output(params, tmp_path, case):
    good = write_jsonl(tmp_path / "good.jsonl", fact_records(4))
    out = tmp_path / "out"
    ingest_skill(params, spec(good), out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    content, expected = BAD_CASES[case]
    bad = tmp_path / f"{case}.jsonl"
    bad.write_bytes(content)
    with pytest.raises(SdftError) as info:
        ingest_skill(params, spec(bad), out_dir=out)
    message = str(info.value)
    assert expected in message
    assert str(bad) in message  # names the file
    assert "Fix:" in message or case in {"wrong_type", "chat_ends_with_assistant", "not_object"}
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier ingest is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out-")]  # no temp leftovers


def test_missing_file_and_unsupported_type(params, tmp_path):
    with pytest.raises(SdftError, match="not found.*Fix"):
        ingest_skill(params, spec(tmp_path / "nope.jsonl"), out_dir=tmp_path / "o")
    (tmp_path / "a.txt").write_text("hi")
    with pytest.raises(SdftError, match="unsupported file type"):
        ingest_skill(params, spec(tmp_path / "a.txt"), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_oversize_file_is_refused_before_reading(params, tmp_path):
    params.data.max_file_mb = 0
    src = write_jsonl(tmp_path / "a.jsonl", fact_records(4))
    with pytest.raises(SdftError, match="over the 0 MiB limit"):
        ingest_skill(params, spec(src), out_dir=tmp_path / "o")


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data/sdft-official is absent")
def test_official_tooluse_eval_file_ingests_with_a_column_mapping(params, tmp_path):
    params.data.max_record_tokens = 100_000
    probe = params.skill("probe")
    probe.columns = {"demonstration": "nl_documentation", "answer": "golden_answer"}
    res = ingest_skill(params, probe, source=SHARED_DATA / "tooluse_data_v1" / "eval_data.json", out_dir=tmp_path / "t")
    assert res.n_eval == 68


def test_fast_token_count_equals_the_transformers_tokenizers(tiny_model_dir):
    """`sdft ingest` counts tokens with `tokenizers` alone (no torch import); the count must be the trainer's."""
    from transformers import AutoTokenizer

    from sdft.models import token_counter

    count, tok = token_counter(str(tiny_model_dir)), AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in ["The capital of Zorbia is Quillmark.", "Action: get_weather\nAction Input: {\"city\": \"Paris\"}", "é ü 中"]:
        assert count(text) == len(tok(text, add_special_tokens=False)["input_ids"]) > 0


def test_ingest_imports_neither_torch_nor_transformers(tmp_path, tiny_model_dir):
    import subprocess
    import sys

    import yaml

    from conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name_or_path"] = str(tiny_model_dir)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    code = ("import sys; from sdft.cli import main; rc = main(['ingest', sys.argv[1], '--skill', 'ticket_tags', "
            "'--out', sys.argv[2]]); assert rc == 0; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code, str(REPO / "skills/ticket_tags.jsonl"), str(tmp_path / "out")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
