# Tollway: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORTAL_PORT ?= 8000
GATEWAY_PORT ?= 8080
export PORTAL_PORT GATEWAY_PORT

.PHONY: help venv run test test-postgres test-sqlite lint bench seed clean screenshots

help:
	@echo "make run    start Redis, portal, Celery worker and beat, gateway and demo upstream (Ctrl-C stops)"
	@echo "make test   lint, then the whole suite on PostgreSQL, then the portal suite on SQLite"
	@echo "make bench  side-by-side benchmarks; results in bench/results/ and docs/performance.md"

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required (Debian package: python3 python3-venv)"; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV) || { echo "Cannot create a virtualenv: install the Debian package python3-venv"; exit 1; }
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	@touch $@

# Analytics' charting library (Chart.js) from npm, pinned by static/analytics/package-lock.json.
ANALYTICS_ASSETS := static/analytics/node_modules/.package-lock.json
$(ANALYTICS_ASSETS): static/analytics/package.json static/analytics/package-lock.json
	@bin/ensure-debs npm:npm
	cd static/analytics && npm ci --no-audit --no-fund
	@touch $@

venv: $(VENV)/.installed $(ANALYTICS_ASSETS)

# axe-core for the browser tests' accessibility check, pinned by tests/browser/package-lock.json.
AXE_CORE := tests/browser/node_modules/.package-lock.json
$(AXE_CORE): tests/browser/package.json tests/browser/package-lock.json
	@bin/ensure-debs npm:npm
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

var/secret_key:
	@mkdir -p var
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

# The embedded defaults: SQLite in var/, a local Redis unless REDIS_URL is set,
# DEBUG on, a secret generated once into var/secret_key.
RUN_ENV = DEBUG=$${DEBUG:-1} SECRET_KEY_FILE=$${SECRET_KEY_FILE:-var/secret_key}
RUN_PROCS = portal worker beat upstream gateway

run: venv var/secret_key
	@bin/ensure-debs redis-server:redis-server
	@mkdir -p var/redis
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo
	@if [ -z "$$REDIS_URL" ]; then procs="redis $(RUN_PROCS)"; else procs="$(RUN_PROCS)"; fi; \
	  $(RUN_ENV) PATH=$(VENV)/bin:$$PATH $(VENV)/bin/honcho -f Procfile start $$procs

seed: venv var/secret_key
	$(RUN_ENV) $(PY) manage.py seed_demo

# mypy's Django plugin imports portal.settings, which needs a SECRET_KEY unless DEBUG is on:
# the development default, as for `make run` (the types do not depend on it).
lint: venv
	$(VENV)/bin/ruff check .
	DEBUG=1 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: venv
	@bin/ensure-debs redis-server:redis-server redis-sentinel:redis-sentinel initdb:postgresql chromium:chromium nginx:nginx-light wrk:wrk curl:curl
	$(MAKE) lint
	$(MAKE) test-postgres
	$(MAKE) test-sqlite

test-postgres: venv $(AXE_CORE)
	TOLLWAY_TEST_DB=postgres $(VENV)/bin/pytest $(PYTEST_ARGS)

# The embedded default database: the portal's own suite again on SQLite.
test-sqlite: venv
	TOLLWAY_TEST_DB=sqlite $(VENV)/bin/pytest tests/portal $(PYTEST_ARGS)

# Full-page screenshots of the portal's pages for docs/screenshots/ (see docs/portal.md):
# the browser journeys, run with TOLLWAY_UPDATE_SCREENSHOTS=1. Re-run when the pages change.
screenshots: venv
	@bin/ensure-debs redis-server:redis-server chromium:chromium
	TOLLWAY_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest tests/browser/test_newcomer_journey.py tests/browser/test_try_it.py \
	  tests/browser/test_small_screens_and_keyboard.py -q

bench: venv
	@bin/ensure-debs redis-server:redis-server nginx:nginx-light wrk:wrk hey:hey
	$(PY) bench/gateway.py
	$(PY) bench/analytics.py
	$(PY) bench/redis_clients.py --cluster  # coredis and valkey-glide are measured only where installed

clean:
	rm -rf var bench/results .pytest_cache
