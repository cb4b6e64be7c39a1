"""`sdft compare`: the same curriculum learned with each method from the same base, side by side."""

from __future__ import annotations

import json
from pathlib import Path

from .params import Params
from .report import compare_table
from .sequence import learn_sequence


def run_compare(params: Params, methods: list[str], workdir: str, max_steps: int | None = None) -> str:
    results = [learn_sequence(params, m, Path(workdir) / m, max_steps) for m in methods]
    table = compare_table(results)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    (Path(workdir) / "compare.md").write_text(table + "\n", encoding="utf-8")
    (Path(workdir) / "compare.json").write_text(json.dumps([r.summary() for r in results], indent=2) + "\n")
    print(f"\nMethod comparison ({', '.join(methods)}; same base, same data, %):\n{table}")
    return table
