"""Greedy batched generation behind one small interface (`Generator.generate`).

The HF engine is here; a vLLM engine can stand behind the same interface for rollouts and
evaluation. Prompts are rendered by `sdft.prompts.render_prompt`, the same way the trainer does.
"""

from __future__ import annotations

from typing import Protocol

import torch
from tqdm.auto import tqdm

from .prompts import render_prompt


class Generator(Protocol):
    def generate(self, prompts: list, max_new_tokens: int) -> list[str]: ...


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
