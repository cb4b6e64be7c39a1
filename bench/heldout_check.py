"""Generalisation check (issue #12): params.yaml's defaults, unchanged, on two skills nobody tuned for.

The skills live in bench/heldout_skills/ (a knowledge skill and a format skill, written for this check
and never used to choose a setting). Each method learns them in sequence from the embedded base; the
table gives each skill's held-out score right before and right after it is learned, and the general probe.
Pass: every skill > before + 25 points held-out, general probe down no more than the gate allows (3 points).

Usage: python bench/heldout_check.py [--methods sdft,sft] [--workdir artifacts/heldout]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdft.params import add_params_arguments, params_from_args, with_overrides
from sdft.sequence import learn_sequence

HERE = Path(__file__).parent / "heldout_skills"
SKILLS = {  # replaces params.yaml's curriculum; everything else (the defaults under test) stays
    "kelvara_facts": {"path": str(HERE / "kelvara_facts.jsonl"), "kind": "knowledge", "scorer": "knowledge",
                      "after": "base"},
    "ans_format": {"path": str(HERE / "ans_format.jsonl"), "kind": "format", "scorer": "prefix",
                   "after": "kelvara_facts"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(ap)
    ap.add_argument("--methods", default="sdft,sft")
    ap.add_argument("--workdir", default="artifacts/heldout")
    args = ap.parse_args()
    params = params_from_args(args)
    params = with_overrides(params, {"skills": SKILLS}, where="bench/heldout_check.py")
    rows = []
    for method in args.methods.split(","):
        result = learn_sequence(params, method, Path(args.workdir) / method)
        base = result.rows[0]
        for i, skill in enumerate(result.skills):
            # before = the model it learns from (the base for the first skill), as the gate's reference
            rows.append((method, skill, result.rows[i][skill], result.rows[i + 1][skill]))
        # A skill refused before training (no teacher headroom, sdft/headroom.py) and every one after it: not learned.
        rows += [(method, skill, None, None) for skill in SKILLS if skill not in result.skills]
        for probe in result.probes:
            rows.append((method, probe, base[probe], result.rows[-1][probe]))
    print("\n| method | skill | before (probe: base) | after learning (probe: at the end) | verdict |\n|---|---|---|---|---|")
    for method, name, before, after in rows:
        if after is None:
            print(f"| {method} | {name} | - | - | FAIL (not trained: refused or after a refusal) |")
            continue
        ok = (after - before >= -params.gate.max_general_drop) if name in params.probes else (after > before + 0.25)
        print(f"| {method} | {name} | {100 * before:.1f} | {100 * after:.1f} | {'pass' if ok else 'FAIL'} |")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    (Path(args.workdir) / "heldout.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
