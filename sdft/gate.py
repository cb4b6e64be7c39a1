"""The regression gate: may a candidate replace the champion?

Checks, each against the reference model (the current champion, or the base model before any):
- new skill: candidate score >= `min_new_score` and candidate - reference >= `min_new_gain`;
- every prior skill: reference - candidate <= `max_prior_drop`;
- every general probe: reference - candidate <= `max_general_drop`.
A difference exactly at a limit passes. Scores are compared after rounding to 1e-9, so float noise
never flips a verdict and identical inputs always give identical verdicts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .params import GateParams

_EPS = 1e-9


@dataclass
class Check:
    name: str
    kind: str  # new | prior | general
    candidate: float
    reference: float
    limit: str
    passed: bool
    reason: str = ""


@dataclass
class Verdict:
    new_skill: str
    passed: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.checks if not c.passed]

    def as_dict(self) -> dict:
        return {"new_skill": self.new_skill, "passed": self.passed, "reasons": self.reasons,
                "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        head = f"## Gate for `{self.new_skill}`: **{'PASS' if self.passed else 'FAIL'}**\n\n"
        rows = ["| check | kind | candidate | reference | limit | result |", "|---|---|---|---|---|---|"]
        for c in self.checks:
            rows.append(f"| {c.name} | {c.kind} | {100 * c.candidate:.1f} | {100 * c.reference:.1f} | {c.limit} | "
                        f"{'pass' if c.passed else 'FAIL'} |")
        reasons = "".join(f"- {r}\n" for r in self.reasons)
        return head + "\n".join(rows) + "\n" + (f"\nWhy it failed:\n{reasons}" if reasons else "")


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"


def gate(
    candidate: dict[str, float],
    reference: dict[str, float],
    new_skill: str,
    prior_skills: list[str],
    general: list[str],
    params: GateParams,
) -> Verdict:
    checks: list[Check] = []
    cand, ref = candidate[new_skill], reference[new_skill]
    ok = round(cand - params.min_new_score, 9) >= -_EPS
    checks.append(Check(new_skill, "new", cand, ref, f">= {_pts(params.min_new_score)}", ok,
                        "" if ok else f"new skill {new_skill}: {_pts(cand)} is below the minimum {_pts(params.min_new_score)}"))
    gain = round(cand - ref, 9)
    ok = gain - params.min_new_gain >= -_EPS
    checks.append(Check(f"{new_skill} (gain)", "new", cand, ref, f"gain >= {_pts(params.min_new_gain)}", ok,
                        "" if ok else f"new skill {new_skill}: gain {_pts(gain)} is below the required {_pts(params.min_new_gain)}"))
    for kind, names, limit in (("prior", prior_skills, params.max_prior_drop), ("general", general, params.max_general_drop)):
        for name in names:
            drop = round(reference[name] - candidate[name], 9)
            ok = drop - limit <= _EPS
            checks.append(Check(name, kind, candidate[name], reference[name], f"drop <= {_pts(limit)}", ok,
                                "" if ok else f"{kind} skill {name}: dropped {_pts(drop)} points "
                                f"({_pts(reference[name])} -> {_pts(candidate[name])}), more than the allowed {_pts(limit)}"))
    return Verdict(new_skill, all(c.passed for c in checks), checks)
