"""Learning-quality grid: SDFT settings and SFT, each learning the same skills from the same base.

Every setting is a set of params.yaml overrides (dotted keys, applied and checked by `sdft.params.with_overrides`). Each run learns the chosen skills in
sequence and is scored on held-out eval splits; one markdown table row per setting is printed
(and appended to --out as JSON lines, so a long grid can be read while it runs).

Usage: python bench/quality_grid.py [--skills a,b] [--settings name,name] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from sdft.evaluate import eval_records, score_records
from sdft.generation import make_generator
from sdft.params import Params, load_params, only_skills, with_overrides
from sdft.sequence import learn_sequence

CTX_FIRST = "{demonstration}\n\n{prompt}"  # the demonstration as context, no style instruction
SAME_FORMAT = "{prompt}\n\nHere is an example of a correct response:\n{demonstration}\n\nNow respond to the request in exactly the same format."

# name -> overrides. `sdft.teacher_template` applies to every kind unless `sdft.teacher_templates` says otherwise.
SETTINGS: dict[str, dict] = {
    "sft": {"train.method": "sft"},
    "sft-lr1e-4": {"train.method": "sft", "train.learning_rate": 1e-4},
    "sdft-paper": {"sdft.teacher_templates": {}},
    "sdft-ctx": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}},
    "sdft-ctx-lr1e-4": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "train.learning_rate": 1e-4},
    "sdft-ctx-lr2e-4": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "train.learning_rate": 2e-4},
    "sdft-ctx-4ep": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "train.num_train_epochs": 4},
    "sdft-ctx-len32": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "train.max_completion_length": 32},
    "sdft-ctx-base-teacher": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "sdft.teacher_model_kind": "base"},
    "sdft-ctx-reverse-kl": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "sdft.distillation_alpha": 1.0},
    "sdft-ctx-topk": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "sdft.distillation_mode": "topk_logits"},
    "sdft-ctx-lora": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {}, "train.lora.enabled": True,
                      "train.learning_rate": 1e-3},
    # params.yaml as committed (per-kind templates, 3 epochs), stronger updates:
    "sdft-lr5e-4": {"train.learning_rate": 5e-4},
    "sft-lr5e-4": {"train.method": "sft", "train.learning_rate": 5e-4},
    "sdft-lr5e-4-len32": {"train.learning_rate": 5e-4, "train.max_completion_length": 32},
    "sdft-lr5e-4-base-teacher": {"train.learning_rate": 5e-4, "sdft.teacher_model_kind": "base"},
    "sdft-lr5e-4-reverse-kl": {"train.learning_rate": 5e-4, "sdft.distillation_alpha": 1.0},
    "sdft-lr5e-4-6ep": {"train.learning_rate": 5e-4, "train.num_train_epochs": 6},
    "sdft-teacher-rollouts": {"sdft.generate_from_teacher": True},
    "sdft-lr5e-4-teacher-rollouts": {"sdft.generate_from_teacher": True, "train.learning_rate": 5e-4},
    "sdft-lr5e-4-topk": {"train.learning_rate": 5e-4, "sdft.distillation_mode": "topk_logits"},
    "sdft-lora-lr2e-3": {"train.lora.enabled": True, "train.learning_rate": 2e-3},
    "sft-lora-lr2e-3": {"train.method": "sft", "train.lora.enabled": True, "train.learning_rate": 2e-3},
    "sdft-dis1": {"sdft.disagreement_power": 1.0},
    "sdft-lr5e-4-dis1": {"sdft.disagreement_power": 1.0, "train.learning_rate": 5e-4},
    "sdft-lr5e-4-dis2": {"sdft.disagreement_power": 2.0, "train.learning_rate": 5e-4},
    "sdft-lr5e-4-teacher-rollouts-dis1": {"sdft.generate_from_teacher": True, "sdft.disagreement_power": 1.0,
                                          "train.learning_rate": 5e-4},
    "sdft-lr5e-4-teacher-rollouts-dis2": {"sdft.generate_from_teacher": True, "sdft.disagreement_power": 2.0,
                                          "train.learning_rate": 5e-4},
    "sft-lr2e-4": {"train.method": "sft", "train.learning_rate": 2e-4},
    "sft-lr3e-4": {"train.method": "sft", "train.learning_rate": 3e-4},
    "sdft-lr2e-4-6ep-teacher-rollouts-dis1": {"sdft.generate_from_teacher": True, "sdft.disagreement_power": 1.0,
                                              "train.learning_rate": 2e-4, "train.num_train_epochs": 6},
    "sft-lr2e-4-6ep": {"train.method": "sft", "train.learning_rate": 2e-4, "train.num_train_epochs": 6},
    # Replay (session 4, whole curriculum; params.yaml as committed underneath):
    "sdft-replay": {"replay.prior_fraction": 0.25, "replay.anchor_fraction": 0.125, "sdft.sft_weight": 0.1},
    "sdft-replay-anchor2": {"replay.prior_fraction": 0.25, "replay.anchor_fraction": 0.25, "sdft.sft_weight": 0.1},
    "sft-replay": {"train.method": "sft", "replay.prior_fraction": 0.25, "replay.anchor_fraction": 0.125},
    # Session 5, params.yaml (prior 0.25, anchor 0.25, sft_weight 0.1) underneath: more anchoring, a stronger SFT term.
    "sdft-anchor0.5": {"replay.anchor_fraction": 0.5},
    "sdft-sftw0.3": {"sdft.sft_weight": 0.3},
    "sdft-anchor0.5-sftw0.3": {"replay.anchor_fraction": 0.5, "sdft.sft_weight": 0.3},
    "sdft-anchor-noskip": {"replay.anchor_skip_tokens": 0},
    # Session 6: the SFT term trains on the documents as answers ("Poland is a small country in Europe." after
    # "Zorbia is a small island nation."): is it what moves the general answers' style?
    "sdft-sftw0": {"sdft.sft_weight": 0.0},
    # LoRA under the current defaults (teacher-written rollouts, replay): a low-rank update "learns less and
    # forgets less" (Biderman et al. 2024); §6's LoRA run used the paper's student rollouts, which learned nothing.
    "sdft-lora-lr2e-3": {"train.lora.enabled": True, "train.learning_rate": 2e-3},
    # On-policy rollouts (the paper's, student-written) with the SFT term as the facts' signal: RL's Razor says
    # on-policy updates move the model least; §6's student rollouts had no SFT term and learned no fact.
    "sdft-student-rollouts": {"sdft.generate_from_teacher": False},
    "sdft-perkind": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {"format": SAME_FORMAT, "procedure": SAME_FORMAT}},
}


def train_prompt_scores(params: Params, workdir: Path) -> dict[str, float]:
    """Each skill's score on its own *training* prompts, right after it was learned: tells "learned the
    examples but did not generalise" (high here, low held-out) from "learned nothing" (low on both)."""
    run = copy.deepcopy(params)
    run.artifacts_dir = str(workdir)
    scores = {}
    for name, spec in run.skills.items():
        generator = make_generator(run, run.checkpoint_dir(name))
        scores[name], _ = score_records(generator, eval_records(run, name, "train"), spec.scorer, run.eval.max_new_tokens)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--skills", help="comma-separated subset of the curriculum (default: all)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated setting names")
    ap.add_argument("--workdir", default="artifacts/grid")
    ap.add_argument("--out", default="artifacts/grid/results.jsonl")
    args = ap.parse_args()
    params = load_params(args.params)
    if args.skills:
        params = only_skills(params, args.skills.split(","))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print("| setting | " + " | ".join(f"new: {s} (train prompts)" for s in params.skills) + " | "
          + " | ".join(f"final {p}" for p in params.probes) + " | ACC | BWT | train s |", flush=True)
    for name in args.settings.split(","):
        run_params = with_overrides(params, SETTINGS[name], where=f"setting {name}")
        start = time.perf_counter()
        result = learn_sequence(run_params, run_params.train.method, Path(args.workdir) / name)
        wall = round(time.perf_counter() - start)
        s = result.summary()
        seen = train_prompt_scores(run_params, Path(args.workdir) / name)
        row = {"setting": name, **s, "train_prompts": seen, "rows": result.rows, "wall_seconds": wall}
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        bwt = "n/a" if s["bwt"] is None else f"{100 * s['bwt']:.1f}"
        print(f"| {name} | " + " | ".join(f"{100 * v:.0f} ({100 * seen[k]:.0f})" for k, v in s["new_skill"].items()) + " | "
              + " | ".join(f"{100 * v:.0f}" for v in s["general"].values())
              + f" | {100 * s['acc']:.1f} | {bwt} | {s['train_seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
