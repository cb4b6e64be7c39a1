"""SDFT recipe: self-distillation with the demonstration in the teacher's context.

Per step (TRL `SDFTTrainer`): the current weights sample one rollout per prompt, from the prompt alone
(the paper) or with the demonstration in context (`sdft.generate_from_teacher`); the teacher (an EMA of
the student) scores those tokens with prompt + demonstration in context; the prompt-only student
minimises the per-token forward KL(teacher || student) over the full vocabulary, skipping the first
completion tokens, averaged per rollout (or weighted toward large-KL tokens: `sdft.disagreement_power`),
plus an optional SFT term (`sdft.sft_weight`); the EMA teacher then moves toward the student. With replay
(`replay:` in params.yaml) earlier skills' records and general anchor prompts share each batch
(sdft/replay.py; the trainer's additions: sdft_trainer.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from datasets import Dataset

from ..generation import HFGenerator, resolve_engine
from ..headroom import Headroom, check_headroom, measure_headroom
from ..params import Params, SkillSpec
from ..errors import SdftError
from ..prompts import render_prompt, sdft_rows, to_trl_template
from ..replay import anchor_answers
from .common import lora_config, training_kwargs

# TRL marks SDFTTrainer experimental and warns on every import; we pin TRL, so the warning is noise.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def build_config(params: Params, skill: SkillSpec, out_dir: Path):
    from trl.experimental.sdft import SDFTConfig

    tp, sp = params.train, params.sdft
    # Every SDFT knob is set explicitly: TRL's own defaults (base teacher, top-k JSD) differ from the paper.
    return SDFTConfig(
        **training_kwargs(tp, out_dir, params.model),
        max_prompt_length=tp.max_prompt_length,
        max_completion_length=tp.max_completion_length,
        num_generations=sp.num_generations,
        generate_from_teacher=sp.generate_from_teacher,
        temperature=sp.temperature,
        top_p=sp.top_p,
        min_p=sp.min_p or None,  # TRL: None = off
        teacher_model_kind=sp.teacher_model_kind,
        teacher_update_rate=sp.teacher_update_rate,
        teacher_sync_steps=sp.teacher_sync_steps,
        distillation_mode=sp.distillation_mode,
        distillation_alpha=sp.distillation_alpha,
        distillation_topk=sp.distillation_topk,
        distillation_is_clip=None,  # the paper's loss has no importance-sampling correction
        num_loss_tokens_to_skip=sp.num_loss_tokens_to_skip,
        teacher_prompt_template=to_trl_template(sp.template_for(skill.kind)),
        trust_remote_code=params.model.trust_remote_code,
    )


def check_teacher_views(rows: list[dict], tokenizer, max_prompt_length: int, skill: str) -> None:
    """TRL left-truncates every prompt at `max_prompt_length`: a teacher view cut there would lose the start of
    its demonstration without a word. Refuse instead, naming the record and the fix."""
    for row in rows:
        text = render_prompt(row["privileged_context"], tokenizer)
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if n > max_prompt_length:
            raise SdftError(
                f"the teacher's prompt for a {row['source']} row of {skill!r} (demonstration in context) is {n} tokens, "
                f"over train.max_prompt_length = {max_prompt_length}: TRL would cut its start off.",
                where="params.yaml: train.max_prompt_length",
                fix=f"raise `train.max_prompt_length` to at least {n}, or shorten that demonstration.")


def rollout_cap(params: Params, records: list[dict], tokenizer) -> int:
    """The run's rollout length: `sdft.rollout_length_factor` x its longest demonstration, within the configured cap."""
    cap, factor = params.train.max_completion_length, params.sdft.rollout_length_factor
    demos = {r["demonstration"] for r in records if r.get("demonstration")}  # a mixture repeats them: count each once
    if factor <= 0 or not demos:
        return cap
    longest = max(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in demos)
    return min(cap, math.ceil(factor * longest) + 1)  # +1: room for the end-of-turn token after the answer


def check_overlap(params: Params) -> None:
    """`rollout.overlap` writes the next step's rollouts on the vLLM engine while a step trains: refused, with the fix,
    where there is no such engine or no single rollout batch per step to write ahead."""
    if not params.rollout.overlap:
        return
    if resolve_engine(params) != "vllm":
        raise SdftError("rollout.overlap needs the vLLM rollout engine (transformers generates in the training "
                        "process itself), and this run uses transformers.", where="params.yaml: rollout.overlap",
                        fix="set rollout.engine: vllm with vLLM installed (`make install`), or rollout.overlap: false.")
    if params.train.gradient_accumulation_steps != 1:
        raise SdftError("rollout.overlap writes one step's rollouts ahead, and with gradient accumulation a step "
                        "takes several rollout batches.", where="params.yaml: rollout.overlap",
                        fix="set train.gradient_accumulation_steps: 1 (raise per_device_train_batch_size instead), "
                            "or rollout.overlap: false.")


