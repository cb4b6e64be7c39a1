"""Markdown tables for the terminal, the README and the MLflow/Prefect reports."""

from __future__ import annotations

from .sequence import SequenceResult


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def matrix_table(result: SequenceResult) -> str:
    cols = result.skills + result.probes
    lines = ["| after | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    labels = ["base"] + result.skills
    for label, row in zip(labels, result.rows):
        lines.append(f"| {label} | " + " | ".join(_pct(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def compare_table(results: list[SequenceResult]) -> str:
    """One column per method: each new skill right after learning it, the general suite, ACC, BWT, time."""
    summaries = [r.summary() for r in results]
    first = results[0]
    lines = ["| metric (%) | " + " | ".join(s["method"] for s in summaries) + " |", "|---" * (len(results) + 1) + "|"]
    for skill in first.skills:
        lines.append(f"| new skill: {skill} | " + " | ".join(_pct(s["new_skill"][skill]) for s in summaries) + " |")
    for probe in first.probes:
        lines.append(f"| base {probe} | " + " | ".join(_pct(r.rows[0][probe]) for r in results) + " |")
        lines.append(f"| final {probe} | " + " | ".join(_pct(s["general"][probe]) for s in summaries) + " |")
    lines.append("| ACC (final, trained skills) | " + " | ".join(_pct(s["acc"]) for s in summaries) + " |")
    lines.append("| BWT (retention of prior skills) | " + " | ".join(_pct(s["bwt"]) for s in summaries) + " |")
    lines.append("| avg forgetting | " + " | ".join(_pct(s["forgetting"]) for s in summaries) + " |")
    lines.append("| train time (s) | " + " | ".join(f"{s['train_seconds']:.0f}" for s in summaries) + " |")
    return "\n".join(lines)
