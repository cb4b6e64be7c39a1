"""Pareto comparison (issue #12): SDFT (params.yaml), SFT, and SFT with the same replay, each at several
learning rates, on the whole bundled curriculum, as the SDFT paper and "RL's Razor" compare methods.

x = mean held-out score on each new skill right after learning it; y = mean retention at the end (final
score on every earlier skill and on the general probe), and beside it the general probe alone at the end: replay
trains on the earlier skills' data, so only the probe shows what the methods keep of what neither trains on (the
paper's "prior capabilities"). Prints the table, writes pareto.png and pareto.json to --workdir and logs both to
MLflow (experiment `sdft-pareto`).

Usage: python bench/pareto.py [--lrs 1e-4,2e-4,4e-4] [--methods sdft,sft,sft-replay] [--skills a,b] [--workdir artifacts/pareto]
(a rerun with other --methods/--lrs into the same workdir adds its points to the same plot; a point measured with
other settings or data, e.g. before params.yaml or a skill file changed, is measured again instead)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from sdft.params import add_params_arguments, only_skills, params_from_args, to_dict, with_overrides
from sdft.sequence import learn_sequence


def variant(params, method: str, lr: float):
    train_method = "sdft" if method == "sdft" else "sft"
    overrides = {"train.learning_rate": lr, "train.method": train_method}  # the params say what runs (its digest too)
    if method == "sft":  # bare SFT: no replay
        overrides.update({"replay.prior_fraction": 0.0, "replay.anchor_fraction": 0.0})
    return with_overrides(params, overrides, where=f"{method} lr {lr}"), train_method


def settings_digest(params) -> str:
    """What a point is measured with: every setting and the bytes of every skill, probe and anchor file. The whole
    curriculum takes hours per method here, so points are gathered over several runs into one pareto.json; one
    measured under other settings must not be plotted as if it were comparable."""
    digest = hashlib.sha256(json.dumps(_set_values(to_dict(params)), sort_keys=True, default=str).encode())
    sources = [spec.path for spec in [*params.skills.values(), *params.probes.values()]] + [params.replay.anchor_prompts]
    for source in map(Path, sources):
        for f in sorted(source.rglob("*")) if source.is_dir() else [source]:
            if f.is_file():
                digest.update(f.as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


# Settings added after points were stored, at the value that keeps the earlier behaviour: left out of the digest at
# that value, so those points stay comparable (null is always left out, e.g. `replay.prior_sft_weight`).
ADDED_LATER_OFF = {"train.freeze": [], "replay.anchor_projection_share": 0.0}


def _set_values(settings, prefix: str = ""):
    """The settings without those left null or at an ADDED_LATER_OFF value."""
    if isinstance(settings, dict):
        return {k: _set_values(v, f"{prefix}{k}.") for k, v in settings.items()
                if v is not None and ADDED_LATER_OFF.get(f"{prefix}{k}", object()) != v}
    return settings


def current(points: list[dict], params) -> tuple[list[dict], list[dict]]:
    """Stored points split into those measured with these settings and data, and the stale rest."""
    fresh, stale = [], []
    for q in points:
        (fresh if q.get("settings") == settings_digest(variant(params, q["method"], q["lr"])[0]) else stale).append(q)
    return fresh, stale


def point(result) -> tuple[float, float]:
    skills, final = result.skills, result.rows[-1]
    new = [result.rows[i + 1][s] for i, s in enumerate(skills)]
    kept = [final[s] for s in skills[:-1]] + [final[p] for p in result.probes]
    return sum(new) / len(new), sum(kept) / len(kept)


def general_at_end(point: dict, probes: list[str]) -> float:
    """Mean score of the probes (never trained on, by either method) after the last skill."""
    final = point["rows"][-1]
    return sum(final[p] for p in probes) / len(probes)


def plot(points: list[dict], probes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    panels = [(lambda p: p["retention"], "retention: earlier skills + general probe (%)"),
              (lambda p: general_at_end(p, probes), "general probe at the end (%)")]
    for ax, (y, label) in zip(axes, panels):
        for method in dict.fromkeys(p["method"] for p in points):
            mine = sorted((p for p in points if p["method"] == method), key=lambda p: p["lr"])
            ax.plot([100 * p["new"] for p in mine], [100 * y(p) for p in mine], "o-", label=method)
            for p in mine:
                ax.annotate(f"{p['lr']:.0e}", (100 * p["new"], 100 * y(p)), fontsize=7)
        ax.set_xlabel("new skills, held-out (%)")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--lrs", default="1e-4,2e-4,4e-4")
    ap.add_argument("--methods", default="sdft,sft,sft-replay")
    ap.add_argument("--skills", help="comma-separated first skills of the curriculum (default: all)")
    ap.add_argument("--workdir", default="artifacts/pareto")
    args = ap.parse_args()
    params = params_from_args(args)
    if args.skills:
        params = only_skills(params, args.skills.split(","))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    done = workdir / "pareto.json"
    points, stale = current(json.loads(done.read_text()) if done.exists() else [], params)  # a rerun continues
    if stale:  # kept aside, not plotted beside points they cannot be compared with
        old = workdir / "pareto_stale.json"
        old.write_text(json.dumps((json.loads(old.read_text()) if old.exists() else []) + stale, indent=2) + "\n")
        done.write_text(json.dumps(points, indent=2) + "\n")
        print(f"{done}: {len(stale)} point(s) measured with other settings or data (params.yaml or a skill file changed "
              f"since) moved to {old}; measuring them again where --methods/--lrs ask for them")
    for method in args.methods.split(","):
        for lr in map(float, args.lrs.split(",")):
            if any(q["method"] == method and q["lr"] == lr for q in points):
                continue
            p, train_method = variant(params, method, lr)
            digest = settings_digest(p)
            result = learn_sequence(p, train_method, workdir / f"{method}-lr{lr:g}-{digest}")
            new, retention = point(result)
            points.append({"method": method, "lr": lr, "new": new, "retention": retention, "settings": digest,
                           "rows": result.rows, "train_seconds": result.train_seconds})
            done.write_text(json.dumps(points, indent=2) + "\n")
    probes = list(params.probes)
    plot(points, probes, workdir / "pareto.png")
    print("| method | lr | new skills held-out (%) | retention (%) | general probe at end (%) | train s |\n"
          "|---|---|---|---|---|---|")
    for p in points:
        print(f"| {p['method']} | {p['lr']:g} | {100 * p['new']:.1f} | {100 * p['retention']:.1f} | "
              f"{100 * general_at_end(p, probes):.1f} | {p['train_seconds']:.0f} |")
    import mlflow

    from sdft.registry import client

    client()  # the project's tracking URI
    mlflow.set_experiment("sdft-pareto")
    with mlflow.start_run(run_name="pareto"):
        mlflow.log_artifact(str(workdir / "pareto.png"))
        mlflow.log_artifact(str(done))


if __name__ == "__main__":
    main()
