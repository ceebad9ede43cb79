# Tollway: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORTAL_PORT ?= 8000
GATEWAY_PORT ?= 8080
export PORTAL_PORT GATEWAY_PORT

.PHONY: help venv run dev run-env test test-postgres test-sqlite lint bench seed clean screenshots

help:
	@echo "make run    start Redis, portal, Celery worker and beat, gateway and demo upstream (Ctrl-C stops)"
	@echo "make dev    the same, with DEBUG on and Django's autoreloading development server for the portal"
	@echo "make test   lint, then the whole suite on PostgreSQL, then the portal suite on SQLite"
	@echo "make bench  side-by-side benchmarks (gateway, analytics, portal server); results in bench/results/"

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
# WeasyPrint (invoice PDFs, requirements.txt) lays text out with Pango and Debian's DejaVu fonts.
PDF_DEBS := -:libpango-1.0-0 -:libpangoft2-1.0-0 -:fonts-dejavu-core
$(AXE_CORE): tests/browser/package.json tests/browser/package-lock.json
	@bin/ensure-debs npm:npm
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@

var/secret_key:
	@mkdir -p var
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

# The embedded defaults: SQLite in var/, a local Redis unless REDIS_URL is set, a secret
# generated once into var/secret_key, and DEBUG off: the portal behind its production
# server (granian, see portal/serve.py), its static files collected into var/staticfiles
# and served by whitenoise. Plain http on 127.0.0.1, so the cookies are not Secure-only
# and nothing redirects to https (production keeps those on: docs/operations.md); for the
# same reason webhooks may target http:// listeners on loopback (docs/webhooks.md).
# Every value can be overridden from the environment.
RUN_ENV = DEBUG=$${DEBUG:-0} SECRET_KEY_FILE=$${SECRET_KEY_FILE:-var/secret_key} \
  ALLOWED_HOSTS=$${ALLOWED_HOSTS:-127.0.0.1,localhost} \
  SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-0} CSRF_COOKIE_SECURE=$${CSRF_COOKIE_SECURE:-0} \
  SECURE_SSL_REDIRECT=$${SECURE_SSL_REDIRECT:-0} \
  PORTAL_PUBLIC_URL=$${PORTAL_PUBLIC_URL:-http://127.0.0.1:$(PORTAL_PORT)} \
  TOLLWAY_WEBHOOK_ALLOW_HTTP=$${TOLLWAY_WEBHOOK_ALLOW_HTTP:-1} \
  TOLLWAY_WEBHOOK_ALLOWED_NETWORKS=$${TOLLWAY_WEBHOOK_ALLOWED_NETWORKS:-127.0.0.0/8,::1/128}
# `make dev`: DEBUG on, and Django's development server (autoreload) for the portal.
DEV_ENV = DEBUG=$${DEBUG:-1} PORTAL_SERVER=$${PORTAL_SERVER:-runserver}
RUN_PROCS = portal worker beat upstream gateway

run: venv var/secret_key
	@bin/ensure-debs redis-server:redis-server $(PDF_DEBS)
	@mkdir -p var/redis
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo
	@# DEBUG off: whitenoise serves the collected (hashed, compressed) files; unchanged files are not copied again.
	@$(RUN_ENV) bash -c 'case "$${DEBUG,,}" in 1|true|yes|on) ;; *) $(PY) manage.py collectstatic --noinput -v 0;; esac'
	@if [ -z "$$REDIS_URL" ]; then procs="redis $(RUN_PROCS)"; else procs="$(RUN_PROCS)"; fi; \
	  $(RUN_ENV) PATH=$(VENV)/bin:$$PATH $(VENV)/bin/honcho -f Procfile start $$procs

dev:
	@$(DEV_ENV) $(MAKE) --no-print-directory run

# The environment `make run` gives its processes, as JSON (tests/e2e start the portal with it).
run-env:
	@$(RUN_ENV) $(PYTHON) -c 'import json, os; print(json.dumps(dict(os.environ)))'

seed: venv var/secret_key
	$(RUN_ENV) $(PY) manage.py seed_demo

# mypy's Django plugin imports portal.settings, which needs a SECRET_KEY unless DEBUG is on:
# the development default, as for `make run` (the types do not depend on it).
lint: venv
	$(VENV)/bin/ruff check .
	DEBUG=1 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: venv
	@bin/ensure-debs redis-server:redis-server redis-sentinel:redis-sentinel initdb:postgresql chromium:chromium nginx:nginx-light wrk:wrk curl:curl $(PDF_DEBS) pdftotext:poppler-utils
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
	  tests/browser/test_small_screens_and_keyboard.py tests/browser/test_operator_journey.py \
	  tests/browser/test_finance_journey.py tests/browser/test_developer_usage_and_samples.py \
	  tests/analytics/test_dashboards_in_chromium.py -q

bench: venv
	@bin/ensure-debs redis-server:redis-server nginx:nginx-light wrk:wrk hey:hey
	$(PY) bench/gateway.py
	$(PY) bench/policy_costs.py  # what each policy costs per request, in process
	$(PY) bench/limiter_cost.py  # Redis CPU per rate-limiter call, both traffic shapes
	$(PY) bench/floor.py  # req/s and CPU by process, policy sets none..all: how close full/off can come here
	$(PY) bench/analytics.py
	$(PY) bench/portal_server.py
	$(PY) bench/redis_clients.py --cluster  # coredis and valkey-glide are measured only where installed
	$(PY) bench/json_validators.py  # fastjsonschema is measured only where installed

clean:
	rm -rf var bench/results .pytest_cache
