"""bench/projection_screen.py: the post-hoc projection of a finished run's update (docs/QUALITY.md §27-§28), on the
tiny local model. Each way of counting the anchors' shared prefix is checked against an independent SVD of the layer
inputs rebuilt by hand; the projected checkpoint keeps no change on the basis and the candidate's other tensors."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import load_script
from test_projection import first_layer_query_inputs, independent_basis, projector_of
from tiny_model import build_tiny_model

LAYER = "model.layers.0.self_attn.q_proj"
PREFIX = [5, 9, 14, 3, 27, 8]


def sequences() -> list[list[int]]:
    """Anchors as the trainer sees them: one shared prefix (the chat template's head), then each its own tokens."""
    g = torch.Generator().manual_seed(0)
    return [PREFIX + torch.randint(40, 300, (int(n),), generator=g).tolist() for n in (7, 11, 5, 9, 13, 6, 8, 10)]


def test_the_shared_prefix_is_found_and_counted_as_each_variant_says(tiny_model_dir):
    screen = load_script("bench/projection_screen.py")
    seqs = sequences()
    assert screen.common_prefix(seqs) == len(PREFIX)
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    subspaces = screen.Subspaces(parent, seqs)
    per_seq = [first_layer_query_inputs(tiny_model_dir, [s]) for s in seqs]
    prefix_rows, content_rows = per_seq[0][: len(PREFIX)], torch.cat([x[len(PREFIX):] for x in per_seq])
    share = 0.8

    every_row = torch.cat(per_seq)  # "all": the prefix once per anchor, as the trainer counts it
    want = independent_basis(every_row, share)
    assert torch.allclose(projector_of(subspaces.basis(LAYER, "all", share)), projector_of(want), atol=1e-4)

    once = torch.cat([prefix_rows, content_rows])  # "once": the prefix counted a single time
    want_once = independent_basis(once, share)
    got_once = subspaces.basis(LAYER, "once", share)
    assert torch.allclose(projector_of(got_once), projector_of(want_once), atol=1e-4)
    assert not torch.allclose(projector_of(got_once), projector_of(want), atol=1e-2)  # the count matters here

    held = subspaces.basis(LAYER, "held", share).double()  # "held": the prefix's span exactly, then the rest
    torch.testing.assert_close(held.T @ held, torch.eye(held.shape[1], dtype=torch.float64), atol=1e-5, rtol=0)
    residue = prefix_rows.double() - prefix_rows.double() @ held @ held.T
    assert residue.norm() < 1e-4 * prefix_rows.norm()
    assert held.shape[1] < prefix_rows.shape[1] + content_rows.shape[1]


def test_the_projected_checkpoint_keeps_no_change_on_the_basis_and_the_candidates_other_tensors(tmp_path, tiny_model_dir):
    screen = load_script("bench/projection_screen.py")
    parent_dir = build_tiny_model(tmp_path / "parent", seed=0)
    candidate_dir = build_tiny_model(tmp_path / "candidate", seed=1)
    subspaces = screen.Subspaces(AutoModelForCausalLM.from_pretrained(parent_dir), sequences())
    bases = {LAYER: subspaces.basis(LAYER, "once", 0.9)}
    out = screen.write_from_parent(parent_dir, candidate_dir, tmp_path / "projected",
                                   lambda p, c: screen.projected(p, c, bases))

    p, c = load_file(parent_dir / screen.WEIGHTS), load_file(candidate_dir / screen.WEIGHTS)
    got = load_file(out / screen.WEIGHTS)
    key, basis = f"{LAYER}.weight", bases[LAYER].double()
    delta, kept = c[key].double() - p[key].double(), got[key].double() - p[key].double()
    assert (kept @ basis).norm() < 1e-5 * delta.norm()  # nothing left on the basis
    off = torch.eye(len(basis), dtype=torch.float64) - basis @ basis.T
    torch.testing.assert_close(kept, delta @ off, atol=1e-5, rtol=0)  # and the rest of the change untouched
    assert all(torch.equal(got[k], c[k]) for k in c if k != key)
    AutoModelForCausalLM.from_pretrained(out)  # loads as a model
