"""EWC toward the parent (`replay.anchor_ewc_weight`), on the tiny local model: the Fisher is the parent's on every
anchor's greedy answer, the loss gains exactly lambda * sum F (theta - parent)^2, and training under it keeps the
weights the anchors depend on nearer the parent. Each checked against an independent computation."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sdft.recipes import sdft as sdft_recipe
from sdft.replay import training_rows
from sdft.train import prepare_trainer
from test_replay import two_skills  # noqa: F401  (fixture)


def _ewc_params(two_skills, weight: float):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.replay.anchor_rollouts = "parent_greedy"
    params.replay.anchor_ewc_weight = weight
    return params, data


def independent_fisher(model_dir, tok, sequences) -> dict[str, torch.Tensor]:
    """Mean over (prompt, answer) pairs of the squared gradient of log p(answer | prompt), each pair on its own,
    normalised to mean 1 over all weights."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for prompt, answer in sequences:
        model.zero_grad()
        ids = torch.tensor([prompt + answer])
        logp = torch.log_softmax(model(ids).logits[0], -1)
        sum(logp[len(prompt) + j - 1, t] for j, t in enumerate(answer)).backward()
        for n, p in model.named_parameters():
            total[n] += p.grad ** 2
    mean = sum(t.sum() for t in total.values()) / sum(t.numel() for t in total.values())
    return {n: t / mean for n, t in total.items()}


def test_fisher_is_the_parents_on_every_anchors_greedy_answer_and_the_loss_adds_lambda_f_delta_squared(
        two_skills, tiny_model_dir, tmp_path):
    params, data = _ewc_params(two_skills, 0.7)
    trainer, _ = prepare_trainer(params, "facts_b", data["b_train"], str(tiny_model_dir), tmp_path / "t")
    tok = trainer.processing_class
    rows = [dict(trainer.train_dataset[i]) for i in range(len(trainer.train_dataset))]
    distinct = {repr(r["prompt"]): r for r in rows if r["source"] == "anchor"}
    assert len(distinct) == 6  # every anchor the run draws (3 steps x 2), each once, not only the first step's
    sequences = [(trainer._tokenize_prompts([r["prompt"]])[0], r["rollout"]) for r in distinct.values()]
    want = independent_fisher(tiny_model_dir, tok, sequences)
    got = trainer.ewc_fisher
    assert set(got) == set(want)
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-3, atol=1e-6), name
    assert torch.cat([f.flatten() for f in got.values()]).mean().item() == pytest.approx(1.0, rel=1e-5)

    # Move the student off the parent; the loss grows by exactly lambda * sum F (theta - parent)^2.
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1e-2 * torch.randn_like(p))
    completion = tok("The answer is BLUE", add_special_tokens=False)["input_ids"]
    trainer._sample = lambda prompt_ids: (prompt_ids, [list(completion)] * len(prompt_ids))
    batch = trainer._prepare_training_batch(rows[:8])
    trainer.model.eval()
    with torch.no_grad():
        with_ewc = trainer.compute_loss(trainer.model, batch).item()
        trainer.ewc_weight = 0.0
        without = trainer.compute_loss(trainer.model, batch).item()
    penalty = sum((want[n] * (p.detach() - parent[n]) ** 2).sum().item() for n, p in trainer.model.named_parameters())
    assert penalty > 0
    assert with_ewc - without == pytest.approx(0.7 * penalty, rel=1e-4)


def _train(params, data, tiny_model_dir, folder, weight: float):
    params.replay.anchor_ewc_weight = weight
    params.train.max_steps, params.train.learning_rate = 6, 1e-3
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = sdft_recipe.build_trainer(params, params.skill("facts_b"), rows, model, tok, folder, mixed=True)
    trainer.train()
    return trainer


def test_training_under_ewc_keeps_the_anchors_important_weights_nearer_the_parent(two_skills, tiny_model_dir, tmp_path):
    """Same seed, same rows: with a strong lambda the Fisher-weighted distance to the parent ends far smaller than
    without, and the student still moves (the penalty pulls toward the parent, it does not freeze)."""
    params, data = _ewc_params(two_skills, 0.0)
    free = _train(params, data, tiny_model_dir, tmp_path / "free", 0.0)
    held = _train(params, data, tiny_model_dir, tmp_path / "held", 100.0)
    fisher, parent = held.ewc_fisher, AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()

    def distance(model, weight=None):
        return sum(((weight[n] if weight else 1.0) * (p.detach() - parent[n]) ** 2).sum().item()
                   for n, p in model.named_parameters())

    assert distance(held.model, fisher) < 0.5 * distance(free.model, fisher)
    assert distance(held.model) > 0
    logged = [row["ewc_penalty"] for row in held.state.log_history if "ewc_penalty" in row]
    assert len(logged) == 6 and logged[0] == 0.0 and logged[-1] > 0  # measured before each step's update
