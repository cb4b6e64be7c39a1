"""GPU check (issues #16 and #14): precision from params on CUDA, and what an SDFT step costs next to SFT.

Run on a GPU machine by `bash bench/gpu_check.sh` (it installs the carried wheels first); runs here on the CPU
too, on the tests' tiny model, so the script is checked before a GPU is ever lent.

1. Precision: for each `model.dtype` (float32, bfloat16, float16 on CUDA), one short `sdft.train.train_skill` per
   method (the real train stage, anchors on so the frozen parent is exercised) must leave finite losses and a
   checkpoint saved in that dtype; during training the optimizer's weights must be fp32 (master weights) while
   the student's and the teacher's logits come out of autocast in the half dtype, and the EMA teacher and the
   frozen parent must sit on the student's device.
2. Cost: median seconds per optimizer step (after warm-up) for SFT, SDFT with the committed defaults and SDFT with
   the paper's settings, on a model of SmolLM2-135M's shape (random weights, the real tokenizer) at the paper's
   32 prompts per step; rollouts by transformers `generate` (vLLM's CUDA wheel cannot travel), so every rollout
   runs to `max_completion_length` (random weights never emit EOS): an upper bound on the rollout share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sdft.data import read_records, validate_records, write_skill  # noqa: E402
from sdft.params import load_params, with_overrides  # noqa: E402
from sdft.train import prepare_trainer, train_skill  # noqa: E402

SKILL = "zorbia_facts"


class StepProbe(TrainerCallback):
    """Per-step wall time, and what each model's first Linear layer saw: weight dtype, output dtype, device
    (not lm_head: TRL's SFT multiplies by its weight directly, in chunks, and never calls it)."""

    def __init__(self, trainer):
        self.trainer, self.times, self.seen, self._t = trainer, [], {}, None
        for name in ("model", "teacher_model", "parent_model"):
            module = getattr(trainer, name, None)
            if module is not None:
                first = next(m for m in module.modules() if isinstance(m, torch.nn.Linear))
                first.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, args, output):
            self.seen.setdefault(name, set()).add((str(module.weight.dtype).removeprefix("torch."),
                                                   str(output.dtype).removeprefix("torch."), module.weight.device.type))
        return hook

    def on_step_begin(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t)


