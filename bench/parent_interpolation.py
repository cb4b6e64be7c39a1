"""Weight interpolation toward the parent (WiSE-FT, Wortsman et al. 2022), measured on a finished run.

A retention lever that costs no training: the candidate's update scaled back, parent + a * (candidate - parent),
scored for each a on the skills learned so far and the probes. docs/QUALITY.md §21 has the result (not kept: the
probe does not recover faster than the facts are lost). Reads a run folder written by bench/quality_grid.py or
bench/pareto.py (<run>/checkpoints/<parent> and <run>/checkpoints/<skill>); writes the mixed checkpoints and
interpolation.json under <run>/interpolated/.

Usage: python bench/parent_interpolation.py --run artifacts/grid/defaults --skill zorbia_facts [--alphas 1,0.75,0.5]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file, save_file

from sdft.evaluate import evaluate_models
from sdft.params import add_params_arguments, params_from_args, with_overrides

WEIGHTS = "model.safetensors"


def mix(parent: dict, candidate: dict, alpha: float) -> dict:
    """parent + alpha * (candidate - parent), per tensor, computed in float32 and stored in the candidate's dtype."""
    if parent.keys() != candidate.keys():
        raise ValueError(f"parent and candidate hold different tensors: {sorted(parent.keys() ^ candidate.keys())[:5]}")
    return {k: (parent[k].float() + alpha * (candidate[k].float() - parent[k].float())).to(candidate[k].dtype)
            for k in candidate}


def write_from_parent(parent_dir: Path, candidate_dir: Path, out: Path, combine: Callable[[dict, dict], dict]) -> Path:
    """A loadable checkpoint (the candidate's config and tokenizer) with weights combine(parent's, candidate's);
    kept if already written. bench/projection_screen.py writes its checkpoints with it too."""
    if not (out / WEIGHTS).exists():
        shutil.copytree(candidate_dir, out, dirs_exist_ok=True)
        weights = combine(load_file(parent_dir / WEIGHTS), load_file(candidate_dir / WEIGHTS))
        save_file(weights, out / WEIGHTS, metadata={"format": "pt"})
    return out


def write_mixed(parent_dir: Path, candidate_dir: Path, alpha: float, out: Path) -> Path:
    return write_from_parent(parent_dir, candidate_dir, out, lambda parent, candidate: mix(parent, candidate, alpha))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--run", required=True, help="a run folder (its artifacts_dir)")
    ap.add_argument("--skill", required=True, help="the skill whose checkpoint is mixed with its parent's")
    ap.add_argument("--alphas", default="1,0.75,0.5")
    args = ap.parse_args()
    run = Path(args.run)
    params = with_overrides(params_from_args(args), {"artifacts_dir": str(run)}, where=str(run))
    so_far = params.skills_through(args.skill) + list(params.probes)  # what its evaluate stage scores
    parent = params.layout.checkpoint_dir(params.parent(args.skill))
    candidate = params.layout.checkpoint_dir(args.skill)
    alphas = [float(a) for a in args.alphas.split(",")]
    mixed = [write_mixed(parent, candidate, a, run / "interpolated" / f"{args.skill}-a{a:g}") for a in alphas]
    results = evaluate_models(params, [(str(m), so_far) for m in mixed])  # one engine, weights swapped in
    rows = [{"alpha": a, **{name: acc for name, (acc, _) in r.items()}} for a, r in zip(alphas, results)]
    (run / "interpolated" / "interpolation.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| a | " + " | ".join(so_far) + " |\n|---|" + "---|" * len(so_far))
    for row in rows:
        print(f"| {row['alpha']:g} | " + " | ".join(f"{100 * row[s]:.1f}" for s in so_far) + " |")


if __name__ == "__main__":
    main()
