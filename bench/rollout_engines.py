"""vLLM vs transformers for SDFT on the embedded default, measured in one run, printed as one table.

Rows: rollout throughput (sampled tokens/s, every rollout forced to the full length so both engines
generate the same number of tokens), one SDFT optimizer step's wall time with each engine (median of
the steps after the first, which carries warm-up), and the per-step weight sync into vLLM.
`--eager-vs-compiled` measures instead vLLM with and without torch.compile (`rollout.enforce_eager`): engine start, rollout
throughput, and whether both serve the same greedy answers after the same weight sync (a compiled graph must not
keep serving the weights it was compiled with).
Usage: OMP_NUM_THREADS=2 python bench/rollout_engines.py [--prompts 8] [--tokens 64] [--steps 4] [--eager-vs-compiled]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
from transformers import TrainerCallback

from sdft.data import read_records, validate_records
from sdft.models import load_model, load_tokenizer, resolve_model
from sdft.params import load_params
from sdft.prompts import render_prompt
from sdft.recipes import sdft as sdft_recipe
from sdft.vllm_engine import VLLMEngine


class StepTimer(TrainerCallback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def hf_rollouts(model, tokenizer, prompt_ids: list[list[int]], tokens: int) -> int:
    tokenizer.padding_side = "left"
    batch = tokenizer.pad({"input_ids": prompt_ids}, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=tokens,
                             min_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id)
    return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompt_ids)


def vllm_rollouts(engine: VLLMEngine, prompt_ids: list[list[int]], tokens: int) -> int:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    sampling = SamplingParams(temperature=1.0, max_tokens=tokens, ignore_eos=True)
    outs = engine.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], sampling, use_tqdm=False)
    return sum(len(o.outputs[0].token_ids) for o in outs)


def throughput(run, repeats: int) -> float:
    run()  # warm-up (kernel selection, first allocations)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def eager_vs_compiled(params, path: str, model, prompt_ids: list[list[int]], tokens: int, repeats: int) -> dict:
    """Per mode: engine start (s), rollout tokens/s, greedy answers after a sync of `model` with its weights nudged
    (so the answers differ from the checkpoint's: a sync the engine ignored would show)."""
    nudged = copy.deepcopy(model)
    with torch.no_grad():
        for t in nudged.parameters():
            t.add_(torch.randn_like(t) * 0.02 * t.std())
    out = {}
    for eager in (True, False):
        p = copy.deepcopy(params)
        p.rollout.enforce_eager = eager
        start = time.perf_counter()
        engine = VLLMEngine(path, p, max_num_seqs=len(prompt_ids))
        started = time.perf_counter() - start
        rate = throughput(lambda: vllm_rollouts(engine, prompt_ids, tokens), repeats)
        before = engine.generate_ids(prompt_ids, tokens, temperature=0.0)
        engine.sync(nudged)
        out["eager" if eager else "compiled"] = (started, rate, before, engine.generate_ids(prompt_ids, tokens, temperature=0.0))
        engine.close()
    return out


def print_eager_vs_compiled(modes: dict) -> None:
    (e_start, e_rate, e_before, e_after), (c_start, c_rate, _, c_after) = modes["eager"], modes["compiled"]
    print("\n| vLLM | eager | compiled | compiled / eager |\n|---|---|---|---|")
    print(f"| engine start (s) | {e_start:.0f} | {c_start:.0f} | {c_start / e_start:.1f}x |")
    print(f"| rollout throughput (tokens/s) | {e_rate:.0f} | {c_rate:.0f} | {c_rate / e_rate:.2f}x |")
    same = sum(a == b for a, b in zip(e_after, c_after))
    moved = sum(a != b for a, b in zip(e_before, e_after))
    print(f"| greedy answers after the same sync | {len(e_after)} | {same} equal to eager's | "
          f"({moved} of {len(e_after)} changed by the sync) |")


def sdft_step_seconds(params, engine_name: str, path: str, records: list[dict], steps: int, out_dir: str):
    params = copy.deepcopy(params)
    params.rollout.engine = engine_name
    params.train.max_steps = steps
    skill = next(iter(params.skills.values()))
    tokenizer = load_tokenizer(path)
    trainer = sdft_recipe.build_trainer(params, skill, records, load_model(path, params.model), tokenizer, out_dir)
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    syncs = getattr(trainer, "sync_seconds", [])
    if hasattr(trainer, "engine"):
        trainer.engine.close()
    return statistics.median(timer.seconds[1:]), syncs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prompts", type=int, default=8, help="rollouts per batch (params.yaml's batch size: 8)")
    ap.add_argument("--tokens", type=int, default=64, help="tokens per rollout (params.yaml: 64)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="SDFT steps per engine (the first is not timed)")
    ap.add_argument("--eager-vs-compiled", action="store_true", help="instead: vLLM with torch.compile against eager")
    args = ap.parse_args()

    params = load_params(args.params)
    params.train.per_device_train_batch_size = args.prompts
    params.train.max_completion_length = args.tokens
    path = resolve_model(params.model.name_or_path)
    tokenizer = load_tokenizer(path)
    spec = next(iter(params.skills.values()))
    records = validate_records(read_records(spec.path), spec.path, spec.columns)[: args.prompts * args.steps]
    prompt_ids = [tokenizer(render_prompt(r["prompt"], tokenizer), add_special_tokens=False)["input_ids"]
                  for r in records[: args.prompts]]

    model = load_model(path, params.model).eval()
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    if args.eager_vs_compiled:
        print_eager_vs_compiled(eager_vs_compiled(params, path, model, prompt_ids, args.tokens, args.repeats))
        return
    hf_rate = throughput(lambda: hf_rollouts(model, tokenizer, prompt_ids, args.tokens), args.repeats)
    engine = VLLMEngine(path, params, max_num_seqs=args.prompts)
    vllm_rate = throughput(lambda: vllm_rollouts(engine, prompt_ids, args.tokens), args.repeats)
    sync = [engine.sync(model) for _ in range(args.repeats)]
    engine.close()
    model = None  # its memory is the trainers' now (a `del` would leave the lambdas above naming nothing)

    hf_step, _ = sdft_step_seconds(params, "hf", path, records, args.steps, "/tmp/bench-sdft-hf")
    vllm_step, step_syncs = sdft_step_seconds(params, "vllm", path, records, args.steps, "/tmp/bench-sdft-vllm")

    print(f"\n{params.model.name_or_path} ({n_params:.0f}M params, {params.model.dtype}), {args.prompts} prompts x "
          f"{args.tokens} tokens; {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}\n")
    print("| measure | transformers | vLLM | vLLM / transformers |\n|---|---|---|---|")
    print(f"| rollout throughput (tokens/s) | {hf_rate:.0f} | {vllm_rate:.0f} | {vllm_rate / hf_rate:.2f}x |")
    print(f"| one SDFT step (s) | {hf_step:.1f} | {vllm_step:.1f} | {vllm_step / hf_step:.2f}x |")
    print(f"| weight sync into vLLM (s) | — | {statistics.median(sync):.2f} (in training: "
          f"{statistics.median(step_syncs):.2f}) | — |")


if __name__ == "__main__":
    main()
