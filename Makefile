VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install dev test lint pytest format clean bench

install: $(STAMP)

# Creates the virtualenv when missing; reinstalls when the package metadata changes.
$(STAMP): setup.py setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

dev: install
	$(VENV)/bin/motia-sse dev --steps steps

lint: install
	$(VENV)/bin/ruff check motia_sse steps tests
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint pytest

format: install
	$(VENV)/bin/ruff check --fix motia_sse steps tests

# Benchmarks against a bare-aiohttp baseline (BENCHMARKS.md); e.g. BENCH_ARGS="--runs 5".
bench: install
	$(PY) -c "import uvloop" 2>/dev/null || $(PY) -m pip install -q uvloop
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .motia .mypy_cache .ruff_cache .pytest_cache
