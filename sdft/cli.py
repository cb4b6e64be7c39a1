"""`sdft` command line: the stages `dvc.yaml` and the Prefect tasks call, plus promote/rollback/compare.

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

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _params(args, **extra):
    """params.yaml with `--set KEY=VALUE` overrides (and a subcommand's own shortcuts, e.g. --method) applied and
    checked like the file itself."""
    from .outputs import processes, sweep_leftovers
    from .params import params_from_args, with_overrides

    shortcuts = {key.replace("__", "."): value for key, value in extra.items() if value is not None}
    params = params_from_args(args)
    if processes()[0] == 0:  # under `accelerate launch`, one sweeper
        sweep_leftovers(Path(params.artifacts_dir))  # what a killed earlier command left (its owner is gone)
    return with_overrides(params, shortcuts, where="command line")


def cmd_ingest(args) -> None:
    from .ingest import ingest_skill
    from .params import SkillSpec, check_skill_name

    check_skill_name(args.skill, what="--skill")
    params = _params(args)
    known = args.skill in params.skills or args.skill in params.probes
    spec = params.skill(args.skill) if known else SkillSpec(name=args.skill, path=args.path)
    result = ingest_skill(params, spec, source=args.path, out_dir=args.out)
    print(f"ingested {args.skill}: {result.n_train} train, {result.n_eval} eval records -> {result.out_dir} "
          f"(sha256 {result.sha256[:12]})")


def _relaunch_under_accelerate(params) -> None:
    """`train.processes` > 1: this command starts itself again under `accelerate launch` (the same arguments),
    so `dvc repro`, the Prefect flows and a user's shell run data-parallel training without a different command."""
    import shutil

    from .outputs import processes

    if params.train.processes == 1 or processes()[1] > 1:
        return
    launcher = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    how = (["--config_file", params.train.accelerate_config] if params.train.accelerate_config else
           # --multi_gpu picks torchrun's launcher; on a host without GPUs sdft.train runs the ranks over gloo.
           ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"])
    os.execv(launcher, [launcher, "launch", *how, "--num_processes", str(params.train.processes),
                        "-m", "sdft", *sys.argv[1:]])


def cmd_train(args) -> None:
    from .outputs import processes
    from .train import train_skill

    params = _params(args, train__method=args.method, train__max_steps=args.max_steps)
    _relaunch_under_accelerate(params)
    out = args.out or params.layout.checkpoint_dir(args.skill)
    if args.base:  # ad hoc: any starting model, no gate check
        metrics = train_skill(params, args.skill, args.data or params.layout.data_dir(args.skill), args.base, out)
    else:  # the pipeline stage: from the parent's checkpoint, once its gate passed
        from . import stages

        metrics = stages.train(params, args.skill)
    if processes()[0] != 0:  # another rank of `accelerate launch`: the main process reports
        return
    print(f"trained {args.skill} with {metrics['method']}: {metrics['steps']} steps in {metrics['train_seconds']:.0f}s, "
          f"loss {metrics['loss_first']:.4f} -> {metrics['loss_last']:.4f}; checkpoint {out}")


def cmd_evaluate(args) -> None:
    params = _params(args)
    if args.skill:  # the pipeline stage: candidate vs its parent, standard layout
        from . import stages

        result = stages.evaluate(params, args.skill)
        for name, acc in result["scores"].items():
            print(f"{name:24s} {acc:6.1%}")
        return
    if not (args.model and args.out):
        raise SdftError("pass --skill NAME (pipeline stage) or --model M --out DIR (ad hoc).")
    from .evaluate import evaluate_model, write_predictions
    from .layout import SCORES, write_json

    skills = args.skills.split(",") if args.skills else [*params.skills, *params.probes]
    scores = write_predictions(args.out, evaluate_model(params, args.model, skills))
    write_json(Path(args.out) / SCORES, {"model": args.model, "scores": scores})
    for name, acc in scores.items():
        print(f"{name:24s} {acc:6.1%}")


def cmd_base(args) -> None:
    from . import stages

    params = _params(args)
    stages.base(params)
    print(f"base model frozen as {params.layout.checkpoint_dir(stages.BASE)} and scored on the probes")


def cmd_gate(args) -> None:
    from . import stages

    verdict = stages.run_gate(_params(args), args.skill)
    print(verdict.to_markdown())


def cmd_register(args) -> None:
    from . import stages

    print(stages.register(_params(args), args.skill)["message"])


def cmd_report(args) -> None:
    from . import stages

    params = _params(args)
    stages.report(params)
    print(params.layout.report_file().read_text())


def cmd_promote(args) -> None:
    from . import registry

    print(registry.promote(_params(args), args.version, force=args.force))


def cmd_rollback(args) -> None:
    from . import registry

    print(registry.rollback(_params(args), force=args.force))


def cmd_add_skill(args) -> None:
    from .add_skill import NEXT_STEP, add_skill

    name = add_skill(args.params, args.path, args.kind, args.scorer, args.name)
    print(f"added {name!r} to {args.params} as the last skill of the curriculum; next: {NEXT_STEP}")


def cmd_status(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from .status import chain_status

    params = _params(args)
    registry_error = []

    def read_aliases() -> dict:
        from .registry import aliases_quick

        try:
            return aliases_quick(params)
        except SdftError as exc:  # a dead tracking server: the rest of the table still answers
            registry_error.append(str(exc))
            return {}

    status = chain_status(params, Path("."), read_aliases)
    table = Table(title="sdft status")
    for column in ("skill", "data", "DVC", "new-skill score", "gate", "version", "aliases"):
        table.add_column(column)
    for r in status["skills"]:
        table.add_row(r["skill"], r["data"] or "-", r["dvc"], r["score"] or "-", r["gate"] or "-", r["version"] or "-",
                      r["aliases"])
    console = Console(width=None if sys.stdout.isatty() else 160)  # piped: no cell cut to 80 columns
    console.print(table)
    console.print("registry: " + (registry_error[0] if registry_error else
                                  ", ".join(f"{a} = {v or '-'}" for a, v in status["aliases"].items())))
    if status["dvc_error"]:
        console.print(f"dvc status failed: {status['dvc_error']}")
    if status["stale"]:
        console.print("something is stale: `dvc repro` (or `prefect deployment run ...`) brings it up to date")
        raise SystemExit(1)


def cmd_compare(args) -> None:
    from .compare import run_compare

    params = _params(args)
    run_compare(params, args.methods.split(","), args.workdir or params.layout.compare_dir(), args.max_steps)


def build_parser() -> argparse.ArgumentParser:
    from .params import add_params_arguments

    parser = argparse.ArgumentParser(prog="sdft", description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="validate a skill's data and write its train/eval splits")
    p.add_argument("path", help="JSONL, JSON, Parquet, CSV, or a datasets.save_to_disk folder")
    p.add_argument("--skill", required=True, help="skill name (its params.yaml entry supplies columns and scorer)")
    p.add_argument("--out", help="output folder (default: <artifacts_dir>/data/<skill>, sdft/layout.py)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("train", help="teach one skill (SDFT or SFT) and write a checkpoint")
    p.add_argument("--skill", required=True)
    p.add_argument("--base", help="ad hoc: model to start from (default: the parent skill's checkpoint, gate passed)")
    p.add_argument("--data", help="ingested skill folder (default: <artifacts_dir>/data/<skill>)")
    p.add_argument("--out", help="checkpoint folder (default: <artifacts_dir>/checkpoints/<skill>)")
    p.add_argument("--method", choices=["sdft", "sft"], help="override train.method")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on skills' eval splits")
    p.add_argument("--skill", help="pipeline stage: this skill's checkpoint vs its parent, on every skill so far")
    p.add_argument("--model", help="ad hoc: a model dir or id")
    p.add_argument("--skills", help="ad hoc: comma-separated skill names (default: all)")
    p.add_argument("--out", help="ad hoc: folder for predictions and scores.json")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("base", help="pipeline stage: freeze the base model and score it on the probes")
    p.set_defaults(func=cmd_base)

    p = sub.add_parser("gate", help="pipeline stage: the regression gate for one skill")
    p.add_argument("--skill", required=True)
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("register", help="pipeline stage: MLflow run + model version; promote if the gate passed")
    p.add_argument("--skill", required=True)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("report", help="pipeline stage: accuracy matrix, ACC/BWT/forgetting, forgetting plot")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("promote", help="move the `champion` alias to a model version")
    p.add_argument("--version", required=True)
    p.add_argument("--force", action="store_true", help="promote even if the version failed its gate")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="move `champion` back to `previous-champion`")
    p.add_argument("--force", action="store_true", help="roll back even onto a version that failed its gate")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("add-skill", help="validate a skill's file and append it to the curriculum in params.yaml")
    p.add_argument("path", help="the skill's data file (as for `sdft ingest`), relative to the project root")
    p.add_argument("--kind", required=True, help="knowledge | format | procedure (the teacher template)")
    p.add_argument("--scorer", required=True, help="how answers are scored (see sdft/scoring.py)")
    p.add_argument("--name", help="skill name (default: the file's stem)")
    p.set_defaults(func=cmd_add_skill)

    p = sub.add_parser("status", help="where the chain stands: DVC state, scores, gate, version, aliases per skill "
                                      "(exit 1 when something is stale)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("compare", help="learn the curriculum with each method from the same base, side by side")
    p.add_argument("--methods", default="sdft,sft")
    p.add_argument("--workdir", help="default: <artifacts_dir>/compare")
    p.add_argument("--max-steps", type=int, help="override train.max_steps (per skill)")
    p.set_defaults(func=cmd_compare)

    return parser


def _die_with_parent() -> None:
    """Linux: when the process that started this stage dies (a killed `dvc repro`), this one gets SIGTERM
    instead of training on as an orphan. Nothing half-written is kept (outputs are published whole)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        return
    if _orphaned_stage():
        # DVC died before this process could ask for the signal (during interpreter start-up, the fault suite's
        # "dvc repro killed alone"): it is an orphan already, and no signal will come.
        print("error: the `dvc repro` that started this stage is gone; the stage stops.", file=sys.stderr)
        sys.exit(143)


def _orphaned_stage() -> bool:
    """A DVC stage (DVC_STAGE is set) whose parent is now init. DVC itself as PID 1 (`docker run ... dvc repro`)
    is a live parent, not an orphan's foster one."""
    if os.getppid() != 1 or not os.environ.get("DVC_STAGE"):
        return False
    try:
        return b"dvc" not in Path("/proc/1/cmdline").read_bytes()
    except OSError:  # cannot tell: keep running, as before this check existed
        return False


# Commands that never write a DVC output, so `--set` cannot make one disagree with params.yaml.
OUTSIDE_DVC = {"compare", "promote", "rollback", "status", "add-skill"}


def _check_set_allowed(args) -> None:
    if args.set and args.command not in OUTSIDE_DVC and not getattr(args, "out", None):
        raise SdftError(
            f"`--set` with `sdft {args.command}` would write a DVC-tracked output that disagrees with params.yaml "
            "(DVC records params.yaml, not the command line).",
            fix="run the stage with `dvc exp run -S KEY=VALUE` (DVC records the change), or pass `--out` for an "
                "ad hoc run outside the pipeline.")


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a process of its own (a stage), not a call from Python code: first thing, before any
        _die_with_parent()  # import (a DVC killed while this one starts must not leave it training as an orphan)
    args = build_parser().parse_args(argv)
    try:
        _check_set_allowed(args)
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
