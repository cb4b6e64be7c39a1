"""The SFT baseline trains on the demonstration tokens only."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import fact_records
from sdft.recipes import sft as sft_recipe
from sdft.train import train_skill


def test_sft_masks_prompt_tokens(params, tiny_model_dir, tmp_path):
    params.train.method = "sft"
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    records = fact_records(2)
    trainer = sft_recipe.build_trainer(params, params.skill("facts"), records, model, tok, tmp_path / "t")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for i, rec in enumerate(records):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        trained = ids[labels != -100]
        masked = ids[(labels == -100) & (batch["attention_mask"][i] == 1)]
        assert (labels[labels != -100] == trained).all()
        assert rec["demonstration"] in tok.decode(trained)
        assert rec["prompt"] not in tok.decode(trained)
        assert rec["prompt"] in tok.decode(masked)


def test_sft_run_lowers_cross_entropy(params, tiny_model_dir, tmp_path):
    from sdft.data import write_skill

    params.train.method = "sft"
    params.train.max_steps = 12
    params.train.num_train_epochs = 100
    data = write_skill(tmp_path / "data", fact_records(8), [], {"skill": "facts"}).out_dir
    metrics = train_skill(params, "facts", data, str(tiny_model_dir), tmp_path / "ckpt")
    assert metrics["method"] == "sft"
    assert metrics["loss_last"] < 0.8 * metrics["loss_first"]


def test_learn_sequence_fills_the_matrix_and_counts_trainer_time(params, tmp_path):
    """An in-process run writes the evaluate stage's own files, and its matrix is the one the report stage
    builds from them: `sdft compare`, the demo and the pipeline's report share one builder."""
    import json as _json

    from sdft import stages
    from sdft.params import with_overrides
    from sdft.sequence import learn_sequence

    for name, rows in {"facts": fact_records(6), "probe": fact_records(4)}.items():
        Path(params.skill(name).path).write_text("".join(_json.dumps(r) + "\n" for r in rows))
    result = learn_sequence(params, "sft", tmp_path / "seq", max_steps=1)
    assert len(result.rows) == 2 and set(result.rows[0]) == {"facts", "probe"}
    metrics = _json.loads((tmp_path / "seq/checkpoints/facts.train_metrics.json").read_text())
    assert result.train_seconds == metrics["train_seconds"]
    assert result.summary()["method"] == "sft" and (tmp_path / "seq/sequence.json").exists()

    run = with_overrides(params, {"artifacts_dir": str(tmp_path / "seq")}, where="test")
    for path in run.layout.stage_outputs("evaluate", "facts"):
        assert path.exists(), path  # the same outputs `dvc repro` writes for the evaluate stage
    scores = _json.loads(run.layout.scores_file("facts").read_text())
    assert scores["reference"]["model"] == "base"  # the parent scored on the skill it was about to learn
    assert result.rows[0]["facts"] == scores["reference"]["scores"]["facts"]
    assert result.rows[1] == {c: scores["scores"][c] for c in ["facts", "probe"]}
    # The report stage (what `dvc repro` runs last) reads the very same matrix back
    rebuilt = stages.accuracy_matrix(run, label="sft")
    assert rebuilt.rows == result.rows and rebuilt.train_seconds == result.train_seconds
