"""SFT baseline recipe: next-token cross-entropy on the demonstration tokens only (prompt masked)."""

from __future__ import annotations

from pathlib import Path
from datasets import Dataset

from ..generation import make_generator
from ..params import Params, SkillSpec
from ..prompts import sft_rows
from ..replay import anchor_answers
from .common import lora_config, training_kwargs


def build_config(params: Params, out_dir: Path):
    from trl import SFTConfig

    tp = params.train
    return SFTConfig(
        **training_kwargs(tp, out_dir, params.model),
        max_length=tp.max_prompt_length + tp.max_completion_length,
        completion_only_loss=True,  # the loss covers the demonstration, never the prompt
        packing=False,
        trust_remote_code=params.model.trust_remote_code,
    )


def build_trainer(params: Params, skill: SkillSpec, records: list[dict], model, tokenizer, out_dir: Path,
                  mixed: bool = False):
    """`records`: the rows in training order when `mixed` (a replay mixture, sdft/replay.py; anchors get
    the parent's own answers as demonstrations here), else shuffled by the trainer."""
    from torch.utils.data import SequentialSampler
    from trl import SFTTrainer

    class FixedOrderSFTTrainer(SFTTrainer):
        def _get_train_sampler(self, dataset=None):  # keep each batch's replay shares
            return SequentialSampler(dataset if dataset is not None else self.train_dataset)

    if any(r.get("source") == "anchor" for r in records):
        # SFT's anchor targets, before any update: the parent's own greedy answers (what SDFT's anchors match).
        answers = anchor_answers(records, lambda prompts: parent_answers(params, model, tokenizer, prompts))
        records = [r if a is None else {**r, "demonstration": a or "."} for r, a in zip(records, answers)]
    tokenizer.padding_side = "right"
    args = build_config(params, out_dir)
    if mixed:
        args.num_train_epochs = 1
    return (FixedOrderSFTTrainer if mixed else SFTTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(sft_rows(records, tokenizer)),
        processing_class=tokenizer,
        peft_config=lora_config(params.train),
    )


def parent_answers(params: Params, model, tokenizer, prompts: list[str]) -> list[str]:
    """The parent's greedy answers on the evaluation's engine (vLLM when installed, as SDFT's anchors too: the
    baseline is not handicapped by the slower engine; the answers are the same). `model` is still the parent here,
    loaded from `model.name_or_path`."""
    parent = make_generator(params, model.name_or_path, model, tokenizer)
    try:
        return parent.generate(prompts, params.train.max_completion_length)
    finally:
        parent.close()  # a vLLM engine's memory back before training starts


def finish(trainer) -> dict:
    """After `.train()`: SFT samples nothing, so it has no rollout metrics to report."""
    return {}
