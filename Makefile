# TradeAlgo: `make run` runs the whole system locally, `make test` runs the whole suite.
# Both set themselves up: a Python 3.12 virtualenv with locked versions, a real Redis and a real
# ClickHouse 26.x started from packages on free loopback ports (no Docker needed).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install tools test unit lint format run bench clean

help:
	@echo "make run    - run the whole system locally (simulator replaying real NSE data, paper mode)"
	@echo "make test   - lint + the whole test suite against real Redis and ClickHouse"
	@echo "make unit   - the fast unit tests only"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make bench  - every benchmark under bench/ (figures in bench/results/*.json)"
	@echo "make clean  - remove the virtualenv and local state"

$(STAMP): pyproject.toml requirements.lock
	@set -e; \
	if [ ! -x "$(PY)" ]; then \
	  interpreter=$$(deploy/local/find-python.sh); \
	  echo "creating $(VENV) with $$interpreter"; \
	  "$$interpreter" -m venv "$(VENV)"; \
	fi; \
	"$(PY)" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"; \
	"$(PY)" -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,clickhouse-local]"
	@touch $(STAMP)

install: $(STAMP)

# promtool and amtool (from Debian's packages, binaries only) for the deploy/ checks.
tools: $(STAMP)
	@deploy/tools/ensure-prometheus-tools.sh $(VENV)/bin

lint: $(STAMP)
	$(VENV)/bin/ruff check shared services tests bench
	$(VENV)/bin/ruff format --check shared services tests bench
	$(VENV)/bin/mypy shared services

format: $(STAMP)
	$(VENV)/bin/ruff check --fix shared services tests bench
	$(VENV)/bin/ruff format shared services tests bench

test: lint tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do \
	  echo "== $$script"; PYTHONPATH="$(CURDIR)" "$(PY)" "$$script"; \
	done

run: $(STAMP)
	$(VENV)/bin/tradealgo run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
