"""Where everything in a workspace lives: every folder and file that a stage writes or reads.

The one owner of the artifact layout. The stages, the CLI's defaults, the flows, the status table and the bench
scripts ask `params.layout`; dvc.yaml names the same paths through `${artifacts_dir}`, and
tests/test_layout.py compares `Layout.stage_outputs` with dvc.yaml stage by stage, so the two cannot drift.

  checkpoints/base, eval/base, registry/base.gate    base: the starting model, its probe scores, and "pass"
  data/<skill>, probes/<probe>                       ingest: validated splits
  checkpoints/<skill>, <skill>.train_metrics.json    train: from checkpoints/<after> once registry/<after>.gate
                                                     says "pass"
  eval/<skill>/scores.json, predictions/, reference/ evaluate: the candidate on every skill so far + probes,
                                                     the parent on the new skill
  gate/<skill>/verdict.json, report.md               gate: the regression gate against the parent
  registry/<skill>.json, <skill>.gate,               register: MLflow run, version and aliases; the gate marker
    gate/<skill>/forgetting.png                      ("pass"/"fail") that the next skill's training waits for
  report/report.md, metrics.json, forgetting.png     report: accuracy matrix, ACC/BWT, forgetting plot
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SdftError

BASE = "base"  # the chain's starting model: a checkpoint, an (empty) data folder and a "pass" marker like a skill
SCORES = "scores.json"  # in each eval folder, and in `sdft evaluate --out DIR`
META = "meta.json"  # in each ingested skill's folder, beside train.jsonl and eval.jsonl (sdft/data.py)


def train_metrics_file(checkpoint: str | Path) -> Path:
    """The training log of a checkpoint sits *beside* it, not inside: it holds wall-clock seconds, and inside
    the checkpoint it would give a bit-identical retrain a new DVC hash (and re-run everything downstream)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.name}.train_metrics.json")


@dataclass(frozen=True)
class Layout:
    root: Path
    probes: frozenset[str] = field(default_factory=frozenset)

    # --- per skill -----------------------------------------------------------------------------------------
    def data_dir(self, skill: str) -> Path:
        # Probes live apart so the base stage can depend on all of them as one folder.
        return self.root / ("probes" if skill in self.probes else "data") / skill

    def meta_file(self, skill: str) -> Path:
        return self.data_dir(skill) / META

    def checkpoint_dir(self, skill: str) -> Path:
        return self.root / "checkpoints" / skill

    def train_metrics(self, skill: str) -> Path:
        return train_metrics_file(self.checkpoint_dir(skill))

    def eval_dir(self, name: str) -> Path:
        return self.root / "eval" / name

    def scores_file(self, name: str) -> Path:
        return self.eval_dir(name) / SCORES

    def predictions_dir(self, name: str) -> Path:
        return self.eval_dir(name) / "predictions"

    def reference_dir(self, name: str) -> Path:
        return self.eval_dir(name) / "reference"

    def gate_dir(self, name: str) -> Path:
        return self.root / "gate" / name

    def verdict_file(self, name: str) -> Path:
        return self.gate_dir(name) / "verdict.json"

    def gate_report(self, name: str) -> Path:
        return self.gate_dir(name) / "report.md"

    def gate_plot(self, name: str) -> Path:
        return self.gate_dir(name) / "forgetting.png"

    def registry_file(self, name: str) -> Path:
        return self.root / "registry" / f"{name}.json"

    def gate_marker(self, name: str) -> Path:
        """One word, "pass" or "fail": the next skill's training depends on this file alone, so editing a gate
        threshold re-runs the gate and the registration but never retrains a skill whose verdict did not flip."""
        return self.registry_file(name).with_suffix(".gate")

    # --- the whole curriculum --------------------------------------------------------------------------------
    def probes_dir(self) -> Path:
        return self.root / "probes"

    def report_dir(self) -> Path:
        return self.root / "report"

    def report_file(self) -> Path:
        return self.report_dir() / "report.md"

    def metrics_file(self) -> Path:
        return self.report_dir() / "metrics.json"

    def report_plot(self) -> Path:
        return self.report_dir() / "forgetting.png"

    def compare_dir(self) -> Path:
        """`sdft compare` and the demo's baselines: one in-process curriculum per method (not a DVC output)."""
        return self.root / "compare"

    def stage_outputs(self, stage: str, skill: str | None = None) -> set[Path]:
        """What each dvc.yaml stage declares (outs, metrics, plots): the test compares the two exactly."""
        return {
            "ingest_probe": lambda: {self.data_dir(skill)},
            "base": lambda: {self.checkpoint_dir(BASE), self.data_dir(BASE), self.predictions_dir(BASE),
                             self.gate_marker(BASE), self.scores_file(BASE)},
            "ingest": lambda: {self.data_dir(skill)},
            "train": lambda: {self.checkpoint_dir(skill), self.train_metrics(skill)},
            "evaluate": lambda: {self.predictions_dir(skill), self.reference_dir(skill), self.scores_file(skill)},
            "gate": lambda: {self.gate_report(skill), self.verdict_file(skill)},
            "register": lambda: {self.registry_file(skill), self.gate_marker(skill), self.gate_plot(skill)},
            "report": lambda: {self.report_file(), self.metrics_file(), self.report_plot()},
        }[stage]()


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path, stage: str) -> dict:
    """A stage's JSON output; missing, it names the stage that writes it."""
    if not path.exists():
        raise SdftError("missing stage output.", where=str(path), fix=f"run the `{stage}` stage first (dvc repro).")
    return json.loads(path.read_text(encoding="utf-8"))
