"""Continual-learning metrics from the accuracy matrix.

R[i][j] = score on skill j after learning the i-th skill of the sequence; row 0 is the base model.
With T skills learned (rows 1..T):
- ACC  = (1/T) * sum_j R[T][j]                                   average final accuracy
- BWT  = (1/(T-1)) * sum_{j<T} (R[T][j] - R[j][j])               backward transfer (Lopez-Paz & Ranzato 2017);
                                                                 negative = forgetting
- FGT  = (1/(T-1)) * sum_{j<T} max_{l in j..T-1} R[l][j] - R[T][j]  average forgetting (Chaudhry et al. 2018):
                                                                 best score a skill ever had minus its final one
Scores are fractions in [0, 1]; columns are the trained skills in learning order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CLMetrics:
    acc: float
    bwt: float | None
    forgetting: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def cl_metrics(matrix: list[list[float]]) -> CLMetrics:
    """`matrix` has T+1 rows (base first) and T columns (skills in learning order)."""
    T = len(matrix) - 1
    if T < 1 or any(len(row) != T for row in matrix):
        raise ValueError(f"need T+1 rows of T scores (base row first); got {len(matrix)} rows")
    final = matrix[T]
    acc = sum(final) / T
    if T == 1:
        return CLMetrics(acc=acc, bwt=None, forgetting=None)
    bwt = sum(final[j] - matrix[j + 1][j] for j in range(T - 1)) / (T - 1)
    fgt = sum(max(matrix[l][j] for l in range(j + 1, T)) - final[j] for j in range(T - 1)) / (T - 1)
    return CLMetrics(acc=acc, bwt=bwt, forgetting=fgt)
