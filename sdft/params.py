"""Typed view of `params.yaml`: the one place every run setting is read from.

Defaults below are the SDFT paper's settings (Shenfeld et al. 2026, arXiv 2601.19897) where the
paper states one; `params.yaml` overrides the batch/length/step sizes for a 2-core CPU and says so
next to each value. Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import SdftError
from .layout import Layout

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"

# Skill and probe names become folder and stage names (<artifacts_dir>/data/<name>, train@<name>).
SKILL_NAME = re.compile(r"[A-Za-z0-9_-]+")
RESERVED_NAMES = {"base"}  # the starting model's checkpoint and gate marker


def within(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
           default: Any = None, also: tuple = ()):
    """A dataclass field whose value must lie in [lo, hi] (`lo_open`/`hi_open` exclude an end) or be in `also`."""
    return field(default=default, metadata={"range": (lo, hi, lo_open, hi_open), "also": also})

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
class GateParams:
    """Thresholds are fractions (0.02 = 2 points). A drop of exactly the limit passes."""

    min_new_score: float = within(0, 1, default=0.0)  # candidate's score on the new skill must reach this
    min_new_gain: float = within(-1, 1, default=0.0)  # ... and beat the reference (champion or base) by this much
    max_prior_drop: float = within(0, 1, default=0.02)  # per prior skill, vs the reference
    max_general_drop: float = within(0, 1, default=0.02)  # per general-suite probe, vs the reference


@dataclass
class SkillSpec:
    name: str  # the key under `skills:` / `probes:` in params.yaml (filled in by load_params)
    path: str
    # How answers are scored: see `sdft.scoring.SCORERS`.
    scorer: str = "contains"
    # knowledge | format | procedure | general: picks the teacher template (`sdft.teacher_templates`).
    kind: str = "knowledge"
    # The skill learned just before this one (`base` for the first). It must name the previous
    # entry: DVC reads it to chain checkpoints, and load_params checks it matches the order.
    after: str = ""
    # Maps our field names (prompt, demonstration, answer, id, split) to a foreign layout's columns.
    columns: dict[str, str] = field(default_factory=dict)
    # Per-skill overrides of the top-level `gate:` thresholds, e.g. {min_new_score: 0.5}.
    gate: dict[str, float] = field(default_factory=dict)
    # Probes of `kind: lm_eval` only (sdft/lm_eval_probe.py): `path` is a folder of lm-evaluation-harness task
    # YAMLs, `tasks` the ones to run, `metric` the one that becomes the probe's score (mean over the tasks).
    tasks: list[str] = field(default_factory=list)
    metric: str = "acc"


@dataclass
class DataParams:
    eval_fraction: float = within(0, 1, hi_open=True, default=0.25)
    split_seed: int = 0
    # Records longer than this many tokens (prompt + demonstration) are rejected at ingest;
    # 0 means "the model's context length".
    max_record_tokens: int = within(0, default=0)
    max_file_mb: int = within(0, lo_open=True, default=512)


@dataclass
class LoraParams:
    enabled: bool = False
    r: int = within(1, default=16)
    alpha: int = within(1, default=32)
    dropout: float = within(0, 1, hi_open=True, default=0.0)
    target_modules: str | list[str] = "all-linear"


@dataclass
class TrainParams:
    method: Literal["sdft", "sft"] = "sdft"
    learning_rate: float = within(0, 1, lo_open=True, default=5e-5)  # paper
    num_train_epochs: float = within(0, lo_open=True, default=2)  # paper
    max_steps: int = within(1, default=-1, also=(-1,))  # >0 caps the run (overrides epochs); -1 = use the epochs
    per_device_train_batch_size: int = within(1, default=32)  # paper: 32 prompts per step
    gradient_accumulation_steps: int = within(1, default=1)
    lr_scheduler_type: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                               "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr",
                               "warmup_stable_decay"] = "cosine"
    warmup_ratio: float = within(0, 1, hi_open=True, default=0.1)
    weight_decay: float = within(0, default=0.0)
    max_grad_norm: float = within(0, lo_open=True, default=1.0)
    max_prompt_length: int = within(1, default=1024)
    max_completion_length: int = within(1, default=256)
    seed: int = within(0, default=42)
    logging_steps: int = within(1, default=1)
    # Mid-run checkpoints (weights, optimizer, scheduler, RNG, EMA teacher) every N optimizer steps, beside the
    # checkpoint in `<checkpoint>.resume/`: a killed train stage continues from the last one. 0 = off.
    save_steps: int = within(0, default=25)
    # Knowledge prompts reworded on each pass over the new skill: pass k asks every question in framing k mod n
    # ("{prompt}" = the record as written), so a fact is met under several wordings at no extra step (issue #12:
    # held-out questions are paraphrases). Applies to the kinds in `reframe_kinds`; ["{prompt}"] = off.
    prompt_framings: list[str] = field(default_factory=lambda: ["{prompt}"])
    reframe_kinds: list[str] = field(default_factory=lambda: ["knowledge"])
    lora: LoraParams = field(default_factory=LoraParams)
    # Full fine-tuning with some weights held at the parent's: regular expressions searched in each parameter's name
    # (`model.named_parameters()`; e.g. "^model\\.embed_tokens\\." also holds a tied output layer). A pattern that
    # matches no parameter is an error. [] = every weight trains. Not with LoRA, which trains adapters only.
    freeze: list[str] = field(default_factory=list)
    # Data-parallel training: `sdft train` starts itself under `accelerate launch` with this many processes (one
    # per GPU; on a host without GPUs, CPU processes over gloo). Each takes per_device_train_batch_size rows of
    # every step, so the global batch grows with it. `accelerate_config`: an accelerate config file (FSDP,
    # DeepSpeed, several nodes; configs/accelerate/) instead of plain DDP.
    processes: int = within(1, default=1)
    accelerate_config: str = ""


@dataclass
class SdftParams:
    teacher_model_kind: Literal["ema", "base", "live"] = "ema"  # paper: EMA of the student
    teacher_update_rate: float = within(0, 1, lo_open=True, default=0.01)  # paper: EMA rate 0.01
    teacher_sync_steps: int = within(1, default=1)
    # forward KL(teacher || student) over the full vocabulary = TRL's full_logits with alpha 0.
    distillation_mode: Literal["full_logits", "topk_logits", "sampled_token"] = "full_logits"
    distillation_alpha: float = within(0, 1, default=0.0)
    distillation_topk: int = within(1, default=100)  # only used by topk_logits (large vocabularies)
    num_loss_tokens_to_skip: int = within(0, default=3)  # paper: first 3 completion tokens are not in the loss
    num_generations: int = within(1, default=1)  # paper: 1 rollout per prompt
    # Who writes the rollouts the loss is taken on. False (paper): the student, prompt only (on-policy).
    # True: the same weights with the demonstration in context (TRL's `generate_from_teacher`), so the
    # rollouts contain the new content in the model's own words; the student still matches the teacher's
    # full distribution on them. docs/QUALITY.md measures both at 135M.
    generate_from_teacher: bool = False
    # 0 (paper): the loss is the plain mean of the per-token divergence over a rollout. g > 0: each token
    # weighted by (its divergence / the rollout's mean) ** g, toward the tokens that carry new content
    # (sdft/recipes/token_weights.py).
    disagreement_power: float = within(0, default=0.0)
    # lambda >= 0: adds lambda * NLL of the demonstration given the prompt (SFT's loss) to the distillation loss,
    # on every row that has a demonstration (anchors have none; replayed rows: `replay.prior_sft_weight`).
    # 0 = the paper's pure self-distillation.
    sft_weight: float = within(0, default=0.0)
    # Before training, the new skill's scorable training records are answered greedily from the prompt alone and with
    # the demonstration in context (sdft/headroom.py): a skill whose teacher scores less than this much above its
    # student is refused, because SDFT can only move the student toward the teacher. 0 = no check (the paper has none).
    min_teacher_headroom: float = within(0, 1, default=0.0)
    # f > 0: a run's rollouts stop at f x its longest demonstration (tokens; replayed skills' included), never above
    # train.max_completion_length. A one-sentence answer needs no 64-token rollout, and every token past the answer
    # costs generation, teacher and student work (issue #14). 0 = train.max_completion_length for every skill.
    rollout_length_factor: float = within(0, default=0.0)
    temperature: float = within(0, lo_open=True, default=1.0)
    # How rollouts are sampled, not what the loss matches: the student still matches the teacher's full
    # distribution at every position of a rollout. A small model's temperature-1 samples wander into its long tail
    # (other languages, symbols) after a few tokens, and the loss is then taken in contexts the model never meets
    # when it answers greedily. min_p > 0 drops tokens below min_p x the likeliest token's probability while
    # sampling; top_p < 1 keeps the smallest set holding that much probability. 0 / 1 = off (the paper's plain samples).
    min_p: float = within(0, 1, hi_open=True, default=0.0)
    top_p: float = within(0, 1, lo_open=True, default=1.0)
    teacher_template: str = PAPER_TEACHER_TEMPLATE
    # Per skill kind overrides of `teacher_template` (a skill's `kind` selects one).
    teacher_templates: dict[str, str] = field(default_factory=dict)

    def template_for(self, kind: str) -> str:
        return self.teacher_templates.get(kind, self.teacher_template)


@dataclass
class ReplayParams:
    """What keeps earlier skills and general behaviour in place while a new skill is learned (sdft/replay.py).

    Each step's batch holds `per_device_train_batch_size` prompts: a `prior_fraction` share drawn from the
    earlier skills' *training* splits (spread evenly over them), an `anchor_fraction` share from the bundled
    general prompts, the rest from the new skill; `train.num_train_epochs` still counts passes over the new
    skill, so replay adds steps instead of taking the new skill's.
    SDFT: replayed records keep their demonstrations in the teacher's view (their own kind's template);
    anchor prompts are distilled toward the frozen parent model with no demonstration (self-generated replay).
    SFT: replayed demonstrations are targets; anchors train on the parent's own greedy answers.
    """

    prior_fraction: float = within(0, 1, hi_open=True, default=0.0)
    anchor_fraction: float = within(0, 1, hi_open=True, default=0.0)
    # General prompts written by the project, none of them in a probe or an eval split (checked at train).
    anchor_prompts: str = "skills/anchor_prompts.jsonl"
    # SDFT: first completion tokens left out of the loss on anchor rows (`sdft.num_loss_tokens_to_skip` on the
    # others). Skipping guards against artifacts of the teacher's longer prompt; an anchor's teacher sees the
    # student's exact prompt, and its first tokens are where an answer turns into an explanation.
    anchor_skip_tokens: int = within(0, default=3)
    # SDFT: what the anchors' tokens are. `sampled`: rollouts like every other row (temperature
    # `sdft.temperature`). `parent_greedy`: the parent's own greedy answer, written once before training,
    # so the student matches the parent's full distribution along the path greedy decoding (the gate's
    # evaluation, most serving) takes; sampled paths leave that path after a few tokens (docs/QUALITY.md §14).
    anchor_rollouts: Literal["sampled", "parent_greedy"] = "sampled"
    # SDFT: lambda of the SFT term (`sdft.sft_weight`) on the replayed earlier-skill rows alone; null = the same
    # lambda as the new skill's rows. SFT with replay trains on those demonstrations at full weight and keeps the
    # earlier skills best (docs/QUALITY.md §22); a larger lambda here gives SDFT that direct target on them only.
    prior_sft_weight: float | None = within(0, default=None, also=(None,))
    # SDFT: after every step each linear layer's change from the parent is kept off the inputs the parent's greedy
    # anchor answers give that layer (their leading `share` of energy; sdft/recipes/projection.py). 0 = off. Needs
    # the anchors on the parent's greedy path (`anchor_fraction` > 0, `anchor_rollouts: parent_greedy`); not with LoRA.
    anchor_projection_share: float = within(0, 1, hi_open=True, default=0.0)


@dataclass
class RolloutParams:
    """Which engine generates SDFT rollouts and evaluation answers (`sdft.generation.resolve_engine`)."""

    # auto: vLLM when it is installed, else transformers (with one log line saying so).
    engine: Literal["auto", "hf", "vllm"] = "auto"
    # vLLM on CPU: KV-cache size in GiB (becomes VLLM_CPU_KVCACHE_SPACE).
    kv_cache_gib: int = within(1, default=1)
    # vLLM on GPU: the share of GPU memory it may take; the trainer needs the rest.
    gpu_memory_utilization: float = within(0, 1, lo_open=True, default=0.3)
    # CUDA graphs / torch.compile warm-up costs more than it saves on short CPU runs.
    enforce_eager: bool = True
    # vLLM: write step k+1's rollouts while step k trains, with step k's starting weights (one update old, as
    # asynchronous RL trainers do). Hides generation on a GPU; on a CPU both compete for the same cores.
    overlap: bool = False


@dataclass
class EvalParams:
    max_new_tokens: int = within(1, default=64)
    batch_size: int = within(1, default=16)
    max_examples: int = within(0, default=0)  # 0 = the whole eval split


@dataclass
class PromotionParams:
    # auto: `champion` moves to a new version when its gate passes; manual: a person moves it
    # (MLflow UI, or `sdft promote --version N`). A failed gate never moves it.
    mode: Literal["auto", "manual"] = "auto"
    registered_model_name: str = "sdft-model"
    experiment: str = "sdft-pipeline"


@dataclass
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    # The curriculum, learned in this order (a mapping keyed by skill name).
    skills: dict[str, SkillSpec] = field(default_factory=dict)
    # Evaluation-only suites (general capability): measured after every skill, never trained on.
    probes: dict[str, SkillSpec] = field(default_factory=dict)
    data: DataParams = field(default_factory=DataParams)
    train: TrainParams = field(default_factory=TrainParams)
    sdft: SdftParams = field(default_factory=SdftParams)
    rollout: RolloutParams = field(default_factory=RolloutParams)
    replay: ReplayParams = field(default_factory=ReplayParams)
    eval: EvalParams = field(default_factory=EvalParams)
    gate: GateParams = field(default_factory=GateParams)
    promotion: PromotionParams = field(default_factory=PromotionParams)
    # Where stage outputs go (DVC outputs, never git).
    artifacts_dir: str = "artifacts"

    @property
    def layout(self) -> Layout:
        """Where each stage writes (sdft/layout.py): the CLI defaults, dvc.yaml and the flows agree on it."""
        return Layout(Path(self.artifacts_dir), frozenset(self.probes))

    def gate_for(self, skill: str) -> GateParams:
        overrides = self.skill(skill).gate
        return _build(GateParams, {**dataclasses.asdict(self.gate), **overrides}, f"params.skills.{skill}.gate")

    def skill(self, name: str) -> SkillSpec:
        spec = self.skills.get(name) or self.probes.get(name)
        if spec is None:
            known = ", ".join([*self.skills, *self.probes]) or "none"
            raise SdftError(
                f"unknown skill {name!r} (known: {known}).",
                fix="add it under `skills:` (or `probes:`) in params.yaml with its data path.",
            )
        return spec

    def parent(self, name: str) -> str:
        """The skill learned before `name`, or "base"."""
        return self.skill(name).after

    def skills_through(self, name: str) -> list[str]:
        """The curriculum up to and including `name`, in learning order."""
        order = list(self.skills)
        return order[: order.index(name) + 1]


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_type_ok(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_type_ok(k, args[0]) and _type_ok(v, args[1]) for k, v in value.items())
    if hint is float:  # YAML writes 1e-4 as a string; ints are fine; bools are not numbers here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return {float: "a number", int: "an integer", bool: "true or false", str: "text"}.get(hint, str(hint).replace("typing.", ""))


def _checked(value: Any, hint: Any, f: dataclasses.Field, where: str) -> Any:
    """Type, enum and range of one params.yaml value, checked at load so no run starts on a bad one."""
    if isinstance(value, str) and hint is float:
        try:  # PyYAML reads `1e-4` (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if not _type_ok(value, hint):
        raise SdftError(f"`{where}` is {value!r}; it must be {_describe(hint)}.", fix=f"set `{where}` to {_describe(hint)}.")
    rng = f.metadata.get("range")
    if rng and value not in f.metadata.get("also", ()):
        lo, hi, lo_open, hi_open = rng
        low_bad = lo is not None and (value <= lo if lo_open else value < lo)
        high_bad = hi is not None and (value >= hi if hi_open else value > hi)
        if low_bad or high_bad:
            span = f"{'(' if lo_open else '['}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{')' if hi_open else ']'}"
            extra = f" or {', '.join(map(str, f.metadata['also']))}" if f.metadata.get("also") else ""
            raise SdftError(f"`{where}` is {value!r}, outside {span}{extra}.", fix=f"set `{where}` within {span}{extra}.")
    return value


def _build(cls, raw: Any, where: str):
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses, rejecting unknown keys."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SdftError(f"`{where}` must be a mapping, got {type(raw).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
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
        elif name in ("skills", "probes"):
            if not isinstance(value, dict):
                raise SdftError(f"`{where}.{name}` must be a mapping of name -> {{path, scorer, ...}}.")
            kwargs[name] = {
                key: _build(SkillSpec, {**(spec or {}), "name": key}, f"{where}.{name}.{key}") for key, spec in value.items()
            }
        else:
            kwargs[name] = _checked(value, hints[name], f, f"{where}.{name}")
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
    check_curriculum(params, str(path))
    return params


def check_skill_name(name: str, where: str | None = None, what: str = "skill name") -> None:
    if not SKILL_NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise SdftError(
            f"{what} {name!r}: a name must be letters, digits, '_' or '-' (it becomes a folder and a stage name)"
            + (f", and {name!r} is reserved" if name in RESERVED_NAMES else "") + ".",
            where=where, fix="rename it, e.g. `my_skill`.")


def check_curriculum(params: Params, where: str) -> None:
    from .scoring import SCORERS  # stdlib only: cheap to import

    kinds = {"knowledge", "format", "procedure", "general", *params.sdft.teacher_templates}
    for group in ("skills", "probes"):
        for name, spec in getattr(params, group).items():
            check_skill_name(name, where, f"`{group}.{name}`")
            if spec.kind == "lm_eval" or spec.tasks:
                _check_lm_eval(group, name, spec, where)
                continue
            if group == "skills":
                params.gate_for(name)  # per-skill gate overrides: same checks as `gate:`
            if spec.scorer not in SCORERS:
                raise SdftError(f"`{group}.{name}.scorer` is {spec.scorer!r}.", where=where, fix=f"use one of {sorted(SCORERS)}.")
            if spec.kind not in kinds:
                raise SdftError(f"`{group}.{name}.kind` is {spec.kind!r}.", where=where,
                                fix=f"use one of {sorted(kinds)} (or add a template for it under `sdft.teacher_templates`).")
    bad = [f for f in params.train.prompt_framings if f.count("{prompt}") != 1]
    if bad or not params.train.prompt_framings:
        raise SdftError(f"`train.prompt_framings` needs each framing to hold `{{prompt}}` exactly once; got {bad or '[]'}.",
                        where=where, fix='e.g. ["{prompt}", "Question: {prompt}"] (["{prompt}"] = no rewording).')
    for pattern in params.train.freeze:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SdftError(f"params.train.freeze holds {pattern!r}, which is not a regular expression ({exc}).", where=where,
                            fix='escape the dots: e.g. "^model\\\\.embed_tokens\\\\." in YAML double quotes.') from None
    if params.train.freeze and params.train.lora.enabled:
        raise SdftError("params.train.freeze is set with `train.lora.enabled: true`; LoRA already holds every base weight.",
                        where=where, fix="use one of them: `train.freeze: []` or `train.lora.enabled: false`.")
    rp = params.replay
    if rp.anchor_projection_share > 0 and (params.train.method != "sdft" or params.train.lora.enabled
                                           or rp.anchor_fraction == 0 or rp.anchor_rollouts != "parent_greedy"):
        raise SdftError("params.replay.anchor_projection_share > 0 needs SDFT (train.method: sdft) without LoRA, with "
                        "anchors on the parent's greedy answers: the general-input subspaces are measured along them.",
                        where=where, fix="set replay.anchor_fraction > 0 and replay.anchor_rollouts: parent_greedy "
                                         "(train.method: sdft, train.lora.enabled: false), or "
                                         "replay.anchor_projection_share: 0.")
    tp, generations = params.train, params.sdft.num_generations
    if tp.method == "sdft" and (tp.per_device_train_batch_size * tp.gradient_accumulation_steps) % generations:
        raise SdftError(f"params.sdft.num_generations is {generations}, and a step's {tp.per_device_train_batch_size} "
                        f"x {tp.gradient_accumulation_steps} rows are not whole prompts' worth of rollouts.", where=where,
                        fix="make train.per_device_train_batch_size x gradient_accumulation_steps a multiple of it.")
    if params.replay.prior_fraction + params.replay.anchor_fraction > 0.75:
        raise SdftError("`replay.prior_fraction` + `replay.anchor_fraction` is over 0.75: the new skill would get "
                        "under a quarter of each batch.", where=where, fix="lower one of them.")
    both = sorted(set(params.skills) & set(params.probes))
    if both:
        raise SdftError(f"{both} are both a skill and a probe.", where=where, fix="give each a unique name.")
    previous = "base"
    for name, spec in params.skills.items():
        if spec.after != previous:
            raise SdftError(
                f"skill {name!r} has `after: {spec.after or '(missing)'}` but follows {previous!r}.",
                where=where,
                fix=f"set `after: {previous}` (skills are learned in the order listed).",
            )
        previous = name


def add_params_arguments(parser) -> None:
    """`--params FILE` and repeatable `--set KEY=VALUE`, for the `sdft` CLI and every bench script alike."""
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a params.yaml value for this command, e.g. --set train.learning_rate=1e-4 "
                             "(repeatable; checked like the file). Stages under DVC read params.yaml only: there, "
                             "use `dvc exp run -S KEY=VALUE`.")


def params_from_args(args) -> Params:
    return with_overrides(load_params(args.params), args.set or [])


def only_skills(params: Params, names: list[str], where: str = "--skills") -> Params:
    """The curriculum cut to `names` (in params.yaml's order), re-chained from the base: the bench scripts'
    way to measure the first skill(s) alone."""
    unknown = sorted(set(names) - set(params.skills))
    if unknown:
        raise SdftError(f"{unknown} are not skills in params.yaml.", where=where, fix=f"use some of {list(params.skills)}.")
    kept = [name for name in params.skills if name in names]
    chained = {name: {**dataclasses.asdict(params.skills[name]), "after": after}
               for name, after in zip(kept, ["base", *kept])}
    return with_overrides(params, {"skills": chained}, where=where)


def _check_lm_eval(group: str, name: str, spec: SkillSpec, where: str) -> None:
    if group != "probes" or spec.kind != "lm_eval":
        raise SdftError(f"`{group}.{name}` has lm_eval `tasks` but " + ("is a skill" if group == "skills" else
                        f"`kind: {spec.kind}`") + ": lm-evaluation-harness tasks are measured, never trained on.",
                        where=where, fix="move it under `probes:` with `kind: lm_eval`." if group == "skills"
                        else "set `kind: lm_eval`, or remove `tasks`.")
    if not spec.tasks or not all(isinstance(t, str) and t for t in spec.tasks):
        raise SdftError(f"`probes.{name}` has `kind: lm_eval` but no `tasks`.", where=where,
                        fix="list the task names its folder's YAML files define, e.g. `tasks: [my_qa]`.")


def to_dict(params: Params) -> dict[str, Any]:
    return dataclasses.asdict(params)


def with_overrides(params: Params, overrides: dict[str, Any] | list[str] | None, where: str = "--set") -> Params:
    """A new Params with dotted-key overrides applied and every value checked again, as at load.

    `overrides`: `KEY=VALUE` strings as typed after `sdft --set` (VALUE read as YAML: `1e-4`, `true`, `[a, b]`)
    or a {dotted key: value} mapping (the bench scripts). The one way settings change outside params.yaml;
    a key that does not exist is refused (a typo never silently does nothing).
    """
    if not overrides:
        return params
    pairs = overrides.items() if isinstance(overrides, dict) else [_split_override(o, where) for o in overrides]
    raw = to_dict(params)
    for key, value in pairs:
        *path, leaf = key.split(".")
        node = raw
        for depth, part in enumerate(path):
            if not isinstance(node.get(part), dict):
                raise SdftError(f"`{key}`: `{'.'.join(path[:depth + 1])}` is not a section of params.", where=where,
                                fix="use a dotted key from params.yaml, e.g. `train.learning_rate=1e-4`.")
            node = node[part]
        open_mapping = len(path) >= 1 and path[0] in ("skills", "probes") and len(path) <= 2
        if leaf not in node and not open_mapping:
            raise SdftError(f"unknown key `{key}`.", where=where,
                            fix=f"use one of {sorted(node)} under `{'.'.join(path) or 'params'}`.")
        node[leaf] = value
    built = _build(Params, raw, "params")
    check_curriculum(built, where)
    return built


def _split_override(text: str, where: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SdftError(f"`{text}` is not KEY=VALUE.", where=where, fix="write e.g. `--set train.learning_rate=1e-4`.")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise SdftError(f"the value in `{text}` is not valid YAML ({exc}).", where=where) from None
