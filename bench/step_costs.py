"""What one SDFT step costs, phase by phase, next to an SFT step and raw TRL, measured in one run (issue #14).

On the embedded default (params.yaml's model, batch, rollout length; replay off so every row is the new skill's),
each trainer runs `--warmup + --steps` optimizer steps and the table gives medians of the timed steps:
- SDFT (the pipeline's trainer) per rollout engine (transformers, vLLM): rollout generation, weight sync into vLLM,
  teacher forward (EMA teacher; the frozen parent when anchors are on), student forward, divergence, EMA update,
  and the rest of the step (backward, optimizer, batch building);
- SFT (the pipeline's recipe) on the same records and batch;
- raw TRL `SDFTTrainer` with the same config (the paper's loss; no per-row views, weighting or SFT term).
Phases are timed by wrapping the trainer's own methods; nothing else changes. Ratios: SDFT/SFT, ours/raw TRL.

`--per-skill` adds the whole train stage on the first skill as the pipeline runs it (params.yaml as it is, replay
included; `sdft.train.train_skill` after ingest): SDFT against SFT with the same replay, seconds and ratio.

Variants (VARIANTS below, on the last engine): the pipeline's SDFT without its SFT term and token weighting (the
like-for-like row against raw TRL), and with rollouts sized from the demonstrations (`sdft.rollout_length_factor`).

The like-for-like pair (the like-trl variant and raw TRL) runs `--pairs` times in alternating order, its steps
pooled: on a shared 2-core machine the rollout phase alone drifts by more than the 5% bar between two runs.

Usage: OMP_NUM_THREADS=2 python bench/step_costs.py [--steps 5] [--warmup 1] [--engines hf,vllm] [--pairs 3]
       [--per-skill] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdft.data import read_records, validate_records  # noqa: E402
from sdft.ingest import ingest_skill  # noqa: E402
from sdft.models import load_model, load_tokenizer, resolve_model  # noqa: E402
from sdft.prompts import as_model_prompt  # noqa: E402
from sdft.params import add_params_arguments, params_from_args, with_overrides  # noqa: E402
from sdft.recipes import sdft as sdft_recipe  # noqa: E402
from sdft.recipes import sft as sft_recipe  # noqa: E402
from sdft.train import train_skill  # noqa: E402


class Phases(TrainerCallback):
    """Seconds per phase per optimizer step, from wrapped methods; `step` is the whole step."""

    def __init__(self):
        self.steps: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)

    def timed(self, phase: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[phase] += time.perf_counter() - start
        return wrapper

    def on_step_begin(self, args, state, control, **kwargs):
        self.current, self._start = defaultdict(float), time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.current["step"] = time.perf_counter() - self._start
        self.steps.append(dict(self.current))


def instrument(trainer, phases: Phases):
    """Wrap the trainer's phases in `phases`' timers; returns the undo for the module-level divergence (the trainer's
    own wrappers go with it), so a trainer built later is timed once, not through every earlier wrapper."""
    import sdft.recipes.sdft_trainer as ours
    import trl.experimental.sdft.sdft_trainer as trl_sdft

    if hasattr(trainer, "_generate"):
        trainer._generate = phases.timed("rollout", trainer._generate)
    if hasattr(trainer, "engine"):
        trainer.engine.sync = phases.timed("weight sync", trainer.engine.sync)
    if hasattr(trainer, "_forward_logits"):
        forward = trainer._forward_logits

        def routed(model, *args, **kwargs):  # which model is forwarded decides the phase
            phase = "student forward" if model is trainer.model else "teacher forward"
            return phases.timed(phase, forward)(model, *args, **kwargs)
        trainer._forward_logits = routed
    name = "compute_full_logit_self_distillation_loss"
    originals = [(module, getattr(module, name)) for module in (ours, trl_sdft)]
    for module, fn in originals:  # the full-vocabulary divergence, wherever it is called from
        setattr(module, name, phases.timed("divergence", fn))
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ in ("SyncTeacherModelCallback", "PEFTAdapterEMACallback"):
            cb.on_step_end = phases.timed("EMA update", cb.on_step_end)
    trainer.add_callback(phases)
    return lambda: [setattr(module, name, fn) for module, fn in originals]


def timed_steps(trainer, warmup: int) -> list[dict]:
    """Train, timing each phase; the steps after the warm-up."""
    phases = Phases()
    undo = instrument(trainer, phases)
    try:
        trainer.train()
    finally:
        undo()
        if hasattr(trainer, "engine"):
            trainer.engine.close()
    return phases.steps[warmup:]


def summarize(label: str, steps: list[dict]) -> dict:
    keys = sorted({k for s in steps for k in s})
    row = {k: statistics.median(s.get(k, 0.0) for s in steps) for k in keys}
    named = sum(v for k, v in row.items() if k != "step")
    row["rest (backward, optimizer, batch)"] = max(row["step"] - named, 0.0)
    return {"run": label, **row}


def run(label: str, trainer, warmup: int) -> dict:
    return summarize(label, timed_steps(trainer, warmup))


def per_skill(params, work: Path) -> list[dict]:
    """The first skill's whole train stage (model load, replay rows, the parent's anchor answers, every step, the
    checkpoint write), once per method from the same ingested data and base model: what a skill costs in the pipeline."""
    name, spec = next(iter(params.skills.items()))
    data = work / "per-skill-data"
    ingest_skill(params, spec, out_dir=data)
    runs = []
    for method, label in (("sdft", "SDFT"), ("sft", "SFT, same replay")):
        p = with_overrides(params, {"train.method": method}, where=label)
        m = train_skill(p, name, data, p.model.name_or_path, work / f"per-skill-{method}")
        runs.append({"run": f"{label}: {name}", **m})
    return runs


# SDFT variants beside params.yaml's, as overrides on top of it (each one named in the table):
# like-for-like with raw TRL (no SFT term, the paper's plain mean), and rollouts sized from the demonstrations.
VARIANTS = {  # --variants name: (what the table calls it, the overrides)
    "like-trl": ("no SFT term, plain mean = raw TRL's loss", {"sdft.sft_weight": 0.0, "sdft.disagreement_power": 0.0}),
    "rollout-1.5": ("rollouts sized from the data, factor 1.5", {"sdft.rollout_length_factor": 1.5}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--engines", default="hf,vllm")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"SDFT variants run on the last engine, from {list(VARIANTS)} ('' = none)")
    ap.add_argument("--pairs", type=int, default=1, help="runs of the like-trl variant and raw TRL, in alternating "
                    "order, their steps pooled (the like-for-like ratio; also printed pair by pair)")
    ap.add_argument("--per-skill", action="store_true", help="also the first skill's whole train stage, SDFT vs SFT")
    args = ap.parse_args()
    for flag in ("steps", "pairs"):  # 0 would fail later on a missing row, after minutes of model loading
        if getattr(args, flag) < 1:
            ap.error(f"--{flag} must be at least 1: every ratio needs one timed step of each run.")
    from trl.experimental.sdft import SDFTTrainer
    from datasets import Dataset

    total = args.warmup + args.steps
    configured = params_from_args(args)  # as the pipeline runs it: the per-skill rows
    params = with_overrides(configured, {"train.max_steps": total, "replay.prior_fraction": 0.0,
                                         "replay.anchor_fraction": 0.0, "train.save_steps": 0,
                                         "sdft.min_teacher_headroom": 0.0})  # raw TRL has no such check
    skill = next(iter(params.skills.values()))
    path = resolve_model(params.model.name_or_path)
    records = validate_records(read_records(ROOT / skill.path), skill.path, skill.columns)
    records = [r for r in records if r.get("split") != "eval"]
    work = Path(tempfile.mkdtemp(prefix="step-costs-"))
    engines = args.engines.split(",")
    runs = [(f"SDFT ({e})", {"rollout.engine": e}) for e in engines]
    like_trl = None  # (label, overrides): run beside raw TRL in alternating pairs, below
    for name in filter(None, args.variants.split(",")):
        if name not in VARIANTS:
            ap.error(f"--variants: {name!r} is not one of {list(VARIANTS)}")
        title, overrides = VARIANTS[name]
        variant = (f"SDFT ({engines[-1]}), {title}", {"rollout.engine": engines[-1], **overrides})
        if name == "like-trl":
            like_trl = variant
        else:
            runs.append(variant)

    def build_ours(label, overrides, i):
        p = with_overrides(params, overrides, where=label)
        trainer = sdft_recipe.build_trainer(p, skill, records, load_model(path, p.model, for_training=True),
                                            load_tokenizer(path), work / f"sdft-{i}")
        return trainer, trainer.max_completion_length

    def raw_trl(i):
        # Raw TRL: the same SDFTConfig (every knob set as the pipeline sets it), TRL's own trainer and teacher prompt.
        tok = load_tokenizer(path)
        tok.padding_side = "left"
        config = sdft_recipe.build_config(with_overrides(params, {"rollout.engine": "hf"}), skill, work / f"trl-{i}")
        config.max_completion_length = sdft_recipe.rollout_cap(params, records, tok)  # the same rollout length as ours
        # The same chat-rendered student prompt as ours (a plain string would skip the chat template and its system turn).
        trl_rows = [{"prompt": as_model_prompt(r["prompt"], tok), "privileged_context": r["demonstration"]} for r in records]
        trainer = SDFTTrainer(model=load_model(path, params.model, for_training=True), args=config,
                              train_dataset=Dataset.from_list(trl_rows), processing_class=tok)
        return trainer, config.max_completion_length

    rows = []
    for i, (label, overrides) in enumerate(runs):
        trainer, cap = build_ours(label, overrides, i)
        rows.append({**run(label, trainer, args.warmup), "cap": cap})
    tok = load_tokenizer(path)
    sft = sft_recipe.build_trainer(params, skill, records, load_model(path, params.model, for_training=True), tok,
                                   work / "sft")
    rows.append(run("SFT", sft, args.warmup))
    # Like for like: the like-trl variant and raw TRL run in alternating order (AB, BA, ...) --pairs times and their
    # steps are pooled, so the machine's drift over the run (the rollout phase's own noise exceeds the 5% bar) falls
    # on both sides alike.
    pooled: dict[str, list[dict]] = defaultdict(list)
    caps, pair_ratios = {}, []
    contenders = [("raw TRL SDFTTrainer (hf)", raw_trl)]
    if like_trl is not None:
        contenders.insert(0, (like_trl[0], lambda i: build_ours(*like_trl, f"like-{i}")))
    for k in range(args.pairs):
        steps = {}
        for label, build in (contenders if k % 2 == 0 else contenders[::-1]):
            trainer, caps[label] = build(k)
            steps[label] = timed_steps(trainer, args.warmup)
            pooled[label] += steps[label]
        if like_trl is not None:
            ours_s, trl_s = (statistics.median(s["step"] for s in steps[c[0]]) for c in contenders)
            pair_ratios.append(ours_s / trl_s)
    rows += [{**summarize(label, pooled[label]), "cap": caps[label]} for label, _ in contenders]

    phases = ["rollout", "weight sync", "teacher forward", "student forward", "divergence", "EMA update",
              "rest (backward, optimizer, batch)", "step"]
    sft_step = next(r["step"] for r in rows if r["run"] == "SFT")
    trl_step = next(r["step"] for r in rows if r["run"].startswith("raw TRL"))
    print(f"\nOne optimizer step, median of {args.steps} after {args.warmup} warm-up ({args.steps * args.pairs} pooled "
          f"over {args.pairs} alternating runs for the like-for-like pair), seconds "
          f"({params.train.per_device_train_batch_size} prompts, rollout caps in the table):\n")
    print("| run | rollout cap | " + " | ".join(phases) + " | x SFT | x raw TRL |")
    print("|---" * (len(phases) + 4) + "|")
    for r in rows:
        cells = [f"{r[k]:.2f}" if k in r else "-" for k in phases]
        print(f"| {r['run']} | {r.get('cap', '-')} | " + " | ".join(cells)
              + f" | {r['step'] / sft_step:.2f} | {r['step'] / trl_step:.2f} |")
    if pair_ratios:
        print(f"\nLike for like (ours without SFT term and weighting / raw TRL), step medians pair by pair, "
              f"alternating order: {', '.join(f'{r:.2f}' for r in pair_ratios)}; pooled: "
              f"{rows[-2]['step'] / rows[-1]['step']:.2f}")
    if not args.per_skill:
        return
    stage = per_skill(configured, work)
    sft_seconds = stage[-1]["train_seconds"]
    print("\nPer skill, the whole train stage (params.yaml as it is, replay included), seconds:\n")
    print("| run | steps | train stage | rollouts | weight syncs | x SFT |")
    print("|---|---|---|---|---|---|")
    for r in stage:
        print(f"| {r['run']} | {r['steps']} | {r['train_seconds']:.0f} | {r.get('rollout_seconds', '-')} | "
              f"{r.get('weight_sync_seconds', '-')} | {r['train_seconds'] / sft_seconds:.2f} |")


if __name__ == "__main__":
    main()
