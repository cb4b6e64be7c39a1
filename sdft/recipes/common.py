"""Settings every recipe shares, translated once from `params.yaml` to TRL/transformers names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import SdftError
from ..params import ModelParams, TrainParams


def precision_kwargs(mp: ModelParams) -> dict[str, bool]:
    """`model.dtype` for training: fp32 master weights (`sdft.models.load_model(for_training=True)`) with bf16/fp16
    autocast, never an optimizer stepping half-precision weights directly."""
    if mp.dtype == "float16" and not torch.cuda.is_available():
        raise SdftError("`model.dtype: float16` trains with fp16 autocast, which needs a CUDA GPU; none is visible.",
                        where="params.yaml: model.dtype", fix="use `bfloat16` (CPU autocast) or `float32` on this machine.")
    kwargs = {"bf16": mp.dtype == "bfloat16", "fp16": mp.dtype == "float16"}
    if kwargs["bf16"] and not torch.cuda.is_available():
        kwargs["use_cpu"] = True  # transformers takes bf16 autocast on a CPU only when told it is one
    return kwargs


def training_kwargs(tp: TrainParams, out_dir: Path, mp: ModelParams) -> dict[str, Any]:
    return dict(
        **precision_kwargs(mp),
        output_dir=str(out_dir),
        learning_rate=tp.learning_rate,
        num_train_epochs=tp.num_train_epochs,
        max_steps=tp.max_steps,
        per_device_train_batch_size=tp.per_device_train_batch_size,
        gradient_accumulation_steps=tp.gradient_accumulation_steps,
        lr_scheduler_type=tp.lr_scheduler_type,
        warmup_steps=tp.warmup_ratio,  # transformers 5: a float < 1 is a fraction of the steps
        weight_decay=tp.weight_decay,
        max_grad_norm=tp.max_grad_norm,
        seed=tp.seed,
        data_seed=tp.seed,
        logging_steps=tp.logging_steps,
        logging_nan_inf_filter=False,  # a NaN step must show as NaN (sdft.train refuses the checkpoint), not 0.0
        # Mid-run checkpoints only for resuming (sdft.train keeps the newest complete one); the checkpoint that
        # matters is written by sdft.train, atomically.
        save_strategy="steps" if tp.save_steps else "no",
        save_steps=tp.save_steps or 500,
        save_total_limit=1,
        report_to="none",  # MLflow logging is the pipeline's job, with lineage tags
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def lora_config(tp: TrainParams):
    if not tp.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=tp.lora.r,
        lora_alpha=tp.lora.alpha,
        lora_dropout=tp.lora.dropout,
        target_modules=tp.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def freeze_matching(model, patterns: list[str]) -> None:
    """`train.freeze`: hold every parameter whose name matches one of `patterns` at its loaded value (no gradient, so
    the optimizer never holds or moves it; the EMA teacher and the checkpoint keep the parent's value). The train
    metrics count what is left to train (`sdft.train.train_skill`, after LoRA too)."""
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(re.search(pattern, name) for name in names):
            shown = ", ".join(names[:3] + ["..."] + names[-2:]) if len(names) > 5 else ", ".join(names)
            raise SdftError(f"`train.freeze` pattern {pattern!r} matches no parameter of the model.",
                            where="params.yaml: train.freeze",
                            fix=f"match the model's parameter names ({shown}); a tied output layer is named by its "
                                "input embeddings only.")
    for name, param in model.named_parameters():
        if any(re.search(pattern, name) for pattern in patterns):
            param.requires_grad_(False)
    if patterns and not any(p.requires_grad for p in model.parameters()):
        raise SdftError("`train.freeze` holds every parameter of the model: nothing would train.",
                        where="params.yaml: train.freeze", fix="narrow the patterns.")


def merged(model):
    """A plain model for the checkpoint: LoRA adapters folded in, so the next skill starts from it."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload(adapter_names=["default"]) if "default" in model.peft_config else model.merge_and_unload()
    return model
