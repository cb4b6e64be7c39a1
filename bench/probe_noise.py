"""How the general probe was chosen: questions the base model answers right *and keeps* answering right when its
weights are nudged in a random direction by as much as one learned skill moves them (issue #12, item 5).

Why: a question the base model gets right only marginally flips under any update, learned or random, so it
measures noise, not forgetting. Measured at 135M (docs/QUALITY.md §11): a random-direction perturbation of a
trained checkpoint's size (0.4-0.5% of each weight matrix's norm) flipped 2-4 of the 65 greedy-chosen
questions, as many as the gate's 3-point limit allows. Keeping only questions that survive K such
perturbations makes one lost question mean a forgotten answer.

For every candidate (JSONL: id, prompt, answer, demonstration): greedy answer of the base model and of K
perturbed copies (per matrix: theta + eps * ||theta|| * u / ||u||, u Gaussian, seeded), scored like the probe.
Prints each candidate's survival count and writes those right in all K + 1 runs to --out.

Usage: python bench/probe_noise.py CANDIDATES.jsonl [...] --out skills/general_probe.jsonl [--eps 0.005] [--k 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sdft.evaluate import score_records
from sdft.generation import make_generator
from sdft.models import resolve_model
from sdft.params import add_params_arguments, params_from_args


def perturbed_copy(base: Path, out: Path, eps: float, seed: int) -> Path:
    shutil.copytree(base, out)
    weights, g = load_file(base / "model.safetensors"), torch.Generator().manual_seed(seed)
    for name, w in weights.items():
        if w.dim() == 2:  # matrices only: norms and biases are few and scale-sensitive
            u = torch.randn(w.shape, generator=g)
            weights[name] = (w + eps * w.norm() * u / u.norm()).contiguous()
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--eps", type=float, default=0.005, help="perturbation per matrix, relative to its norm")
    ap.add_argument("--k", type=int, default=3, help="perturbed copies")
    add_params_arguments(ap)
    args = ap.parse_args()
    params = params_from_args(args)
    records = [json.loads(line) for path in args.candidates for line in Path(path).read_text().splitlines() if line.strip()]
    scorer, tokens = params.probes["general_probe"].scorer, params.eval.max_new_tokens
    base = Path(resolve_model(params.model.name_or_path))
    survived = {r["id"]: 0 for r in records}
    with tempfile.TemporaryDirectory() as tmp:
        models = [base] + [perturbed_copy(base, Path(tmp) / f"p{s}", args.eps, s) for s in range(args.k)]
        for i, model in enumerate(models):
            acc, rows = score_records(make_generator(params, str(model)), records, scorer, tokens)
            print(f"{'base' if i == 0 else f'perturbed seed {i - 1}'}: {acc:.1%} of {len(records)}", flush=True)
            for row in rows:
                survived[row["id"]] += row["correct"]
    kept = [r for r in records if survived[r["id"]] == len(models)]
    for r in records:
        if survived[r["id"]] < len(models):
            print(f"  dropped {r['id']} ({survived[r['id']]}/{len(models)}): {r['prompt']}")
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    print(f"kept {len(kept)} of {len(records)} -> {args.out}")


if __name__ == "__main__":
    main()
