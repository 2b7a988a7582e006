# Two commands for a new machine: `make run` and `make test`. Each builds .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format setup bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# axe-core for the admin's accessibility test, from the npm registry (scripts/vendor-axe).
AXE := $(VENV)/vendor/axe-core/axe.min.js
$(AXE): scripts/vendor-axe | $(STAMP)
	bash scripts/vendor-axe $(VENV)/vendor

setup: $(STAMP) $(AXE)

# Set up, migrate, provision the demo agent and serve on http://127.0.0.1:8000 (SQLite),
# with the background worker (webhook deliveries) beside the web server; Ctrl-C stops both.
run: $(STAMP)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py reprovision hermes
	@sh scripts/where-to-go $(HOST) $(PORT)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Set up and run the whole test suite (lint, types, tests) on the configured database.
test: $(STAMP) $(AXE)
	bash scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SECRET_KEY=$${SECRET_KEY:-type-checking-only} $(BIN)/mypy .
	cd client && ../$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SECRET_KEY=$${SECRET_KEY:-type-checking-only} $(BIN)/mypy .
	cd client && ../$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The measured server and service calls always run with DEBUG off (budgets/bench/runner.py).
bench: $(STAMP)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py bench

clean:
	rm -rf $(VENV) var
