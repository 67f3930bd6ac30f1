# ComputeMarket: every target sets up what it needs (virtualenv, npm packages) and is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=
# Test processes: each test file runs whole in one of them (its module fixtures are shared).
TEST_WORKERS ?= 2

.PHONY: all setup assets chromium test demo lint contracts slither gas bench lock clean

all: test

# ── set-up ──
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's front-end libraries, copied from node_modules into the package (gitignored).
DASHBOARD_VENDOR := marketplace/dashboard/static/vendor
$(DASHBOARD_VENDOR)/.built: node_modules/.installed
	mkdir -p $(DASHBOARD_VENDOR)
	cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css $(DASHBOARD_VENDOR)/
	cp node_modules/uplot/LICENSE $(DASHBOARD_VENDOR)/uPlot.LICENSE
	touch $@

assets: $(DASHBOARD_VENDOR)/.built

setup: $(VENV)/.installed node_modules/.installed assets

# Debian's Chromium, which the dashboard's browser tests drive (Playwright downloads no browser here).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# ── main commands ──
test: setup chromium
	$(MAKE) --no-print-directory lint
	$(PY) scripts/compile_contracts.py --check
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) --no-print-directory slither

demo: setup
	$(BIN)/cmarket demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# ── contracts ──
contracts: setup
	$(PY) scripts/compile_contracts.py

slither: setup
	$(PY) scripts/slither_check.py

gas: setup
	$(PY) bench/gas.py

# Every benchmark, each writing its section of bench/BENCHMARKS.md.
bench: setup
	$(PY) bench/gas.py
	$(PY) bench/indexer.py
	$(PY) bench/api.py
	$(PY) bench/e2e.py

# Re-pins requirements.lock from pyproject.toml in a scratch virtualenv.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	{ echo '# Pinned tree of every Python dependency, runtime and dev; refresh with `make lock`.'; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^computemarket'; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis crytic-export
