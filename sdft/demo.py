"""`sdft demo`: the bundled skills learned in sequence on the embedded default model, with the
accuracy matrix and the continual-learning metrics printed at the end."""

from __future__ import annotations

import time

from .params import Params
from .report import matrix_markdown
from .sequence import learn_sequence


def run_demo(params: Params, max_steps: int | None = None, workdir: str = "artifacts/demo") -> None:
    start = time.perf_counter()
    result = learn_sequence(params, params.train.method, f"{workdir}/{params.train.method}", max_steps)
    s = result.summary()
    print(f"\nAccuracy matrix ({params.train.method}; %, rows = after learning that skill):")
    print(matrix_markdown(["base", *result.skills], result.skills + result.probes, result.rows))
    print(f"\nACC {100 * s['acc']:.1f}  BWT {s['bwt'] and 100 * s['bwt']:.1f}  "
          f"forgetting {s['forgetting'] and 100 * s['forgetting']:.1f}  "
          f"({time.perf_counter() - start:.0f}s in all, {s['train_seconds']:.0f}s training)")
