"""SDFT recipe: self-distillation with the demonstration in the teacher's context.

Per step (TRL `SDFTTrainer`): the current weights sample one rollout per prompt, from the prompt alone
(the paper) or with the demonstration in context (`sdft.generate_from_teacher`); the teacher (an EMA of
the student) scores those tokens with prompt + demonstration in context; the prompt-only student
minimises the per-token forward KL(teacher || student) over the full vocabulary, skipping the first
completion tokens, averaged per rollout (or weighted toward large-KL tokens: `sdft.disagreement_power`,
`token_weights.py`); the EMA teacher then moves toward the student.
"""

from __future__ import annotations

import os
from pathlib import Path
from datasets import Dataset

from ..generation import resolve_engine
from ..params import Params, SkillSpec
from ..prompts import sdft_rows, to_trl_template
from .common import lora_config, training_kwargs

# TRL marks SDFTTrainer experimental and warns on every import; we pin TRL, so the warning is noise.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def build_config(params: Params, skill: SkillSpec, out_dir: Path):
    from trl.experimental.sdft import SDFTConfig

    tp, sp = params.train, params.sdft
    # Every SDFT knob is set explicitly: TRL's own defaults (base teacher, top-k JSD) differ from the paper.
    return SDFTConfig(
        **training_kwargs(tp, out_dir),
        max_prompt_length=tp.max_prompt_length,
        max_completion_length=tp.max_completion_length,
        num_generations=sp.num_generations,
        generate_from_teacher=sp.generate_from_teacher,
        temperature=sp.temperature,
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


def build_trainer(params: Params, skill: SkillSpec, records: list[dict], model, tokenizer, out_dir: Path):
    tokenizer.padding_side = "left"
    args = build_config(params, skill, out_dir)
    kwargs = dict(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(sdft_rows(records, tokenizer)),
        processing_class=tokenizer,
        peft_config=lora_config(params.train),
        disagreement_power=params.sdft.disagreement_power,
    )
    if resolve_engine(params) == "vllm":
        from ..vllm_engine import VLLMEngine
        from .vllm_rollouts import VLLMRolloutSDFTTrainer

        # The engine starts from the checkpoint the model was loaded from; the trainer syncs it every step.
        engine = VLLMEngine(model.name_or_path, params, max_num_seqs=args.per_device_train_batch_size)
        return VLLMRolloutSDFTTrainer(**kwargs, engine=engine)
    from .token_weights import TokenWeightedSDFTTrainer

    return TokenWeightedSDFTTrainer(**kwargs)

