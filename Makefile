# Two entry points for a fresh machine with Python 3.11+ and make:
#   make demo   run the real engine against the bundled simulators
#   make test   ruff, mypy on engine/, and the whole pytest suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHOP ?= shopify

.PHONY: demo test lint typecheck pytest bench bench-quick chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ordersync demo --shop $(SHOP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy engine

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

# The peer of benchmark 5 is installed for the benchmarks only (not a dependency).
PEER := python-amazon-sp-api

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet $(PEER)
	$(BIN)/python -m bench --full

bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet $(PEER)
	$(BIN)/python -m bench --quick

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --orders 2000

clean:
	rm -rf $(VENV) .demo build *.egg-info
