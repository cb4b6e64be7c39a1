"""Replay and anchoring (issue #12), on the tiny local model: what enters each batch, who teaches it, and
the SFT term, each checked against an independent computation."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import fact_records
from sdft.data import write_skill
from sdft.errors import SdftError
from sdft.params import SkillSpec, with_overrides
from sdft.recipes import sdft as sdft_recipe
from sdft.prompts import as_model_prompt, render_prompt
from sdft.replay import load_anchors, training_rows
from sdft.train import prepare_trainer

ANCHORS = ["Name a colour.", "What is one plus one?", "Say hello.", "Count to three.", "Name a fruit.",
           "What is the opposite of cold?", "Name an animal.", "What day comes after Friday?"]


@pytest.fixture
def two_skills(params, tmp_path):
    """facts_a (learned) and facts_b (being learned), each with a train and an eval split, plus a probe."""
    rows = fact_records(16)
    a_train, a_eval = rows[:6], rows[6:8]
    b_train, b_eval = rows[8:14], rows[14:16]
    params.skills = {
        "facts_a": SkillSpec(name="facts_a", path=str(tmp_path / "a.jsonl"), scorer="contains", after="base"),
        "facts_b": SkillSpec(name="facts_b", path=str(tmp_path / "b.jsonl"), scorer="contains", after="facts_a",
                             kind="format"),
    }
    probe = [{"id": "p0", "prompt": "What is the capital of France?", "demonstration": "Paris.", "answer": "Paris"}]
    for name, (train, evals) in {"facts_a": (a_train, a_eval), "facts_b": (b_train, b_eval)}.items():
        (tmp_path / f"{name[-1]}.jsonl").write_text("".join(json.dumps({**r, "split": "train"}) + "\n" for r in train)
                                                    + "".join(json.dumps({**r, "split": "eval"}) + "\n" for r in evals))
        write_skill(params.layout.data_dir(name), train, evals, {"skill": name})
    (tmp_path / "probe.jsonl").write_text(json.dumps(probe[0]) + "\n")
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text("".join(json.dumps({"id": f"an{i}", "prompt": p}) + "\n" for i, p in enumerate(ANCHORS)))
    params.replay.anchor_prompts = str(anchors)
    params.train.per_device_train_batch_size = 8
    params.train.max_steps = -1
    params.train.num_train_epochs = 2
    return params, {"a_train": a_train, "a_eval": a_eval, "b_train": b_train, "probe": probe}


def test_replay_batches_hold_the_stated_shares_of_earlier_training_prompts_only(two_skills):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    rows, mixed = training_rows(params, "facts_b", data["b_train"])
    assert mixed
    batch = 8
    assert len(rows) % batch == 0
    # epochs count passes over the new skill: 6 records x 2 epochs / 4 new rows a step = 3 steps
    assert len(rows) // batch == 3
    a_train = {r["prompt"] for r in data["a_train"]}
    scored = {r["prompt"] for r in data["a_eval"]} | {r["prompt"] for r in data["probe"]}
    for start in range(0, len(rows), batch):
        step = rows[start:start + batch]
        assert Counter(r["source"] for r in step) == {"new": 4, "prior": 2, "anchor": 2}
        for r in step:
            assert r["prompt"] not in scored
            if r["source"] == "prior":
                assert r["prompt"] in a_train and r["skill"] == "facts_a" and r["kind"] == "knowledge"
            if r["source"] == "anchor":
                assert r["prompt"] in ANCHORS and r["demonstration"] == ""
    news = Counter(r["id"] for r in rows if r["source"] == "new")
    assert set(news) == {r["id"] for r in data["b_train"]} and set(news.values()) == {2}  # each new record twice


def test_several_rollouts_per_prompt_keep_the_shares_in_prompts_and_sample_each_copy(two_skills, tiny_model_dir, tmp_path):
    """`sdft.num_generations: 2`: a step of 8 rows is 4 prompts, each twice in a row (TRL's sampler), in the stated
    shares (2 new, 1 earlier-skill, 1 anchor); epochs still count passes over the new skill's prompts, and every copy
    of a new prompt is sampled (anchors keep the parent's greedy answer)."""
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.sdft.num_generations = 2
    params.replay.anchor_rollouts = "parent_greedy"  # params.yaml's
    trainer, rows = prepare_trainer(params, "facts_b", data["b_train"], str(tiny_model_dir), tmp_path / "trainer")
    assert len(rows) == 6 * 2 // 2 * 4  # 6 prompts x 2 passes / 2 new prompts a step = 6 steps of 4 prompts
    batches = list(trainer.get_train_dataloader())
    assert len(batches) == 6 and {len(b) for b in batches} == {8}
    for batch in batches:
        assert [r["prompt"] for r in batch[::2]] == [r["prompt"] for r in batch[1::2]]  # each prompt twice, in a row
        assert Counter(r["source"] for r in batch[::2]) == {"new": 2, "prior": 1, "anchor": 1}
    assert [r["source"] for b in batches for r in b[::2]] == [r["source"] for r in rows]  # the mixture's own order
    news = Counter(r["id"] for r in rows if r["source"] == "new")
    assert set(news) == {r["id"] for r in data["b_train"]} and set(news.values()) == {2}
    asked = []
    trainer._sample = lambda prompt_ids: (asked.extend(prompt_ids), (prompt_ids, [[5, 6]] * len(prompt_ids)))[1]
    trainer._prepare_training_batch(batches[0])
    assert len(asked) == 4 + 2  # both copies of the 2 new prompts and of the earlier skill's; no anchor

    with pytest.raises(SdftError, match="num_generations"):  # not whole prompts' worth of rollouts: refused, named
        with_overrides(params, {"train.per_device_train_batch_size": 7})


def test_prior_share_is_spread_evenly_over_earlier_skills(two_skills, tmp_path):
    params, data = two_skills
    extra = fact_records(20)[16:20]
    params.skills["facts_c"] = SkillSpec(name="facts_c", path="unused", scorer="contains", after="facts_b")
    write_skill(params.layout.data_dir("facts_c"), extra, [], {"skill": "facts_c"})
    params.replay.prior_fraction = 0.5
    rows, _ = training_rows(params, "facts_c", extra)
    counts = Counter(r["skill"] for r in rows if r["source"] == "prior")
    assert set(counts) == {"facts_a", "facts_b"} and counts["facts_a"] == counts["facts_b"]


def test_no_replay_leaves_the_new_skill_alone_and_unordered(two_skills):
    params, data = two_skills
    rows, mixed = training_rows(params, "facts_b", data["b_train"])
    assert not mixed and [r["id"] for r in rows] == [r["id"] for r in data["b_train"]]


def test_knowledge_prompts_are_reworded_pass_by_pass_and_other_kinds_are_not(two_skills, tiny_model_dir, tmp_path):
    """`train.prompt_framings`: pass k over a knowledge skill asks each question in framing k mod n (no extra rows);
    the student sees the reworded question, the teacher the same question with the demonstration."""
    params, data = two_skills
    params.train.prompt_framings = ["{prompt}", "Question: {prompt}"]
    params.train.per_device_train_batch_size = 4  # 6 records x 2 epochs = 3 whole batches
    rows, mixed = training_rows(params, "facts_a", data["a_train"])  # facts_a is a knowledge skill; no replay
    assert mixed and len(rows) == 2 * len(data["a_train"])  # 2 epochs, no more rows than without rewording
    as_written = {r["prompt"]: r["demonstration"] for r in data["a_train"]}
    first, second = rows[:6], rows[6:]
    assert {r["prompt"] for r in first} == set(as_written)
    assert {r["prompt"] for r in second} == {f"Question: {p}" for p in as_written}
    assert all(r["demonstration"] == as_written[r["prompt"].removeprefix("Question: ")] for r in second)

    trainer, tok = _trainer(params, tiny_model_dir, rows, tmp_path, skill="facts_a")
    row = next(r for r in trainer.train_dataset if "Question: " in str(r["prompt"]))
    assert "Question: " in str(row["privileged_context"]) and row["demonstration"] in str(row["privileged_context"])

    rows_b, mixed_b = training_rows(params, "facts_b", data["b_train"])  # a format skill: prompts as written
    assert not mixed_b and [r["prompt"] for r in rows_b] == [r["prompt"] for r in data["b_train"]]


def test_a_framing_without_the_prompt_is_refused(params):
    from sdft.params import with_overrides

    with pytest.raises(SdftError, match="prompt_framings"):
        with_overrides(params, {"train.prompt_framings": ["{prompt}", "Answer briefly."]})


def test_an_anchor_that_is_a_probe_or_skill_question_is_refused(two_skills, tmp_path):
    params, data = two_skills
    with open(params.replay.anchor_prompts, "a") as fh:
        fh.write(json.dumps({"id": "leak", "prompt": data["probe"][0]["prompt"]}) + "\n")
    with pytest.raises(SdftError, match="leak.*also prompts of a skill or probe"):
        load_anchors(params)


def test_bundled_anchors_are_many_and_never_a_probe_or_eval_question():
    from conftest import REPO
    from sdft.params import load_params

    params = load_params(REPO / "params.yaml")
    params.replay.anchor_prompts = str(REPO / params.replay.anchor_prompts)
    for spec in [*params.skills.values(), *params.probes.values()]:
        spec.path = str(REPO / spec.path)
    assert len(load_anchors(params)) >= 100


def _trainer(params, tiny_model_dir, rows, tmp_path, skill="facts_b"):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = sdft_recipe.build_trainer(params, params.skill(skill), rows, model, tok, tmp_path / "trainer", mixed=True)
    return trainer, tok


def test_anchor_teacher_is_the_frozen_parent_and_sees_no_demonstration(two_skills, tiny_model_dir, tmp_path):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    trainer, tok = _trainer(params, tiny_model_dir, rows[:8], tmp_path)
    step = [dict(trainer.train_dataset[i]) for i in range(8)]
    completion = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
    trainer._generate = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
    batch = trainer._prepare_training_batch(step)
    demos = {r["demonstration"] for r in data["b_train"] + data["a_train"]}
    for i, ex in enumerate(step):
        teacher_in = tok.decode(batch["teacher_input_ids"][i], skip_special_tokens=True)
        student_in = tok.decode(batch["prompt_ids"][i], skip_special_tokens=True)
        if ex["source"] == "anchor":  # the prompt alone: exactly the student's input
            assert teacher_in == student_in + "The answer is BLUE" and not any(d in teacher_in for d in demos)
        else:  # the row's own demonstration, through its own skill's template
            assert ex["demonstration"] in teacher_in and ex["demonstration"] not in student_in
    # Move the EMA teacher away from the parent: anchors must still be scored by the parent.
    with torch.no_grad():
        for p in trainer.teacher_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = trainer.model
    logits = trainer._compute_teacher_student_logits(model, trainer.teacher_model, batch)
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    n = batch["completion_ids"].size(1)
    anchors = batch["anchor_mask"]
    assert anchors.sum() == 2
    with torch.no_grad():
        want_parent = parent(input_ids=batch["teacher_input_ids"], attention_mask=batch["teacher_attention_mask"]).logits
        want_ema = trainer.teacher_model(input_ids=batch["teacher_input_ids"],
                                         attention_mask=batch["teacher_attention_mask"]).logits
    want_parent, want_ema = want_parent[:, -n - 1:-1], want_ema[:, -n - 1:-1]
    mask = batch["completion_mask"].bool()
    for i in range(8):
        got = logits.teacher_logits[i][mask[i]]
        want = (want_parent if anchors[i] else want_ema)[i][mask[i]]
        other = (want_ema if anchors[i] else want_parent)[i][mask[i]]
        assert torch.allclose(got, want, atol=1e-4) and not torch.allclose(got, other, atol=1e-3)


def _rows_seen(module) -> tuple[list[int], object]:
    """Batch sizes of every forward through `module` (a hook, removed by the caller)."""
    seen: list[int] = []
    handle = module.register_forward_hook(lambda _m, args, kwargs, _out: seen.append(kwargs["input_ids"].size(0)),
                                          with_kwargs=True)
    return seen, handle


def test_each_row_is_scored_by_one_teacher_only(two_skills, tiny_model_dir, tmp_path):
    """Issue #14: an anchor row's teacher is the parent, so the EMA teacher is not forwarded on it (its logits
    would be discarded), and the SFT term's forward holds only rows with a demonstration. The loss is the one
    a whole-batch EMA teacher with the anchors overwritten gives (fp tolerance)."""
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.sdft.sft_weight, params.replay.anchor_skip_tokens = 0.3, 0
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    trainer, tok = _trainer(params, tiny_model_dir, rows[:8], tmp_path)
    completion = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
    trainer._generate = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
    step = [dict(trainer.train_dataset[i]) for i in range(8)]
    batch = trainer._prepare_training_batch(step)
    anchors = batch["anchor_mask"]
    assert anchors.sum() == 2
    assert batch["sft_input_ids"].size(0) == 6  # the anchors have no demonstration
    with torch.no_grad():
        for p in trainer.teacher_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainer.model.eval()
    (ema, h1), (parent, h2), (student, h3) = (_rows_seen(m) for m in
                                              (trainer.teacher_model, trainer.parent_model, trainer.model))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()
    for h in (h1, h2, h3):
        h.remove()
    assert ema == [6] and parent == [2] and student == [8, 6]  # student: prompt + rollout, then the SFT rows

    # The same loss the long way: every row through the EMA teacher, the anchors' logits then replaced.
    with torch.no_grad():
        full = super(type(trainer), trainer)._compute_teacher_student_logits(trainer.model, trainer.teacher_model, batch)
        n = batch["completion_ids"].size(1)
        full.teacher_logits[anchors] = trainer._forward_logits(
            trainer.parent_model, batch["teacher_input_ids"][anchors], batch["teacher_attention_mask"][anchors], n)
        mask = batch["completion_mask"]
        full.loss_mask = torch.where(anchors.unsqueeze(1), mask, full.loss_mask)  # anchor_skip_tokens: 0
        want = trainer._compute_self_distillation_loss(trainer.model, batch, full).item()
        want += 0.3 * independent_nll(trainer.model, tok, as_records([ex for ex in step if ex["demonstration"]])).item()
    assert loss == pytest.approx(want, rel=1e-4, abs=1e-5)


def _greedy(model, tok, prompt: str, cap: int, stops: list[int]) -> list[int]:
    """transformers' own greedy decoding, through the first stop token (the rest is padding)."""
    enc = tok(render_prompt(prompt, tok), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=cap, do_sample=False, eos_token_id=stops,
                             pad_token_id=tok.pad_token_id)[0, enc["input_ids"].size(1):].tolist()
    ends = [j for j, t in enumerate(out) if t in stops]
    return out[: ends[0] + 1] if ends else out


def test_parent_greedy_anchors_are_distilled_on_the_parents_own_greedy_answer(two_skills, tiny_model_dir, tmp_path):
    """replay.anchor_rollouts: parent_greedy — an anchor's tokens are the parent's greedy answer (generated before any
    update, checked here against transformers' own greedy decoding), its stop token kept where it stopped before the
    cap; only the other rows are sampled."""
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.replay.anchor_rollouts = "parent_greedy"
    params.train.per_device_train_batch_size = 8
    cap, tok = params.train.max_completion_length, AutoTokenizer.from_pretrained(tiny_model_dir)
    # The random tiny model never says EOS: make a token that its answers hold mid-way a second stop token (as
    # chat models list several in generation_config.json), so some answers end before the cap and some do not.
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    answers = [_greedy(parent, tok, as_model_prompt(a, tok), cap, [tok.eos_token_id]) for a in ANCHORS]
    middle = Counter(t for a in answers for t in set(a[1:-1]) - {a[0]})
    parent.generation_config.eos_token_id = [tok.eos_token_id, middle.most_common(1)[0][0]]
    parent.save_pretrained(tmp_path / "parent")
    tok.save_pretrained(tmp_path / "parent")

    trainer, _ = prepare_trainer(params, "facts_b", data["b_train"], str(tmp_path / "parent"), tmp_path / "trainer")
    stops = trainer.eos_token_ids  # where TRL's completion mask ends an answer: both stop tokens
    assert stops == parent.generation_config.eos_token_id
    rows = [dict(trainer.train_dataset[i]) for i in range(len(trainer.train_dataset))]
    key = lambda r: render_prompt(r["prompt"], tok)  # noqa: E731
    wants = {key(r): _greedy(parent, tok, r["prompt"], cap, stops) for r in rows if r["source"] == "anchor"}
    assert all(r["rollout"] == wants[key(r)] for r in rows if r["source"] == "anchor")
    assert {len(w) < cap for w in wants.values()} == {True, False}  # answers that stopped, and answers cut at the cap

    step = rows[:8]
    sampled = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
    asked = []
    trainer._sample = lambda prompt_ids: (asked.extend(prompt_ids), (prompt_ids, [list(sampled)] * len(prompt_ids)))[1]
    batch = trainer._prepare_training_batch(step)
    anchors = batch["anchor_mask"]
    assert anchors.sum() == 2 and len(asked) == 6  # the anchors were not sampled
    for i, ex in enumerate(step):
        got = batch["completion_ids"][i][batch["completion_mask"][i].bool()].tolist()
        assert got == (wants[key(ex)] if anchors[i] else sampled)
        assert anchors[i] or ex["rollout"] == []


def test_sft_anchor_targets_are_the_parents_own_greedy_answers(two_skills, tiny_model_dir, tmp_path):
    params, data = two_skills
    params.train.method = "sft"
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    trainer, rows = prepare_trainer(params, "facts_b", data["b_train"], str(tiny_model_dir), tmp_path / "trainer")
    tok = trainer.processing_class
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    anchors = [(i, r) for i, r in enumerate(rows) if r["source"] == "anchor"]
    assert len(anchors) >= 2
    for i, r in anchors[:2]:
        enc = tok(render_prompt(r["prompt"], tok), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = parent.generate(**enc, max_new_tokens=params.train.max_completion_length, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
        want = tok.decode(out[0, enc["input_ids"].size(1):], skip_special_tokens=True).strip()
        ex = trainer.train_dataset[i]  # the row as trained on (the fixed order keeps it at i): its loss tokens
        target = [t for t in ex["labels"] if t != -100]
        assert want and tok.decode(target, skip_special_tokens=True).strip() == want


def test_anchor_rows_have_their_own_skip_and_the_others_keep_the_papers(two_skills, tiny_model_dir, tmp_path):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.replay.anchor_skip_tokens = 0
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    trainer, tok = _trainer(params, tiny_model_dir, rows[:8], tmp_path)
    completion = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
    trainer._generate = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
    batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(8)])
    mask = trainer._compute_teacher_student_logits(trainer.model, trainer.teacher_model, batch).loss_mask
    anchors, done = batch["anchor_mask"], batch["completion_mask"]
    assert anchors.sum() == 2
    assert torch.equal(mask[anchors], done[anchors])  # every completion token of an anchor is in the loss
    assert (mask[~anchors][:, :3] == 0).all() and torch.equal(mask[~anchors][:, 3:], done[~anchors][:, 3:])


def test_the_parent_stays_frozen_while_the_student_trains(two_skills, tiny_model_dir, tmp_path):
    params, data = two_skills
    params.replay.anchor_fraction = 0.25
    params.train.max_steps = 2
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    trainer, _ = _trainer(params, tiny_model_dir, rows, tmp_path)
    trainer.train()
    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    parent, student = trainer.parent_model.state_dict(), trainer.model.state_dict()
    assert all(torch.equal(parent[k], initial[k]) for k in initial)
    assert any(not torch.equal(student[k], initial[k]) for k in initial)


def test_under_bfloat16_the_parent_runs_in_the_same_autocast_as_the_teacher(two_skills, tiny_model_dir, tmp_path):
    """A parent left outside accelerate's autocast ran anchors in fp32 (twice the memory traffic on a GPU)."""
    params, data = two_skills
    params.model.dtype, params.replay.anchor_fraction = "bfloat16", 0.25
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    trainer, tok = _trainer(params, tiny_model_dir, rows[:8], tmp_path)
    ids = torch.tensor([tok("Say hello.", add_special_tokens=False)["input_ids"]])
    dtypes = {}
    for name in ("teacher_model", "parent_model"):  # inside the model: accelerate casts the outputs back to fp32
        model = getattr(trainer, name)
        layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        hook = layer.register_forward_hook(lambda mod, args, out, name=name: dtypes.__setitem__(name, out.dtype))
        with torch.no_grad():
            model(input_ids=ids)
        hook.remove()
    assert dtypes == {"teacher_model": torch.bfloat16, "parent_model": torch.bfloat16}
    assert {p.dtype for p in trainer.parent_model.parameters()} == {torch.float32}  # weights stay full precision


def as_records(rows: list[dict]) -> list[dict]:
    """Training rows back to {prompt, demonstration} records: a row's prompt is its chat messages."""
    return [{"prompt": ex["prompt"][-1]["content"], "demonstration": ex["demonstration"]} for ex in rows]


def independent_nll(model, tok, records) -> torch.Tensor:
    """Mean -log p(demonstration + EOS | chat-rendered prompt) over every demonstration token of the batch."""
    total, count = independent_nll_sum(model, tok, records)
    return torch.tensor(total / count)


def independent_nll_sum(model, tok, records) -> tuple[float, int]:
    """Sum of -log p(demonstration + EOS | chat-rendered prompt) over the records' demonstration tokens, and their count."""
    total, count = 0.0, 0
    for r in records:
        prompt = tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        d_ids = tok(r["demonstration"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = torch.tensor([p_ids + d_ids])
        with torch.no_grad():
            logp = F.log_softmax(model(ids).logits[0].float(), dim=-1)
        for j, t in enumerate(d_ids):
            total -= logp[len(p_ids) + j - 1, t].item()
            count += 1
    return total, count


def test_sft_weight_adds_exactly_lambda_times_the_demonstration_nll(params, tiny_model_dir, tmp_path):
    records = fact_records(3)
    params.sdft.sft_weight = 0.0
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)

    def loss_with(weight: float) -> float:
        params.sdft.sft_weight = weight
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        trainer = sdft_recipe.build_trainer(params, params.skill("facts"), records, model, tok, tmp_path / f"t{weight}")
        completion = tok("Quillmark is the capital", add_special_tokens=False)["input_ids"]
        trainer._generate = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
        batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(3)])
        trainer.model.eval()  # no dropout; the loss itself is the same function in train mode
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, batch).item()

    base, weighted = loss_with(0.0), loss_with(0.3)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    # the dataset rows follow TRL's shuffle-free column order: the same three records
    nll = independent_nll(model, tok, records).item()
    assert nll > 0.1
    assert weighted - base == pytest.approx(0.3 * nll, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("new_weight", [0.0, 0.1])
def test_replayed_rows_take_their_own_sft_weight(two_skills, tiny_model_dir, tmp_path, new_weight):
    """replay.prior_sft_weight: each demonstration token's NLL weighted by its row's lambda (new rows
    sdft.sft_weight, replayed rows their own), over all the batch's demonstration tokens; checked against an
    independent sum. A lambda of 0 keeps its rows out of the SFT forward, not out of the token count."""
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    rows, _ = training_rows(params, "facts_b", data["b_train"])

    def loss_with(new: float, prior: float | None):
        params.sdft.sft_weight, params.replay.prior_sft_weight = new, prior
        trainer, tok = _trainer(params, tiny_model_dir, rows[:8], tmp_path / f"{new}-{prior}")
        completion = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
        trainer._generate = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
        step = [dict(trainer.train_dataset[i]) for i in range(8)]
        batch = trainer._prepare_training_batch(step)
        trainer.model.eval()
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, batch).item(), batch, step, tok

    base, *_ = loss_with(0.0, None)
    loss, batch, step, tok = loss_with(new_weight, 0.5)
    assert batch["sft_input_ids"].size(0) == (6 if new_weight else 2)  # 4 new + 2 prior rows; anchors have none
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    (new_sum, new_n), (prior_sum, prior_n) = (
        independent_nll_sum(model, tok, as_records([ex for ex in step if ex["source"] == source]))
        for source in ("new", "prior"))
    assert prior_n > 0 and new_n > 0
    want = (new_weight * new_sum + 0.5 * prior_sum) / (new_n + prior_n)
    assert loss - base == pytest.approx(want, rel=1e-4, abs=1e-5)
    # null: the replayed rows take sdft.sft_weight (the term as before this setting existed)
    same, *_ = loss_with(0.5, None)
    both, *_ = loss_with(0.5, 0.5)
    assert same == pytest.approx(both, rel=1e-6)


def test_a_teacher_prompt_longer_than_the_limit_is_refused_not_cut(params, tiny_model_dir, tmp_path):
    records = fact_records(2)
    records[1] = {**records[1], "demonstration": "Quillmark. " * 200}
    params.train.max_prompt_length = 64
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(SdftError, match="over train.max_prompt_length = 64.*cut its start off") as exc:
        sdft_recipe.build_trainer(params, params.skill("facts"), records, model, tok, tmp_path / "t")
    assert "raise `train.max_prompt_length` to at least" in str(exc.value)
