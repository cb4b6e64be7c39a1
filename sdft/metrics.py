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

from dataclasses import asdict, dataclass, field


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


@dataclass
class AccuracyMatrix:
    """The one accuracy matrix, built in one place (`sdft.stages.accuracy_matrix`) from the evaluate stage's files,
    whether `dvc repro` or an in-process run (`sdft.sequence.learn_sequence`) wrote them. Read by the report and
    register stages, `sdft compare`, the demo's comparison table and the bench scripts."""

    label: str  # the method or setting, as a column title in comparison tables
    skills: list[str]  # trained skills, in learning order
    probes: list[str]  # evaluation-only suites (general ability)
    rows: list[dict[str, float | None]] = field(default_factory=list)  # row 0 = base; one row per learned skill
    train_seconds: float = 0.0

    def row_labels(self) -> list[str]:
        return ["base", *self.skills]

    def columns(self) -> list[str]:
        return self.skills + self.probes

    def through(self, skill: str) -> "AccuracyMatrix":
        """The matrix as it stood right after `skill` was learned."""
        keep = self.skills.index(skill) + 1
        return AccuracyMatrix(self.label, self.skills[:keep], self.probes, self.rows[: keep + 1], self.train_seconds)

    def metrics(self) -> CLMetrics:
        return cl_metrics([[row[s] for s in self.skills] for row in self.rows])

    def summary(self) -> dict:
        final, base = self.rows[-1], self.rows[0]
        return {
            "method": self.label,
            "new_skill": {s: self.rows[i + 1][s] for i, s in enumerate(self.skills)},
            "general": {p: final[p] for p in self.probes},
            "general_drop": {p: base[p] - final[p] for p in self.probes},
            # no skill learned yet (the first one refused): no continual-learning metrics to give
            **(self.metrics().as_dict() if self.skills else {"acc": None, "bwt": None, "forgetting": None}),
            "train_seconds": round(self.train_seconds, 1),
        }
