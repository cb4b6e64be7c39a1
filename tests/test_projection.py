"""The update kept off the parent's general-text subspace (`replay.anchor_projection_share`), on the tiny local model:
the subspace is the leading share of the parent's layer inputs over every anchor's greedy answer, and after training
each linear layer's change from the parent is orthogonal to it. Checked against an independent SVD of those inputs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sdft.recipes import sdft as sdft_recipe
from sdft.recipes.projection import top_subspace
from sdft.replay import training_rows
from test_replay import two_skills  # noqa: F401  (fixture)


def independent_basis(inputs: torch.Tensor, share: float) -> torch.Tensor:
    """Right singular vectors of the stacked inputs, the fewest whose squared singular values hold `share`."""
    _, s, vh = torch.linalg.svd(inputs.double(), full_matrices=False)
    energy = torch.cumsum(s ** 2, 0) / (s ** 2).sum()
    k = int((energy < share).sum()) + 1
    return vh[:k].T


def projector_of(basis: torch.Tensor) -> torch.Tensor:
    return basis.double() @ basis.double().T


def test_top_subspace_holds_the_stated_share_of_the_inputs_energy():
    torch.manual_seed(0)
    inputs = torch.randn(200, 12) * torch.tensor([30.0, 20, 10, 5, 3, 2, 1, 1, 1, 1, 1, 1])
    cov = inputs.double().T @ inputs.double()
    for share in (0.5, 0.9, 0.99):
        got, want = top_subspace(cov, share), independent_basis(inputs, share)
        assert got.shape == want.shape, share
        assert torch.allclose(projector_of(got), projector_of(want), atol=1e-5), share
    assert top_subspace(cov, 0.5).shape[1] < top_subspace(cov, 0.99).shape[1] < 12


def _train(two_skills, tiny_model_dir, folder, share: float):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25
    params.replay.anchor_rollouts = "parent_greedy"
    params.replay.anchor_projection_share = share
    params.train.max_steps, params.train.learning_rate = 6, 1e-3
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = sdft_recipe.build_trainer(params, params.skill("facts_b"), rows, model, tok, folder, mixed=True)
    trainer.train()
    return trainer


def first_layer_query_inputs(model_dir, sequences) -> torch.Tensor:
    """The inputs layer 0's q_proj receives on the parent, rebuilt by hand: the normed token embeddings."""
    parent = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return torch.cat([parent.model.layers[0].input_layernorm(parent.model.embed_tokens(torch.tensor(ids)))
                          for ids in sequences])


def test_each_step_keeps_every_linear_layers_change_off_the_anchors_inputs(two_skills, tiny_model_dir, tmp_path):
    share = 0.9
    held = _train(two_skills, tiny_model_dir, tmp_path / "held", share)
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()

    # The subspace is measured on every distinct anchor of the run (prompt + the parent's greedy answer), once.
    rows = [dict(held.train_dataset[i]) for i in range(len(held.train_dataset))]
    anchors = {repr(r["prompt"]): r for r in rows if r["source"] == "anchor"}
    assert len(anchors) > 2
    sequences = [held._tokenize_prompts([r["prompt"]])[0] + list(r["rollout"]) for r in anchors.values()]
    inputs = first_layer_query_inputs(tiny_model_dir, sequences)
    basis = independent_basis(inputs, share)
    assert 0 < basis.shape[1] < inputs.shape[1]  # a real subspace, not all of the input space
    mine = held.projector.bases["model.layers.0.self_attn.q_proj"]
    assert torch.allclose(projector_of(mine), projector_of(basis), atol=1e-4)
    delta = held.model.model.layers[0].self_attn.q_proj.weight.detach().double() - parent["model.layers.0.self_attn.q_proj.weight"].double()
    assert delta.norm() > 1e-3  # the layer learned
    assert (delta @ basis).norm() < 1e-5 * delta.norm()  # and none of it acts on the anchors' leading inputs

    # Every linear layer of the student and of the EMA teacher (which follows the projected student): off its basis,
    # to float32 rounding of the weights (the teacher moves ~1% as far as the student).
    for model in (held.model, held.teacher_model):
        state = model.state_dict()
        for name, basis in held.projector.bases.items():
            d = state[f"{name}.weight"].double() - parent[f"{name}.weight"].double()
            assert d.norm() > 0, name
            assert (d @ basis.double()).norm() <= 1e-3 * d.norm() + 1e-5, name

    # Against the same run without it, the outputs on the anchors' inputs move far less for the same update size.
    free = _train(two_skills, tiny_model_dir, tmp_path / "free", 0.0)
    free_delta = free.model.model.layers[0].self_attn.q_proj.weight.detach().double() - parent["model.layers.0.self_attn.q_proj.weight"].double()

    def on_anchor_inputs(d):  # share of the change's effect that lands on the anchors' inputs, per unit of size
        return ((inputs.double() @ d.T).norm() / d.norm()).item()

    assert on_anchor_inputs(delta) < 0.5 * on_anchor_inputs(free_delta)


def test_refused_without_anchors_on_the_parents_greedy_path(two_skills, tiny_model_dir, tmp_path):
    params, data = two_skills
    params.replay.prior_fraction, params.replay.anchor_fraction = 0.25, 0.25  # anchors sampled: no fixed answer
    params.replay.anchor_projection_share = 0.9
    rows, _ = training_rows(params, "facts_b", data["b_train"])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="anchor_projection_share needs anchor rows"):
        sdft_recipe.build_trainer(params, params.skill("facts_b"), rows, model, tok, tmp_path / "t", mixed=True)
