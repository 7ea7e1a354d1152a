# snndeploy: `make demo` and `make test` set up what is missing, then run.
SHELL := /bin/bash
PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: demo test test-fast lint setup data bench clean

# Python 3.10 (lava-nc 0.10.0 imports only on 3.10): pyenv's, else python3.10 on PATH.
$(PY):
	@py=""; \
	if command -v pyenv >/dev/null 2>&1 && pyenv prefix $(PYTHON_VERSION) >/dev/null 2>&1; then py="$$(pyenv prefix $(PYTHON_VERSION))/bin/python"; \
	elif [ -x "$$HOME/.pyenv/versions/$(PYTHON_VERSION)/bin/python" ]; then py="$$HOME/.pyenv/versions/$(PYTHON_VERSION)/bin/python"; \
	elif command -v python3.10 >/dev/null 2>&1; then py="$$(command -v python3.10)"; \
	else echo "error: Python 3.10 not found (install it with: pyenv install $(PYTHON_VERSION))" >&2; exit 2; fi; \
	echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) data

# Fashion-MNIST from Debian, where apt can install it (root or passwordless sudo); optional otherwise.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) || echo "note: could not install dataset-fashion-mnist"; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || echo "note: could not install dataset-fashion-mnist"; \
	  else echo "note: dataset-fashion-mnist not installed (needs root: apt-get install dataset-fashion-mnist)"; fi; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1) || echo "note: could not install chromium (report screenshot test will skip)"; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get install -y -qq chromium >/dev/null 2>&1 || echo "note: could not install chromium"; \
	  else echo "note: chromium not installed (needs root: apt-get install chromium); the report screenshot test will skip"; fi; \
	fi

demo: setup
	$(VENV)/bin/snndeploy demo --out $(DEMO_OUT)

# ruff (lint + format) and the import-linter layer contracts (pyproject.toml, docs/architecture.md)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) benchmarks/bench_backends.py --out benchmarks/results/backends.json
	$(PY) benchmarks/bench_fixed.py --out benchmarks/results/fixed.json
	$(PY) benchmarks/bench_train.py --out benchmarks/results/train.json
	$(PY) benchmarks/bench_compare_memory.py --out benchmarks/results/compare_memory.json

clean:
	rm -rf $(VENV) out .pytest_cache
