"""Greedy batched generation behind one small interface (`Generator`: answers as text, or as token ids with the
stop token kept), and the engine choice.

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
from .models import load_model, load_tokenizer, stop_token_ids
from .params import Params
from .prompts import render_prompt
from .vllm_engine import vllm_available

log = logging.getLogger(__name__)
VLLM_INSTALL = "install it with `make install` (VLLM=cpu, the default, or VLLM=gpu), or set `rollout.engine: hf`."


class Generator(Protocol):
    def generate(self, prompts: list, max_new_tokens: int) -> list[str]: ...

    def greedy_ids(self, prompts: list, max_new_tokens: int) -> list[list[int]]: ...

    def close(self) -> None:
        """Give back what the engine holds (a vLLM engine's KV cache and weights); nothing for transformers."""


def through_first_stop(ids: list[int], stops: list[int]) -> list[int]:
    """An answer's tokens up to and including its stop token (what follows is padding); all of them if it has none."""
    for i, t in enumerate(ids):
        if t in stops:
            return ids[: i + 1]
    return ids


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


def make_generator(params: Params, model_path: str | Path, model=None, tokenizer=None) -> Generator:
    """The evaluation generator for a checkpoint directory, on the configured engine. `model`/`tokenizer`: that
    checkpoint already loaded, used as they are by transformers instead of being read again (vLLM reads the folder)."""
    if resolve_engine(params) == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model_path, params, max_num_seqs=params.eval.batch_size)
    return HFGenerator(model if model is not None else load_model(model_path, params.model),
                       tokenizer if tokenizer is not None else load_tokenizer(model_path, params.model.trust_remote_code),
                       params.eval.batch_size)


class HFGenerator:
    def __init__(self, model, tokenizer, batch_size: int = 16, progress: bool = True):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size, self.progress = batch_size, progress

    def close(self) -> None:
        """The model belongs to the caller (it may go on to train): nothing to free here."""

    def generate(self, prompts: list, max_new_tokens: int) -> list[str]:
        return [self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                for ids in self.greedy_ids(prompts, max_new_tokens)]

    @torch.no_grad()
    def greedy_ids(self, prompts: list, max_new_tokens: int) -> list[list[int]]:
        """Each prompt's greedy answer as token ids, its stop token kept when it stopped before `max_new_tokens`."""
        texts = [render_prompt(p, self.tokenizer) for p in prompts]
        stops = stop_token_ids(self.model.generation_config.eos_token_id, self.tokenizer)
        # Longest first keeps padding small; results go back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        outputs: dict[int, list[int]] = {}
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
                eos_token_id=stops,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            for i, ids in zip(idx, out[:, enc["input_ids"].shape[1] :].tolist()):
                outputs[i] = through_first_stop(ids, stops)
        return [outputs[i] for i in range(len(texts))]
