"""The `sdft` CLI as a user runs it: ingest -> train -> evaluate, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import fact_records
from sdft.params import to_dict


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sdft", "--params", str(tmp_path / "params.yaml"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def setup(params, tmp_path: Path) -> None:
    for name, rows in {"facts": fact_records(8), "probe": fact_records(4)}.items():
        Path(params.skill(name).path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(to_dict(params)))


def test_ingest_train_evaluate_end_to_end(params, tmp_path):
    setup(params, tmp_path)
    for skill in ("facts", "probe"):
        res = run(tmp_path, "ingest", params.skill(skill).path, "--skill", skill)
        assert res.returncode == 0, res.stderr
    assert "ingested facts: 6 train, 2 eval" in run(tmp_path, "ingest", params.skill("facts").path, "--skill", "facts").stdout

    res = run(tmp_path, "train", "--skill", "facts", "--max-steps", "2")
    assert res.returncode == 2 and "has no gate verdict yet" in res.stderr  # `sdft base` has not run
    assert run(tmp_path, "base").returncode == 0
    res = run(tmp_path, "train", "--skill", "facts", "--max-steps", "2")
    assert res.returncode == 0, res.stderr
    ckpt = Path(params.layout.checkpoint_dir("facts"))
    metrics = json.loads((ckpt.with_name(ckpt.name + ".train_metrics.json")).read_text())
    assert metrics["steps"] == 2 and metrics["method"] == "sdft" and metrics["data_sha256"]

    out = tmp_path / "eval"
    res = run(tmp_path, "evaluate", "--model", str(ckpt), "--skills", "facts,probe", "--out", str(out))
    assert res.returncode == 0, res.stderr
    scores = json.loads((out / "scores.json").read_text())["scores"]
    assert set(scores) == {"facts", "probe"} and all(0 <= v <= 1 for v in scores.values())
    preds = [json.loads(line) for line in (out / "probe.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and {"id", "prediction", "answer", "correct"} <= set(preds[0])


def test_errors_are_one_line_with_exit_code_2(params, tmp_path):
    setup(params, tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q"}\n')
    res = run(tmp_path, "ingest", str(bad), "--skill", "facts")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and str(bad) in res.stderr and "Fix:" in res.stderr
    assert not Path(params.layout.data_dir("facts")).exists()

    res = run(tmp_path, "train", "--skill", "facts", "--base", str(params.model.name_or_path))  # nothing ingested
    assert res.returncode == 2 and "run `sdft ingest`" in res.stderr

    res = run(tmp_path, "evaluate", "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "e"))
    assert res.returncode == 2 and "model directory not found" in res.stderr


COMMANDS = {"ingest", "train", "evaluate", "base", "gate", "register", "report", "promote", "rollback", "compare",
            "status", "add-skill"}


def test_every_subcommand_exists_and_answers_help():
    from sdft.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == COMMANDS
    for command in sorted(COMMANDS):
        res = subprocess.run([sys.executable, "-m", "sdft", command, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and res.stdout.startswith(f"usage: sdft {command}"), (command, res.stderr)


def test_add_skill_appends_after_the_last_skill_keeping_comments_and_refuses_bad_input(tmp_path, tiny_model_dir):
    from conftest import REPO
    from sdft.params import load_params

    original = (REPO / "params.yaml").read_text().replace("embedded:smollm2-135m-instruct", str(tiny_model_dir))
    (tmp_path / "params.yaml").write_text(original)
    (tmp_path / "skills").mkdir()
    good = tmp_path / "skills" / "new_facts.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in fact_records(4)))
    res = run(tmp_path, "add-skill", "skills/new_facts.jsonl", "--kind", "knowledge", "--scorer", "contains")
    assert res.returncode == 0, res.stderr
    assert "added 'new_facts'" in res.stdout and "dvc repro" in res.stdout
    after = (tmp_path / "params.yaml").read_text()
    kept = [line for line in original.splitlines() if line in after.splitlines()]
    assert kept == original.splitlines()  # every original line, comments included, in order
    params = load_params(tmp_path / "params.yaml")
    assert list(params.skills)[-1] == "new_facts" and params.skill("new_facts").after == "zorb_units"
    bad = tmp_path / "skills" / "bad.jsonl"
    bad.write_text('{"prompt": "q"}\n')
    for args, says in ((["skills/bad.jsonl"], "demonstration"),
                       (["skills/new_facts.jsonl"], "already in params.yaml"),
                       (["skills/new_facts.jsonl", "--name", "../x"], "--name"),
                       (["skills/new_facts.jsonl", "--name", "other", "--scorer", "nope"], "scorer")):
        scorer = [] if "--scorer" in args else ["--scorer", "contains"]
        res = run(tmp_path, "add-skill", *args, "--kind", "knowledge", *scorer)
        assert res.returncode == 2 and says in res.stderr, (args, res.stderr)
        assert (tmp_path / "params.yaml").read_text() == after  # untouched


def test_set_overrides_are_checked_like_the_file_and_refused_where_dvc_would_disagree(params, tiny_model_dir, tmp_path):
    from sdft.params import with_overrides

    setup(params, tmp_path)
    assert run(tmp_path, "ingest", params.skill("facts").path, "--skill", "facts").returncode == 0
    adhoc = ["train", "--skill", "facts", "--base", str(tiny_model_dir), "--out", str(tmp_path / "adhoc")]
    res = run(tmp_path, "--set", "train.max_steps=1", "--set", "sdft.sft_weight=0.5", *adhoc)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "adhoc.train_metrics.json").read_text())
    assert metrics["steps"] == 1 and metrics["params"]["sdft"]["sft_weight"] == 0.5
    for bad, says in (("train.learning_rate=fast", "`params.train.learning_rate` is 'fast'"),
                      ("train.learnig_rate=1e-4", "unknown key `train.learnig_rate`"),
                      ("trian.learning_rate=1e-4", "`trian` is not a section"),
                      ("train.learning_rate", "is not KEY=VALUE"),
                      ("replay.prior_fraction=0.9", "replay.prior_fraction")):
        res = run(tmp_path, "--set", bad, *adhoc)
        assert res.returncode == 2 and says in res.stderr, (bad, res.stderr)
    res = run(tmp_path, "--set", "eval.max_new_tokens=4", "evaluate", "--skill", "facts")  # a DVC stage's own output
    assert res.returncode == 2 and "dvc exp run -S" in res.stderr
    # The same function for the bench scripts: a new object, the original untouched.
    changed = with_overrides(params, {"train.learning_rate": 1e-4, "skills.facts.kind": "format"})
    assert (changed.train.learning_rate, changed.skill("facts").kind) == (1e-4, "format")
    assert params.train.learning_rate == 3e-3 and params.skill("facts").kind == "knowledge"


def test_a_stage_whose_dvc_died_before_it_started_knows_it_is_an_orphan(monkeypatch):
    """The parent-death signal cannot cover a DVC killed during the stage's interpreter start-up (the fault suite
    caught it once in CI): a stage adopted by init stops instead of training on. DVC as PID 1 is a real parent."""
    from pathlib import Path

    from sdft import cli

    monkeypatch.setenv("DVC_STAGE", "train@facts")
    monkeypatch.setattr(cli.os, "getppid", lambda: 1)  # what an orphan sees; os itself cannot be made to orphan us
    assert cli._orphaned_stage() is (b"dvc" not in Path("/proc/1/cmdline").read_bytes())
    monkeypatch.delenv("DVC_STAGE")
    assert cli._orphaned_stage() is False  # not a DVC stage: `sdft` under an init system runs normally
    monkeypatch.setenv("DVC_STAGE", "train@facts")
    monkeypatch.setattr(cli.os, "getppid", lambda: 4242)
    assert cli._orphaned_stage() is False
