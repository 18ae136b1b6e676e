# Set-up and the main jobs. Everything installs into .venv; nothing is needed by hand.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned CPU torch: a plain `torch` would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

BASE_VENV ?= .venv-base
# Tests that must pass without the heavy packages (a module needing one uses pytest.importorskip).
EMBEDDED_TESTS ?= tests/embedded tests/data tests/runtime

.PHONY: install demo test test-embedded lint clean

$(BIN)/toolcast: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,serve,dev]'
	touch $@

install: $(BIN)/toolcast

demo: install
	$(BIN)/toolcast demo

test: install
	$(BIN)/python -m pytest
	$(MAKE) test-embedded

# The embedded side (toolcast.data, toolcast.predictor's ONNX side, toolcast.runtime) in an environment
# with the base install only: no torch, lightning, transformers or datasets.
$(BASE_VENV)/bin/pytest: pyproject.toml
	$(PY) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/pip install -q --upgrade pip
	$(BASE_VENV)/bin/pip install -q -e . pytest pytest-asyncio hypothesis
	touch $@

test-embedded: $(BASE_VENV)/bin/pytest
	$(BASE_VENV)/bin/python -m pytest $(EMBEDDED_TESTS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(BASE_VENV) build *.egg-info