def build_trainer(params: Params, skill: SkillSpec, records: list[dict], model, tokenizer, out_dir: Path,
                  mixed: bool = False):
    """`records`: the rows in training order when `mixed` (a replay mixture, sdft/replay.py), else shuffled by TRL."""
    tokenizer.padding_side = "left"
    args = build_config(params, skill, out_dir)
    args.max_completion_length = rollout_cap(params, records, tokenizer)
    if mixed:  # the mixture fixes each batch's shares and already spans every epoch
        args.shuffle_dataset, args.num_train_epochs = False, 1
    # A record without `kind` is the new skill's; replayed records carry their own skill's kind.
    records = [{"kind": skill.kind, **r} for r in records]
    rows = sdft_rows(records, tokenizer, params.sdft.template_for)
    check_teacher_views(rows, tokenizer, args.max_prompt_length, skill.name)
    check_overlap(params)
    # The engine starts from the checkpoint the model was loaded from (the parent); the trainer syncs it every step.
    engine = None
    if resolve_engine(params) == "vllm":
        from ..vllm_engine import VLLMEngine

        engine = VLLMEngine(model.name_or_path, params, max_num_seqs=args.per_device_train_batch_size)
    # Before any update the rollout engine holds the parent's weights: it answers for the headroom check and the anchors.
    parent = engine or HFGenerator(model, tokenizer, params.eval.batch_size, progress=False)
    try:
        headroom = teacher_headroom(params, skill, records, parent.generate)
    except SdftError:
        if engine is not None:  # refused before training: the engine's memory goes back now, not at exit
            engine.close()
        raise
    if params.replay.anchor_rollouts == "parent_greedy" and any(r.get("source") == "anchor" for r in records):
        # The parent's greedy answers as token ids, stop token kept: the tokens the student is distilled on,
        # exactly as the parent wrote them.
        answers = anchor_answers(records, lambda prompts: parent.greedy_ids(prompts, args.max_completion_length))
        rows = [row if a is None else {**row, "rollout": a} for row, a in zip(rows, answers, strict=True)]
    kwargs = dict(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(params.train),
        disagreement_power=params.sdft.disagreement_power,
        sft_weight=params.sdft.sft_weight,
        prior_sft_weight=params.replay.prior_sft_weight,
        anchor_skip_tokens=params.replay.anchor_skip_tokens,
        projection_share=params.replay.anchor_projection_share,
    )
    if engine is not None:
        from .vllm_rollouts import VLLMRolloutSDFTTrainer

        trainer = VLLMRolloutSDFTTrainer(**kwargs, engine=engine, overlap=params.rollout.overlap)
    else:
        from .sdft_trainer import PipelineSDFTTrainer

        trainer = PipelineSDFTTrainer(**kwargs)
    trainer.teacher_headroom = headroom.as_dict() if headroom else None  # into the run's metrics (`finish`)
    return trainer


def teacher_headroom(params: Params, skill: SkillSpec, records: list[dict], generate) -> Headroom | None:
    """The new skill's teacher against its student on the training records this run trains on (all of them unless
    `train.max_steps` cuts the run short), refused below `sdft.min_teacher_headroom` (sdft/headroom.py). Not measured
    when the check is off."""
    if params.sdft.min_teacher_headroom <= 0:
        return None
    new: dict[str, dict] = {}
    for r in records:  # the new skill's records, each once (the mixture repeats them pass by pass)
        if r.get("source", "new") == "new":
            new.setdefault(r["id"], r)
    headroom = measure_headroom(generate, list(new.values()), params.sdft.template_for(skill.kind), skill.scorer,
                                params.eval.max_new_tokens)
    check_headroom(headroom, params.sdft.min_teacher_headroom, skill.name, skill.path)
    return headroom


def finish(trainer) -> dict:
    """After `.train()`: which engine wrote the rollouts (for vLLM, what the rollouts and weight syncs cost), and the
    engine's memory freed for the checkpoint writer."""
    from .vllm_rollouts import VLLMRolloutSDFTTrainer

    run = {"max_completion_length": trainer.max_completion_length, "teacher_headroom": trainer.teacher_headroom}
    if not isinstance(trainer, VLLMRolloutSDFTTrainer):
        return {"rollout_engine": "hf", **run}
    stats = trainer.rollout_stats()
    trainer.engine.close()
    return {**stats, **run}
