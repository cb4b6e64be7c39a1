"""Learning-quality grid: SDFT settings and SFT, each learning the same skills from the same base.

Every setting is a set of params.yaml overrides in bench/grid_settings.yaml (dotted keys, applied and checked by
`sdft.params.with_overrides`). Each run learns the chosen skills in
sequence and is scored on held-out eval splits; one markdown table row per setting is printed
(and appended to --out as JSON lines, so a long grid can be read while it runs).

Usage: python bench/quality_grid.py [--skills a,b] [--settings name,name] [--settings-file YAML] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from sdft.errors import SdftError
from sdft.evaluate import eval_records, score_records
from sdft.generation import make_generator
from sdft.params import Params, add_params_arguments, only_skills, params_from_args, with_overrides
from sdft.sequence import learn_sequence

SETTINGS_FILE = Path(__file__).with_name("grid_settings.yaml")


class _UniqueKeys(yaml.SafeLoader):
    """A setting named twice would silently run the second definition under the first one's name."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise SdftError(f"{twice} are defined more than once.", where=self.name, fix="rename or remove one.")
        return super().construct_mapping(node, deep=deep)


def load_settings(path: Path = SETTINGS_FILE) -> dict[str, dict]:
    """name -> params.yaml overrides (dotted keys)."""
    loader = _UniqueKeys(path.read_text(encoding="utf-8"))
    loader.name = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def train_prompt_scores(params: Params, workdir: Path) -> dict[str, float]:
    """Each skill's score on its own *training* prompts, right after it was learned: tells "learned the
    examples but did not generalise" (high here, low held-out) from "learned nothing" (low on both)."""
    run = with_overrides(params, {"artifacts_dir": str(workdir)}, where=str(workdir))
    scores = {}
    for name, spec in run.skills.items():
        generator = make_generator(run, run.layout.checkpoint_dir(name))
        scores[name], _ = score_records(generator, eval_records(run, name, "train"), spec.scorer, run.eval.max_new_tokens)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--skills", help="comma-separated subset of the curriculum (default: all)")
    ap.add_argument("--settings", help="comma-separated setting names (default: all in the file)")
    ap.add_argument("--settings-file", type=Path, default=SETTINGS_FILE)
    ap.add_argument("--workdir", default="artifacts/grid")
    ap.add_argument("--out", default="artifacts/grid/results.jsonl")
    args = ap.parse_args()
    params = params_from_args(args)
    if args.skills:
        params = only_skills(params, args.skills.split(","))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print("| setting | " + " | ".join(f"new: {s} (train prompts)" for s in params.skills) + " | "
          + " | ".join(f"final {p}" for p in params.probes) + " | ACC | BWT | train s |", flush=True)
    settings = load_settings(args.settings_file)
    names = args.settings.split(",") if args.settings else list(settings)
    unknown = [n for n in names if n not in settings]
    if unknown:
        raise SdftError(f"unknown settings {unknown}.", where=str(args.settings_file), fix="add them to the file.")
    for name in names:
        run_params = with_overrides(params, settings[name], where=f"setting {name}")
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
