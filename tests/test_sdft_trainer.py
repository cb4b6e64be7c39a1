"""The SDFT objective, checked against an independent computation on a tiny local model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import fact_records, sampled_ratios, short_sdft_run
from sdft.params import PAPER_TEACHER_TEMPLATE
from sdft.recipes import sdft as sdft_recipe
from sdft.train import train_skill


def make_trainer(params, tiny_model_dir, records, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    return sdft_recipe.build_trainer(params, params.skill("facts"), records, model, tok, tmp_path / "trainer"), tok


def independent_loss(model_dir, tok, records, completions, skip: int, power: float = 0.0) -> torch.Tensor:
    """KL(teacher(prompt + demonstration) || student(prompt)) per completion token, first `skip` tokens
    dropped, averaged per sequence then over the batch. At step 0 the EMA teacher *is* the student.
    With `power` p > 0 the per-sequence average is weighted by KL**p (sdft.disagreement_power)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    losses = []
    for rec, completion in zip(records, completions):
        student_text = tok.apply_chat_template([{"role": "user", "content": rec["prompt"]}], add_generation_prompt=True, tokenize=False)
        teacher_user = (
            f"{rec['prompt']}\n\nThis is an example for a response to the question:\n{rec['demonstration']}\n\n"
            "Now answer with a response of your own, including the thinking process."
        )
        teacher_text = tok.apply_chat_template([{"role": "user", "content": teacher_user}], add_generation_prompt=True, tokenize=False)
        per_token = []
        logps = []
        for text in (student_text, teacher_text):
            ids = tok(text, add_special_tokens=False)["input_ids"] + completion
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            n = len(completion)
            logps.append(F.log_softmax(logits[len(ids) - n - 1 : len(ids) - 1], dim=-1))
        student, teacher = logps
        per_token = (teacher.exp() * (teacher - student)).sum(-1)
        kl = per_token[skip:]
        weights = kl**power
        losses.append((weights * kl).sum() / weights.sum())
    return torch.stack(losses).mean()


def test_loss_equals_forward_kl_teacher_sees_demonstration_student_does_not(params, tiny_model_dir, tmp_path):
    assert params.sdft.teacher_template == PAPER_TEACHER_TEMPLATE
    records = fact_records(2)
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    # A fixed rollout (two lengths, so padding and masks matter) replaces sampling.
    completions = [tok("The answer is BLUE", add_special_tokens=False)["input_ids"],
                   tok("Quillmark is the capital city of Zorbia", add_special_tokens=False)["input_ids"]]
    trainer._generate = lambda prompt_ids: (prompt_ids, [list(c) for c in completions])
    rows = [dict(trainer.train_dataset[i]) for i in range(2)]
    batch = trainer._prepare_training_batch(rows)

    for i, rec in enumerate(records):
        student_in = tok.decode(batch["prompt_ids"][i], skip_special_tokens=True)
        teacher_in = tok.decode(batch["teacher_input_ids"][i], skip_special_tokens=True)
        assert rec["demonstration"] in teacher_in and "This is an example for a response" in teacher_in
        assert rec["demonstration"] not in student_in and rec["prompt"] in student_in

    trainer.model.eval()
    loss = trainer.compute_loss(trainer.model, batch)
    expected = independent_loss(tiny_model_dir, tok, records, completions, skip=3)
    assert expected > 1e-3  # the check is not vacuous
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)

    # and skipping really changes what is averaged
    assert not torch.isclose(expected, independent_loss(tiny_model_dir, tok, records, completions, skip=0))


def fixed_rollout_batch(trainer, tok):
    """A batch of two fixed rollouts (two lengths, so padding and masks matter) instead of sampled ones."""
    completions = [tok("The answer is BLUE", add_special_tokens=False)["input_ids"],
                   tok("Quillmark is the capital city of Zorbia", add_special_tokens=False)["input_ids"]]
    trainer._generate = lambda prompt_ids: (prompt_ids, [list(c) for c in completions])
    return trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(2)]), completions


def test_disagreement_power_weights_each_token_by_its_divergence(params, tiny_model_dir, tmp_path):
    params.sdft.disagreement_power = 1.0
    records = fact_records(2)
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    batch, completions = fixed_rollout_batch(trainer, tok)
    trainer.model.eval()
    loss = trainer.compute_loss(trainer.model, batch)
    weighted = independent_loss(tiny_model_dir, tok, records, completions, skip=3, power=1.0)
    torch.testing.assert_close(loss, weighted, rtol=1e-5, atol=1e-6)
    # the weighting changes the objective: the plain mean is smaller (the large-KL tokens count for more)
    assert weighted > independent_loss(tiny_model_dir, tok, records, completions, skip=3) + 1e-4