def random_model(config_dir: Path, out: Path) -> str:
    """SmolLM2-135M's shape with random weights (no weights can travel to the GPU box), and its real tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(config_dir)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(out)
    return str(out)


def setup(params, model: str, work: Path, dtype: str, method: str, steps: int, batch: int, paper: bool = False,
          **extra):
    overrides = {"model.name_or_path": model, "model.dtype": dtype, "train.method": method, "train.max_steps": steps,
                 "train.per_device_train_batch_size": batch, "train.num_train_epochs": 1000, "rollout.engine": "hf",
                 "replay.prior_fraction": 0.0,  # one skill: nothing earlier to replay; anchors stay on
                 "replay.anchor_prompts": str(ROOT / params.replay.anchor_prompts),
                 "sdft.min_teacher_headroom": 0.0,  # random weights follow no demonstration: a timing run, nothing to check
                 **extra}
    if paper:  # the paper's settings (params.yaml notes where the defaults depart from them)
        overrides.update({"sdft.generate_from_teacher": False, "sdft.disagreement_power": 0.0, "sdft.sft_weight": 0.0,
                          "replay.anchor_fraction": 0.0})
    return with_overrides(params, overrides, where="bench/gpu_check.py")


def precision_row(args, model: str, data: Path, work: Path, dtype: str, method: str) -> dict:
    params = setup(load_params(ROOT / "params.yaml"), model, work, dtype, method, steps=3, batch=8)
    row = {"check": f"{method} {dtype}"}
    try:
        trainer, _ = prepare_trainer(params, SKILL, json_lines(data / "train.jsonl"), model, work / "probe")
        probe = StepProbe(trainer)
        trainer.add_callback(probe)
        trainer.train()
        master = {str(p.dtype).removeprefix("torch.") for p in trainer.model.parameters() if p.requires_grad}
        metrics = train_skill(params, SKILL, data, model, work / f"ckpt-{method}-{dtype}")
        from safetensors import safe_open

        with safe_open(work / f"ckpt-{method}-{dtype}" / "model.safetensors", "pt") as f:
            saved = {str(f.get_tensor(k).dtype).removeprefix("torch.") for k in f.keys()}
        row.update(master=",".join(sorted(master)), saved=",".join(sorted(saved)),
                   loss_last=round(metrics["loss_last"], 4), **{k: sorted(v) for k, v in probe.seen.items()})
        expect_half = dtype != "float32"
        ok = master == {"float32"} and saved == {dtype}
        for name, seen in probe.seen.items():
            ok &= all(w == "float32" and dev == probe.trainer.model.device.type for w, _, dev in seen)
            if expect_half:  # student, EMA teacher and frozen parent all run under the same autocast
                ok &= any(out == dtype for _, out, _ in seen)
        row["ok"] = bool(ok)
    except Exception as exc:  # noqa: BLE001 - a failed check is a row of the table, not the end of the run
        row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    return row


def cost_row(args, model: str, data: Path, work: Path, dtype: str, method: str, paper: bool = False) -> dict:
    steps = args.warmup + args.steps
    params = setup(load_params(ROOT / "params.yaml"), model, work, dtype, method, steps, args.batch, paper,
                   **{"train.max_completion_length": args.completion})
    label = f"{method}{' (paper)' if paper else ''} {dtype}"
    try:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer, _ = prepare_trainer(params, SKILL, json_lines(data / "train.jsonl"), model, work / "cost")
        probe = StepProbe(trainer)
        trainer.add_callback(probe)
        trainer.train()
        times = probe.times[args.warmup:]
        peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
        return {"run": label, "step_s": statistics.median(times), "min_s": min(times), "peak_gib": peak}
    except Exception as exc:  # noqa: BLE001
        return {"run": label, "error": f"{type(exc).__name__}: {exc}"[:300]}


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-config", help="a folder with config.json + tokenizer (random weights are built); "
                    "default: the tests' tiny model")
    ap.add_argument("--out", default="gpu_check.md")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--completion", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "CPU"
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if args.model_config:
        model = random_model(Path(args.model_config), work / "model")
    else:
        from tiny_model import build_tiny_model

        model = str(build_tiny_model(work / "model", init_std=0.3))
    records = validate_records(read_records(ROOT / "skills" / f"{SKILL}.jsonl"), where=SKILL)
    data = write_skill(work / "data", records, [], {"skill": SKILL}).out_dir

    dtypes = ["float32", "bfloat16"] + (["float16"] if cuda else [])
    checks = [precision_row(args, model, data, work, d, m) for d in dtypes for m in ("sft", "sdft")]
    costs = [cost_row(args, model, data, work, d, "sft") for d in ("float32", "bfloat16")]
    costs += [cost_row(args, model, data, work, d, "sdft") for d in ("float32", "bfloat16")]
    costs.append(cost_row(args, model, data, work, "bfloat16", "sdft", paper=True))

    lines = [f"# GPU check on {device} (torch {torch.__version__})", "",
             "| check | ok | master weights | saved | student first Linear (w, out, device) | teacher | parent | last loss |",
             "|---|---|---|---|---|---|---|---|"]
    for r in checks:
        if "error" in r:
            lines.append(f"| {r['check']} | **no** | {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['check']} | {'yes' if r['ok'] else '**no**'} | {r['master']} | {r['saved']} | "
                     f"{r.get('model', '')} | {r.get('teacher_model', '-')} | {r.get('parent_model', '-')} | {r['loss_last']} |")
    sft = {r["run"].split()[-1]: r.get("step_s") for r in costs if r["run"].startswith("sft")}
    lines += ["", f"Cost per optimizer step: {args.batch} prompts, {args.completion}-token rollouts (transformers generate), "
              f"median of {args.steps} steps after {args.warmup} warm-up.", "",
              "| run | s/step (median) | min | x SFT same dtype | peak GiB |", "|---|---|---|---|---|"]
    for r in costs:
        if "error" in r:
            lines.append(f"| {r['run']} | **error** {r['error']} | | | |")
            continue
        base = sft.get(r["run"].split()[-1])
        ratio = f"{r['step_s'] / base:.2f}" if base else "-"
        lines.append(f"| {r['run']} | {r['step_s']:.3f} | {r['min_s']:.3f} | {ratio} | {r['peak_gib']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    sys.exit(0 if all(r.get("ok") for r in checks) and not any("error" in r for r in costs) else 1)


if __name__ == "__main__":
    main()
