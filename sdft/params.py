"""Typed view of `params.yaml`: the one place every run setting is read from.

Defaults below are the SDFT paper's settings (Shenfeld et al. 2026, arXiv 2601.19897) where the
paper states one; `params.yaml` overrides the batch/length/step sizes for a 2-core CPU and says so
next to each value. Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SdftError

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"

# The paper's teacher prompt (official code): the demonstration goes in context, in one user turn.
PAPER_TEACHER_TEMPLATE = (
    "{prompt}\n\nThis is an example for a response to the question:\n{demonstration}\n\n"
    "Now answer with a response of your own, including the thinking process."
)


@dataclass
class ModelParams:
    # An HF hub id, a local directory, or `embedded:smollm2-135m-instruct` (shipped on PyPI).
    name_or_path: str = EMBEDDED_MODEL
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


@dataclass
class SkillSpec:
    name: str
    path: str
    # How answers are scored: see `sdft.scoring.SCORERS`.
    scorer: str = "contains"
    # knowledge | format | procedure | general: picks the teacher template in `sdft.sdft` params.
    kind: str = "knowledge"
    # Maps our field names (prompt, demonstration, answer, id) to the columns of a foreign layout.
    columns: dict[str, str] = field(default_factory=dict)
    # A general-capability probe is only evaluated, never trained on.
    train: bool = True


@dataclass
class DataParams:
    eval_fraction: float = 0.25
    split_seed: int = 0
    # Records longer than this many tokens (prompt + demonstration) are rejected at ingest;
    # 0 means "the model's context length".
    max_record_tokens: int = 0
    max_file_mb: int = 512


@dataclass
class LoraParams:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"


@dataclass
class TrainParams:
    method: Literal["sdft", "sft"] = "sdft"
    learning_rate: float = 5e-5  # paper
    num_train_epochs: float = 2  # paper
    max_steps: int = -1  # >0 caps the run (overrides epochs)
    per_device_train_batch_size: int = 32  # paper: 32 prompts per step
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_prompt_length: int = 1024
    max_completion_length: int = 256
    seed: int = 42
    logging_steps: int = 1
    lora: LoraParams = field(default_factory=LoraParams)


@dataclass
class SdftParams:
    teacher_model_kind: Literal["ema", "base", "live"] = "ema"  # paper: EMA of the student
    teacher_update_rate: float = 0.01  # paper: EMA rate 0.01
    teacher_sync_steps: int = 1
    # forward KL(teacher || student) over the full vocabulary = TRL's full_logits with alpha 0.
    distillation_mode: Literal["full_logits", "topk_logits", "sampled_token"] = "full_logits"
    distillation_alpha: float = 0.0
    distillation_topk: int = 100  # only used by topk_logits (large vocabularies)
    num_loss_tokens_to_skip: int = 3  # paper: first 3 completion tokens are not in the loss
    num_generations: int = 1  # paper: 1 rollout per prompt
    temperature: float = 1.0
    teacher_template: str = PAPER_TEACHER_TEMPLATE
    # Per skill kind overrides of `teacher_template` (a skill's `kind` selects one).
    teacher_templates: dict[str, str] = field(default_factory=dict)

    def template_for(self, kind: str) -> str:
        return self.teacher_templates.get(kind, self.teacher_template)


@dataclass
class EvalParams:
    max_new_tokens: int = 64
    batch_size: int = 16
    max_examples: int = 0  # 0 = the whole eval split


@dataclass
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    skills: list[SkillSpec] = field(default_factory=list)
    data: DataParams = field(default_factory=DataParams)
    train: TrainParams = field(default_factory=TrainParams)
    sdft: SdftParams = field(default_factory=SdftParams)
    eval: EvalParams = field(default_factory=EvalParams)
    # Where stage outputs go (DVC outputs, never git).
    artifacts_dir: str = "artifacts"

    # Where each stage writes, in one place (the CLI defaults, dvc.yaml and the flows agree on it).
    def data_dir(self, skill: str) -> Path:
        return Path(self.artifacts_dir) / "data" / skill

    def checkpoint_dir(self, skill: str) -> Path:
        return Path(self.artifacts_dir) / "checkpoints" / skill

    def eval_dir(self, name: str) -> Path:
        return Path(self.artifacts_dir) / "eval" / name

    def skill(self, name: str) -> SkillSpec:
        for spec in self.skills:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.skills) or "none"
        raise SdftError(
            f"unknown skill {name!r} (known: {known}).",
            fix="add it under `skills:` in params.yaml with its data path.",
        )


def _build(cls, raw: Any, where: str):
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses, rejecting unknown keys."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SdftError(f"`{where}` must be a mapping, got {type(raw).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SdftError(
            f"unknown key(s) {unknown} in `{where}`.",
            fix=f"use one of {sorted(fields)}.",
        )
    kwargs = {}
    for name, value in raw.items():
        f = fields[name]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[name] = _build(f.default_factory, value, f"{where}.{name}")
        elif name == "skills":
            if not isinstance(value, list):
                raise SdftError(f"`{where}.skills` must be a list of skills.")
            kwargs[name] = [_build(SkillSpec, s, f"{where}.skills[{i}]") for i, s in enumerate(value)]
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field (e.g. a skill's name or path) is missing
        raise SdftError(f"`{where}`: {exc}.") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise SdftError("params file not found.", where=str(path), fix="run from the project root or pass --params.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SdftError(f"not valid YAML ({exc}).", where=str(path)) from None
    try:
        params = _build(Params, raw, "params")
    except SdftError as exc:
        exc.where = str(path)
        raise
    names = [s.name for s in params.skills]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SdftError(f"skill name(s) {dupes} appear twice.", where=str(path), fix="give each skill a unique name.")
    return params


def to_dict(params: Params) -> dict[str, Any]:
    return dataclasses.asdict(params)