def test_weighted_loss_computes_the_vocabulary_divergence_once_per_step(params, tiny_model_dir, tmp_path, monkeypatch):
    import trl.experimental.sdft.sdft_trainer as trl_sdft

    import sdft.recipes.sdft_trainer as ours

    params.sdft.disagreement_power = 1.0
    trainer, tok = make_trainer(params, tiny_model_dir, fact_records(2), tmp_path)
    batch, _ = fixed_rollout_batch(trainer, tok)
    calls = []
    for module in (ours, trl_sdft):
        real = module.compute_full_logit_self_distillation_loss
        monkeypatch.setattr(module, "compute_full_logit_self_distillation_loss",
                            lambda *a, real=real, **k: calls.append(1) or real(*a, **k))
    loss = trainer.compute_loss(trainer.model, batch)
    assert len(calls) == 1 and loss.requires_grad  # one pass, and the gradient flows through it


def test_generate_from_teacher_samples_with_the_demonstration_and_trains_the_prompt_only_student(
        params, tiny_model_dir, tmp_path):
    params.sdft.generate_from_teacher = True
    records = fact_records(2)
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    seen = []
    trainer._generate = lambda prompt_ids: (seen.extend(prompt_ids), (prompt_ids, [tok("ok")["input_ids"]] * 2))[1]
    batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(2)])
    for i, rec in enumerate(records):
        assert rec["demonstration"] in tok.decode(seen[i], skip_special_tokens=True)  # rollouts see the demonstration
        assert rec["demonstration"] not in tok.decode(batch["prompt_ids"][i], skip_special_tokens=True)


def test_ema_teacher_moves_one_percent_toward_student(params, tiny_model_dir, tmp_path):
    params.train.max_steps = 1
    params.train.learning_rate = 1e-2
    params.train.warmup_ratio = 0.0
    trainer, _ = make_trainer(params, tiny_model_dir, fact_records(4), tmp_path)
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    teacher_before = {k: v.detach().clone() for k, v in trainer.teacher_model.state_dict().items()}
    assert all(torch.equal(before[k], teacher_before[k]) for k in before)  # the teacher starts as the student
    trainer.train()
    student = trainer.model.state_dict()
    teacher = trainer.teacher_model.state_dict()
    moved = 0
    for k, old in before.items():
        torch.testing.assert_close(teacher[k], 0.99 * old + 0.01 * student[k], rtol=0, atol=1e-6)
        moved += int(not torch.equal(student[k], old))
    assert moved > 0  # the student did take a step, so the EMA check has teeth


def test_short_sdft_run_lowers_the_distillation_loss(params, tiny_model_dir, tmp_path):
    metrics = short_sdft_run(params, tiny_model_dir, tmp_path)
    assert metrics["rollout_engine"] == "hf"
    assert (tmp_path / "ckpt" / "model.safetensors").exists()
    assert (tmp_path / "ckpt.train_metrics.json").exists() and not (tmp_path / "ckpt" / "train_metrics.json").exists()
    assert not (tmp_path / "ckpt" / "trainer").exists()  # trainer scratch stays out of the checkpoint


def test_skill_kind_template_goes_to_the_teacher_never_the_student(params, tiny_model_dir, tmp_path):
    params.sdft.teacher_templates = {"format": "{prompt}\n\nRespond exactly like this example:\n{demonstration}"}
    params.skills["facts"].kind = "format"
    records = fact_records(2)
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    trainer._generate = lambda prompt_ids: (prompt_ids, [tok("ok", add_special_tokens=False)["input_ids"]] * 2)
    batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(2)])
    for i, rec in enumerate(records):
        teacher_in = tok.decode(batch["teacher_input_ids"][i], skip_special_tokens=True)
        student_in = tok.decode(batch["prompt_ids"][i], skip_special_tokens=True)
        assert "Respond exactly like this example:" in teacher_in and rec["demonstration"] in teacher_in
        assert "Respond exactly like this example:" not in student_in and rec["demonstration"] not in student_in
        assert "This is an example for a response" not in teacher_in  # the paper template was replaced


def test_eos_truncated_rollouts_are_masked_after_eos(params, tiny_model_dir, tmp_path):
    """Sampling is replaced by a fixed output: row 0 stops at EOS and then holds junk, row 1 hits the length limit."""
    records = fact_records(2)
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    eos, junk = tok.eos_token_id, tok("Zorbia", add_special_tokens=False)["input_ids"][0]
    length = params.train.max_completion_length
    word = tok("The", add_special_tokens=False)["input_ids"][0]
    fixed = torch.tensor([[word, word, eos] + [junk] * (length - 3), [word] * length])

    def fake_generate(input_ids, **kwargs):
        return torch.cat([input_ids, fixed], dim=1)

    trainer.model.generate = fake_generate
    batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(2)])
    assert batch["completion_mask"][0].tolist() == [1, 1, 1] + [0] * (length - 3)  # EOS kept, junk masked
    assert batch["completion_mask"][1].tolist() == [1] * length  # clipped at the limit: all real tokens
    assert batch["completion_ids"][0, :3].tolist() == [word, word, eos]
    assert junk not in batch["completion_ids"][0, 3:].tolist()  # junk after EOS never reaches the loss
    assert batch["raw_completion_lengths"].tolist() == [3, length]


