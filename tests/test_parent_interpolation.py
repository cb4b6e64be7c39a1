"""bench/parent_interpolation.py: the mixed checkpoint is parent + a * (candidate - parent), tensor by tensor, and
loads as a model (docs/QUALITY.md §21 reads its scores). Tiny models, no evaluation."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from conftest import load_script
from tiny_model import build_tiny_model


def test_mixed_weights_are_the_parent_moved_a_fraction_toward_the_candidate(tmp_path):
    interp = load_script("bench/parent_interpolation.py")
    parent = build_tiny_model(tmp_path / "parent", seed=0)
    candidate = build_tiny_model(tmp_path / "candidate", seed=1)
    p, c = load_file(parent / interp.WEIGHTS), load_file(candidate / interp.WEIGHTS)
    for alpha in (0.0, 0.25, 1.0):
        mixed = load_file(interp.write_mixed(parent, candidate, alpha, tmp_path / f"a{alpha}") / interp.WEIGHTS)
        assert mixed.keys() == c.keys()
        for k in c:
            assert mixed[k].dtype == c[k].dtype
            torch.testing.assert_close(mixed[k].float(), p[k].float() + alpha * (c[k].float() - p[k].float()))
    assert any(not torch.equal(p[k], c[k]) for k in c)  # two different models, so the checks above had work to do

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a0.25")
    key = "model.embed_tokens.weight"
    torch.testing.assert_close(model.state_dict()[key].float(), 0.75 * p[key].float() + 0.25 * c[key].float())


def test_checkpoints_with_different_tensors_are_refused():
    interp = load_script("bench/parent_interpolation.py")
    with pytest.raises(ValueError, match="different tensors"):
        interp.mix({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, 0.5)
