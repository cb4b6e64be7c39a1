#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py) on a lent GPU machine, which has torch/transformers/accelerate but no TRL or
# datasets and no network: `bash bench/gpu_check.sh prepare` here fills .gpu/ (gitignored; wheels + SmolLM2's
# config and tokenizer, no weights), then on the GPU machine, with .gpu carried: `bash bench/gpu_check.sh run`.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    mkdir -p .gpu/wheels .gpu/smollm2
    .venv/bin/pip download -q --no-deps -d .gpu/wheels --python-version 3.12 --only-binary=:all: \
      trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    src=$(.venv/bin/python -c 'from sdft.models import resolve_model; print(resolve_model("embedded:smollm2-135m-instruct"))')
    cp "$src"/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja} .gpu/smollm2/
    du -sh .gpu ;;
  run)
    python3 -m pip install -q --no-deps .gpu/wheels/*.whl
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    TRL_EXPERIMENTAL_SILENCE=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
      python3 bench/gpu_check.py --model-config .gpu/smollm2 --out "${OUT:-.}/gpu_check.md" ;;
  *) echo "usage: bash bench/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
