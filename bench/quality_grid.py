"""Learning-quality grid: SDFT settings and SFT, each learning the same skills from the same base.

Every setting is a set of params.yaml overrides (dotted keys). Each run learns the chosen skills in
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

from sdft.params import Params, load_params
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
    "sdft-perkind": {"sdft.teacher_template": CTX_FIRST, "sdft.teacher_templates": {"format": SAME_FORMAT, "procedure": SAME_FORMAT}},
}


def apply(params: Params, overrides: dict) -> Params:
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *path, leaf = dotted.split(".")
        target = params
        for part in path:
            target = getattr(target, part)
        if not hasattr(target, leaf):
            raise KeyError(dotted)
        setattr(target, leaf, value)
    return params


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
        keep = args.skills.split(",")
        params.skills = {k: v for k, v in params.skills.items() if k in keep}
        previous = "base"
        for spec in params.skills.values():  # re-chain the subset
            spec.after, previous = previous, spec.name
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print("| setting | " + " | ".join(f"new: {s}" for s in params.skills) + " | "
          + " | ".join(f"final {p}" for p in params.probes) + " | ACC | BWT | train s |", flush=True)
    for name in args.settings.split(","):
        run_params = apply(params, SETTINGS[name])
        start = time.perf_counter()
        result = learn_sequence(run_params, run_params.train.method, Path(args.workdir) / name)
        s = result.summary()
        row = {"setting": name, **s, "rows": result.rows, "wall_seconds": round(time.perf_counter() - start)}
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        bwt = "n/a" if s["bwt"] is None else f"{100 * s['bwt']:.1f}"
        print(f"| {name} | " + " | ".join(f"{100 * v:.0f}" for v in s["new_skill"].values()) + " | "
              + " | ".join(f"{100 * v:.0f}" for v in s["general"].values())
              + f" | {100 * s['acc']:.1f} | {bwt} | {s['train_seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
