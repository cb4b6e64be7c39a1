"""Can the model do each skill as its own teacher? Scores the student (prompt only) and the teacher
(prompt + demonstration through the skill kind's teacher template) on every record of each skill.

SDFT can only teach what the teacher does: a skill with no headroom here cannot be learned by SDFT. The train
stage runs the same measurement (sdft/headroom.py) on a skill's training split when `sdft.min_teacher_headroom` > 0.
Usage: python bench/teacher_headroom.py [--params params.yaml] [--limit N]
"""

from __future__ import annotations

import argparse

from sdft.data import read_records, validate_records
from sdft.generation import HFGenerator
from sdft.headroom import measure_headroom
from sdft.models import load_model, load_tokenizer, resolve_model
from sdft.params import load_params
from sdft.prompts import teacher_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--limit", type=int, default=0, help="records per skill (0 = all)")
    args = ap.parse_args()
    params = load_params(args.params)
    path = resolve_model(params.model.name_or_path)
    tokenizer = load_tokenizer(path)
    gen = HFGenerator(load_model(path, params.model), tokenizer, params.eval.batch_size)
    print("| skill | kind | n | student | teacher |\n|---|---|---|---|---|")
    for spec in [*params.skills.values(), *params.probes.values()]:
        records = validate_records(read_records(spec.path), spec.path, spec.columns)
        records = records[: args.limit] if args.limit else records
        answers: dict[str, str] = {}  # the last call's views and answers, for the examples printed below

        def generate(views: list, max_new_tokens: int) -> list[str]:
            out = gen.generate(views, max_new_tokens)
            answers.update(zip(map(str, views), out))
            return out

        template = params.sdft.template_for(spec.kind)
        h = measure_headroom(generate, records, template, spec.scorer, params.eval.max_new_tokens)
        if h is None:
            print(f"| {spec.name} | {spec.kind} | 0 | - | - |", flush=True)
            continue
        print(f"| {spec.name} | {spec.kind} | {h.n} | {h.student:.0%} | {h.teacher:.0%} |", flush=True)
        for r in records[:2]:
            view = teacher_prompt(r["prompt"], r["demonstration"], template)
            print(f"    {r['prompt'][:60]!r}\n      student: {answers.get(str(r['prompt']), '')[:100]!r}"
                  f"\n      teacher: {answers.get(str(view), '')[:100]!r}")


if __name__ == "__main__":
    main()