def test_lora_sdft_writes_a_merged_checkpoint_that_loads_as_a_plain_model(params, tiny_model_dir, tmp_path):
    from sdft.data import write_skill

    params.train.lora.enabled = True
    params.train.lora.r = 4
    params.train.max_steps = 2
    data = write_skill(tmp_path / "data", fact_records(4), [], {"skill": "facts"}).out_dir
    metrics = train_skill(params, "facts", data, str(tiny_model_dir), tmp_path / "ckpt")
    assert metrics["steps"] == 2
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files  # adapters merged in
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert set(merged.state_dict()) == set(base.state_dict())
    assert any(not torch.equal(merged.state_dict()[k], base.state_dict()[k]) for k in base.state_dict())


def test_frozen_weights_end_as_the_parents_and_every_other_weight_trains(params, tiny_model_dir, tmp_path):
    """`train.freeze`: the matched parameters (here the tied embeddings and the first layer) are bit-identical to the
    parent's in the checkpoint, every other one moved, and the metrics count what trained."""
    import pytest

    from sdft.data import write_skill
    from sdft.errors import SdftError

    params.train.freeze = [r"^model\.embed_tokens\.", r"^model\.layers\.0\."]
    params.train.max_steps = 2
    data = write_skill(tmp_path / "data", fact_records(4), [], {"skill": "facts"}).out_dir
    metrics = train_skill(params, "facts", data, str(tiny_model_dir), tmp_path / "ckpt")
    base_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base, trained = base_model.state_dict(), AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").state_dict()
    held = {k for k in base if k.startswith(("model.embed_tokens.", "model.layers.0.", "lm_head."))}
    assert "lm_head.weight" in held and any(k.startswith("model.layers.1.") for k in base)  # the test's premise
    assert all(torch.equal(trained[k], base[k]) for k in held)
    assert all(not torch.equal(trained[k], base[k]) for k in set(base) - held)
    assert metrics["trainable_params"] == sum(p.numel() for n, p in base_model.named_parameters()
                                              if not n.startswith(("model.embed_tokens.", "model.layers.0.")))

    params.train.freeze = [r"^lm_head\."]  # tied: named by the embeddings only, so it matches nothing
    with pytest.raises(SdftError, match="matches no parameter") as exc:
        train_skill(params, "facts", data, str(tiny_model_dir), tmp_path / "ckpt2")
    assert "model.embed_tokens.weight" in str(exc.value) and not (tmp_path / "ckpt2").exists()


def test_rollouts_stop_at_the_length_the_demonstrations_call_for(params, tiny_model_dir, tmp_path):
    """`sdft.rollout_length_factor`: the run's rollouts (sampled for real here) are as long as factor x the longest
    demonstration allows, never longer than train.max_completion_length; 0 keeps the fixed cap."""
    import math

    records = fact_records(4)
    params.train.max_completion_length = 40
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    longest = max(len(tok(r["demonstration"], add_special_tokens=False)["input_ids"]) for r in records)
    params.sdft.rollout_length_factor = 0.5
    trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path)
    want = math.ceil(0.5 * longest) + 1
    assert want < 40 and trainer.max_completion_length == want
    batch = trainer._prepare_training_batch([dict(trainer.train_dataset[i]) for i in range(4)])
    assert 0 < batch["completion_ids"].shape[1] <= want  # the teacher and student work is sized to it too
    assert max(batch["raw_completion_lengths"].tolist()) <= want

    params.sdft.rollout_length_factor = 100.0  # the configured cap still bounds it
    assert make_trainer(params, tiny_model_dir, records, tmp_path)[0].max_completion_length == 40
    params.sdft.rollout_length_factor = 0.0
    assert make_trainer(params, tiny_model_dir, records, tmp_path)[0].max_completion_length == 40


def test_min_p_trims_how_rollouts_are_sampled_and_leaves_the_loss_alone(params, tiny_model_dir, tmp_path):
    """sdft.min_p: no rollout token below min_p x the likeliest token's probability (without it, some are), and
    the loss on given rollouts is the same number: the student still matches the teacher's full distribution."""
    records = fact_records(4)
    params.train.max_completion_length = 12
    ratios, losses = {}, {}
    for min_p in (0.0, 0.5):
        params.sdft.min_p = min_p
        trainer, tok = make_trainer(params, tiny_model_dir, records, tmp_path / f"p{min_p}")
        trainer.model.eval()
        rows = [dict(trainer.train_dataset[i]) for i in range(4)]
        torch.manual_seed(0)
        prompt_ids, completions = trainer._generate(trainer._tokenize_prompts([r["prompt"] for r in rows]))
        ratios[min_p] = sampled_ratios(trainer.model, prompt_ids, completions)
        fixed = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
        trainer._generate = lambda ids: (ids, [list(fixed)] * len(ids))
        with torch.no_grad():
            losses[min_p] = trainer.compute_loss(trainer.model, trainer._prepare_training_batch(rows)).item()
    assert min(ratios[0.5]) >= 0.5 - 1e-4
    assert min(ratios[0.0]) < 0.5  # the untrimmed samples do reach below it: the bound above is min_p's doing
    assert losses[0.5] == losses[0.0]
