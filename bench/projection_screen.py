"""The update kept off the parent's general-input subspace, applied to a finished run: a screen of
`replay.anchor_projection_share` that costs no training (docs/QUALITY.md §27, §28).

For each spec `how:s`, the candidate's change to every decoder linear layer is projected off the leading subspace
(share s of the energy) of the parent's inputs over the anchors, each followed by the parent's greedy answer, as the
trainer measures it (sdft/recipes/projection.py); embeddings and norms keep the candidate's values. `how` says how
the chat template's prefix, the same tokens at the head of every anchor, is counted:
  all   once per anchor, as the trainer does (§27);
  once  once in all, so the share s is spent on what the anchors say, not on the template they share (§28);
  held  its span held exactly, plus the leading share s of the rest (§28).
The greedy answers are written by transformers here (the trainer takes them from its rollout engine: the same
answers up to numerics). Reads a run folder of bench/quality_grid.py; writes the projected checkpoints and
screen.json under <run>/projection_screen/, and prints each spec's scores.

Usage: python bench/projection_screen.py --run artifacts/grid/defaults --skill zorbia_facts --specs all:0.9,once:0.7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from sdft.evaluate import evaluate_models
from sdft.generation import HFGenerator
from sdft.models import load_model, load_tokenizer
from sdft.params import add_params_arguments, params_from_args, with_overrides
from sdft.prompts import render_prompt
from sdft.recipes.projection import input_covariances, linear_layers, off_subspace, top_subspace
from sdft.replay import load_anchors

sys.path.insert(0, str(Path(__file__).parent))  # its sibling below, also when a test loads this file
from parent_interpolation import WEIGHTS, write_from_parent  # noqa: E402  (one checkpoint writer for both)

PREFIX_COUNTS = ("all", "once", "held")


def anchor_sequences(params, model, tokenizer) -> list[list[int]]:
    """Each anchor prompt's tokens followed by the model's greedy answer (stop token kept), as the trainer builds them."""
    prompts = [a["prompt"] for a in load_anchors(params)]
    answers = HFGenerator(model, tokenizer, params.eval.batch_size).greedy_ids(prompts, params.train.max_completion_length)
    return [tokenizer(render_prompt(p, tokenizer), add_special_tokens=False)["input_ids"] + a
            for p, a in zip(prompts, answers, strict=True)]


def common_prefix(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares."""
    n = 0
    while all(len(s) > n for s in sequences) and len({s[n] for s in sequences}) == 1:
        n += 1
    return n


class Subspaces:
    """Each linear layer's input covariance over the sequences, and the part of it one copy of their shared prefix
    gives. A causal model's states on the prefix are the same in every sequence, so one short pass measures it."""

    def __init__(self, model, sequences: list[list[int]]):
        self.count, prefix_len = len(sequences), common_prefix(sequences)
        self.full = input_covariances(model, sequences)
        self.prefix_once = (input_covariances(model, [sequences[0][:prefix_len]]) if prefix_len
                            else {name: torch.zeros_like(c) for name, c in self.full.items()})

    def basis(self, name: str, how: str, share: float) -> torch.Tensor:
        full, prefix_once = self.full[name], self.prefix_once[name]
        if how == "all":
            return top_subspace(full, share)
        if how == "once":
            return top_subspace(full - (self.count - 1) * prefix_once, share)
        if how == "held":
            held = top_subspace(prefix_once, 1 - 1e-6)  # the prefix states' span (their count at most)
            off = torch.eye(len(full), dtype=torch.float64) - held.double() @ held.double().T
            rest = top_subspace(off @ full @ off, share)  # off the span, the prefix's copies add nothing
            return torch.linalg.qr(torch.cat([held, rest], 1).double()).Q.float()
        raise ValueError(f"unknown prefix count {how!r}: one of {PREFIX_COUNTS}")


def projected(parent: dict, candidate: dict, bases: dict[str, torch.Tensor]) -> dict:
    """The candidate's tensors, each named layer's change from the parent taken off its basis: W0 + dW (I - B B^T)."""
    out = dict(candidate)
    for name, basis in bases.items():
        key = f"{name}.weight"
        delta = off_subspace(candidate[key].float() - parent[key].float(), basis)
        out[key] = (parent[key].float() + delta).to(candidate[key].dtype)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--run", required=True, help="a run folder (its artifacts_dir)")
    ap.add_argument("--skill", required=True, help="the skill whose checkpoint is projected against its parent")
    ap.add_argument("--specs", default="all:0.7,all:0.9", help=f"comma-separated how:share, how one of {PREFIX_COUNTS}")
    args = ap.parse_args()
    run = Path(args.run)
    params = with_overrides(params_from_args(args), {"artifacts_dir": str(run)}, where=str(run))
    parent_dir = params.layout.checkpoint_dir(params.parent(args.skill))
    candidate_dir = params.layout.checkpoint_dir(args.skill)
    specs = [(how, float(s)) for how, s in (spec.split(":") for spec in args.specs.split(","))]
    parent = load_model(parent_dir, params.model)
    tokenizer = load_tokenizer(parent_dir, params.model.trust_remote_code)
    subspaces = Subspaces(parent, anchor_sequences(params, parent, tokenizer))
    outs = []
    for how, share in specs:
        bases = {name: subspaces.basis(name, how, share) for name in linear_layers(parent)}
        out = run / "projection_screen" / f"{args.skill}-{how}{share:g}"
        outs.append(write_from_parent(parent_dir, candidate_dir, out, lambda p, c: projected(p, c, bases)))
        dims = sorted(b.shape[1] for b in bases.values())
        print(f"{how} {share:g}: directions held per layer, median {dims[len(dims) // 2]} / max {dims[-1]}", flush=True)
    so_far = params.skills_through(args.skill) + list(params.probes)  # what its evaluate stage scores
    results = evaluate_models(params, [(str(o), so_far) for o in outs])  # one engine, weights swapped in
    rows = [{"prefix": how, "share": share, **{name: acc for name, (acc, _) in r.items()}}
            for (how, share), r in zip(specs, results, strict=True)]
    (run / "projection_screen" / "screen.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
