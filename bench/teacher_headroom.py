"""Can the model do each skill as its own teacher? Scores the student (prompt only) and the teacher
(prompt + demonstration through the skill kind's teacher template) on every record of each skill.

SDFT can only teach what the teacher does: a skill with no headroom here cannot be learned by SDFT.
Usage: python bench/teacher_headroom.py [--params params.yaml] [--limit N]
"""

from __future__ import annotations

import argparse

from sdft.data import read_records, validate_records
from sdft.generation import HFGenerator
from sdft.models import load_model, load_tokenizer, resolve_model
from sdft.params import load_params
from sdft.prompts import teacher_prompt
from sdft.scoring import get_scorer


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
        score = get_scorer(spec.scorer)
        template = params.sdft.template_for(spec.kind)
        student = gen.generate([r["prompt"] for r in records], params.eval.max_new_tokens)
        teacher = gen.generate([teacher_prompt(r["prompt"], r["demonstration"], template) for r in records], params.eval.max_new_tokens)
        s = sum(score(p, r["answer"]) for p, r in zip(student, records)) / len(records)
        t = sum(score(p, r["answer"]) for p, r in zip(teacher, records)) / len(records)
        print(f"| {spec.name} | {spec.kind} | {len(records)} | {s:.0%} | {t:.0%} |", flush=True)
        for r, p, q in list(zip(records, student, teacher))[:2]:
            print(f"    {r['prompt'][:60]!r}\n      student: {p[:100]!r}\n      teacher: {q[:100]!r}")


if __name__ == "__main__":
    main()
