# One entry point for developers and CI. Every target sets up .venv first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= .churnscale/demo
DEMO_ROWS ?= 1000000
# The model `make serve` serves: the demo registers and promotes churn@champion in the
# churnscale home (CHURNSCALE_HOME, default .churnscale), which later commands share.
MODEL ?= churn@champion

.PHONY: setup demo test lint bench serve lock clean

setup: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: setup
	$(BIN)/python -m churnscale.demo --dir $(DEMO_DIR) --rows $(DEMO_ROWS)

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/ingest.py

serve: setup
	$(BIN)/churnscale serve --model $(MODEL)

# Re-resolve the lock from the direct dependencies (names and versions only).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -e ".[all]" -r requirements/dev.in
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' | sed 's/ @ .*//' > requirements/lock.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .churnscale build *.egg-info
