"""`sdft` command line: the stages `dvc.yaml` and the Prefect tasks call, plus the demo.

Errors caused by input or environment print one line naming the file and the fix, and exit 2;
anything else exits 1 with a one-line cause (set SDFT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from .errors import SdftError

# TRL marks SDFTTrainer experimental and warns on every import; we pin TRL, so the warning is noise.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _params(args):
    from .params import load_params

    return load_params(args.params)


def cmd_ingest(args) -> None:
    from .ingest import ingest_skill
    from .params import SkillSpec

    params = _params(args)
    names = [s.name for s in params.skills]
    spec = params.skill(args.skill) if args.skill in names else SkillSpec(name=args.skill, path=args.path)
    result = ingest_skill(params, spec, source=args.path, out_dir=args.out)
    print(f"ingested {args.skill}: {result.n_train} train, {result.n_eval} eval records -> {result.out_dir} "
          f"(sha256 {result.sha256[:12]})")


def cmd_train(args) -> None:
    from .train import train_skill

    params = _params(args)
    if args.method:
        params.train.method = args.method
    if args.max_steps is not None:
        params.train.max_steps = args.max_steps
    out = args.out or params.checkpoint_dir(args.skill)
    metrics = train_skill(params, args.skill, args.data or params.data_dir(args.skill), args.base or params.model.name_or_path, out)
    print(f"trained {args.skill} with {metrics['method']}: {metrics['steps']} steps in {metrics['train_seconds']:.0f}s, "
          f"loss {metrics['loss_first']:.4f} -> {metrics['loss_last']:.4f}; checkpoint {out}")


def cmd_evaluate(args) -> None:
    from .evaluate import evaluate_model

    params = _params(args)
    skills = args.skills.split(",") if args.skills else [s.name for s in params.skills]
    data_root = Path(params.artifacts_dir) / "data"
    summary = evaluate_model(params, args.model or params.model.name_or_path, skills, data_root, args.out)
    for name, s in summary["scores"].items():
        print(f"{name:24s} {s['accuracy']:6.1%}  (n={s['n']}, {s['scorer']})")
    print(f"wrote {Path(args.out) / 'scores.json'}")


def cmd_demo(args) -> None:
    from .demo import run_demo

    run_demo(_params(args), max_steps=args.max_steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdft", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="validate a skill's data and write its train/eval splits")
    p.add_argument("path", help="JSONL, JSON, Parquet, CSV, or a datasets.save_to_disk folder")
    p.add_argument("--skill", required=True, help="skill name (its params.yaml entry supplies columns and scorer)")
    p.add_argument("--out", help="output folder (default: artifacts/data/<skill>)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("train", help="teach one skill (SDFT or SFT) and write a checkpoint")
    p.add_argument("--skill", required=True)
    p.add_argument("--base", help="model to start from (default: model.name_or_path)")
    p.add_argument("--data", help="ingested skill folder (default: artifacts/data/<skill>)")
    p.add_argument("--out", help="checkpoint folder (default: artifacts/checkpoints/<skill>)")
    p.add_argument("--method", choices=["sdft", "sft"], help="override train.method")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on skills' eval splits")
    p.add_argument("--model", help="model dir or id (default: model.name_or_path)")
    p.add_argument("--skills", help="comma-separated skill names (default: all in params.yaml)")
    p.add_argument("--out", required=True, help="folder for predictions and scores.json")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="the main job on the embedded default model")
    p.add_argument("--max-steps", type=int, help="override the per-skill step count")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SdftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an environment failure: one line, traceback on request
        if os.environ.get("SDFT_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc} (set SDFT_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
