# Set-up and the main jobs. Everything installs into .venv; nothing is needed by hand.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned CPU torch: a plain `torch` would pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: install demo test lint clean

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

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
