"""Tables and the forgetting plot, for the terminal, the README, DVC plots and MLflow."""

from __future__ import annotations

from pathlib import Path

from .metrics import AccuracyMatrix


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def matrix_markdown(matrix: AccuracyMatrix) -> str:
    """Rows = after learning that skill (the first is the base model); %, "—" = not measured."""
    cols = matrix.columns()
    lines = ["| after | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, row in zip(matrix.row_labels(), matrix.rows):
        lines.append(f"| {label} | " + " | ".join(pct(row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def forgetting_plot(matrix: AccuracyMatrix, path: Path) -> Path:
    """Each skill's score across the sequence: a line that falls after its own stage is forgetting."""
    labels, cols, rows = matrix.row_labels(), matrix.columns(), matrix.rows
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for col in cols:
        ys = [row.get(col) for row in rows]
        ax.plot(range(len(rows)), [None if y is None else 100 * y for y in ys], marker="o", label=col)
    ax.set_xticks(range(len(rows)), labels, rotation=20)
    ax.set_xlabel("after learning")
    ax.set_ylabel("score (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_table(results: list[AccuracyMatrix]) -> str:
    """One column per method: each new skill right after learning it, the general suite, ACC, BWT, time."""
    summaries = [r.summary() for r in results]
    first = results[0]
    lines = ["| metric (%) | " + " | ".join(s["method"] for s in summaries) + " |", "|---" * (len(results) + 1) + "|"]
    for skill in first.skills:
        lines.append(f"| new skill: {skill} | " + " | ".join(pct(s["new_skill"][skill]) for s in summaries) + " |")
    for probe in first.probes:
        lines.append(f"| base {probe} | " + " | ".join(pct(r.rows[0][probe]) for r in results) + " |")
        lines.append(f"| final {probe} | " + " | ".join(pct(s["general"][probe]) for s in summaries) + " |")
    lines.append("| ACC (final, trained skills) | " + " | ".join(pct(s["acc"]) for s in summaries) + " |")
    lines.append("| BWT (retention of prior skills) | " + " | ".join(pct(s["bwt"]) for s in summaries) + " |")
    lines.append("| avg forgetting | " + " | ".join(pct(s["forgetting"]) for s in summaries) + " |")
    lines.append("| train time (s) | " + " | ".join(f"{s['train_seconds']:.0f}" for s in summaries) + " |")
    return "\n".join(lines)
