"""Greedy batched generation behind one small interface (`Generator.generate`), and the engine choice.

Two engines: `hf` (transformers `generate`, below) and `vllm` (`sdft.vllm_engine`), picked by
`rollout.engine` in params.yaml for SDFT rollouts and for evaluation alike. Prompts are rendered by
`sdft.prompts.render_prompt`, the same way the trainer does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from .errors import SdftError
from .models import load_model, load_tokenizer
from .params import Params
from .prompts import render_prompt
from .vllm_engine import vllm_available

log = logging.getLogger(__name__)
VLLM_INSTALL = "install it with `make install` (VLLM=cpu, the default, or VLLM=gpu), or set `rollout.engine: hf`."


class Generator(Protocol):
    def generate(self, prompts: list, max_new_tokens: int) -> list[str]: ...


def resolve_engine(params: Params) -> str:
    """`hf` or `vllm`, from `rollout.engine`; `auto` falls back to transformers, and says so."""
    engine = params.rollout.engine
    if engine == "hf":
        return "hf"
    if vllm_available():
        return "vllm"
    if engine == "vllm":
        raise SdftError("rollout.engine is `vllm` but vLLM is not installed.", where="params.yaml", fix=VLLM_INSTALL)
    log.warning("rollout.engine=auto: vLLM is not installed, generating with transformers (%s)", VLLM_INSTALL)
    return "hf"


def make_generator(params: Params, model_path: str | Path) -> Generator:
    """The evaluation generator for a checkpoint directory, on the configured engine."""
    if resolve_engine(params) == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model_path, params, max_num_seqs=params.eval.batch_size)
    return HFGenerator(load_model(model_path, params.model), load_tokenizer(model_path, params.model.trust_remote_code),
                       params.eval.batch_size)


class HFGenerator:
    def __init__(self, model, tokenizer, batch_size: int = 16, progress: bool = True):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size, self.progress = batch_size, progress

    @torch.no_grad()
    def generate(self, prompts: list, max_new_tokens: int) -> list[str]:
        texts = [render_prompt(p, self.tokenizer) for p in prompts]
        # Longest first keeps padding small; results go back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        outputs: dict[int, str] = {}
        self.tokenizer.padding_side = "left"
        batches = range(0, len(order), self.batch_size)
        for start in tqdm(batches, desc="generating", disable=not self.progress, leave=False):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.model.device)
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for i, text in zip(idx, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                outputs[i] = text.strip()
        return [outputs[i] for i in range(len(texts))]
