"""SDFT continual-learning library: ingest skills, train with self-distillation, evaluate, gate.

This package never imports Prefect: `tasks/` and `flows/` wrap it, and the `sdft` CLI (used by
`dvc.yaml`) calls the same functions.
"""

__version__ = "0.1.0"
