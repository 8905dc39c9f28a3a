# VIP Portal: build, run and test plumbing.
SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
HOST        ?= 127.0.0.1
PORT        ?= 8000
PYTEST_ARGS ?=
# The suite runs on every core (pytest-xdist); a file's tests stay together on one worker, in order.
PYTEST_XDIST ?= -n auto --dist loadfile
# Root installs packages directly; anyone else goes through sudo.
SUDO        := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
# PORTAL_TEST_POSTGRES=1 (environment or command line) runs the tests against PostgreSQL.
PG          := $(filter 1,$(PORTAL_TEST_POSTGRES))
export PORTAL_TEST_POSTGRES
# Cache compiled modules: where PYTHONDONTWRITEBYTECODE is set, every test process, portal
# subprocess and pytest's assertion rewriter would compile everything again from source.
unexport PYTHONDONTWRITEBYTECODE

# The uv version uv.lock pins (uv installs itself into the venv first, then the lock's packages).
UV_VERSION  := $(shell awk '/^name = "uv"$$/ {getline; gsub(/"/, "", $$3); print $$3}' uv.lock)
UV_SYNC     := UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --extra test

.PHONY: venv run chromium postgres-pkg nginx-pkg test test-pg upgrade bench clean

# venv: virtualenv with exactly the packages of uv.lock (the app and its test extras), as CI
# installs them; re-synced when pyproject.toml or uv.lock changes.
venv: $(VENV)/.installed

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml uv.lock | $(VENV)/bin/python
	test -x $(VENV)/bin/uv || $(VENV)/bin/pip install -q "uv==$(UV_VERSION)"
	$(UV_SYNC)
	touch $@

# run: migrate, load demo data and serve on HOST:PORT.
run: venv
	$(VENV)/bin/portal db upgrade
	$(VENV)/bin/portal demo --url http://$(HOST):$(PORT)
	$(VENV)/bin/portal jobs send
	$(VENV)/bin/portal serve --host $(HOST) --port $(PORT)

# chromium: Debian's chromium for the Playwright tests (Playwright cannot download browsers here),
# and a CJK font so that screenshots of the Chinese UI show characters, not boxes.
chromium:
	@test -x /usr/bin/chromium -a -d /usr/share/fonts/truetype/wqy || \
	  { $(SUDO) apt-get update -q && $(APT_INSTALL) chromium fonts-wqy-zenhei; }

# postgres-pkg: Debian's PostgreSQL server binaries, used by scripts/with-postgres.
postgres-pkg:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(APT_INSTALL) postgresql; }

# nginx-pkg: Debian's nginx for the test that drives the portal through deploy/nginx/portal.conf
# (RUNLEVEL=1: the package's own service is not started; the test runs its own nginx).
nginx-pkg:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
	  { $(SUDO) apt-get update -q && $(SUDO) env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; }

# test: unit and browser tests on SQLite, or on a private PostgreSQL if PORTAL_TEST_POSTGRES=1.
test: venv chromium nginx-pkg $(if $(PG),postgres-pkg)
	$(if $(PG),scripts/with-postgres) $(PY) -m pytest tests e2e $(PYTEST_XDIST) $(PYTEST_ARGS)

# test-pg: the test suite against PostgreSQL.
test-pg:
	$(MAKE) test PORTAL_TEST_POSTGRES=1

# upgrade: move every dependency to its newest allowed version (uv.lock), install it and run the
# suite on SQLite and PostgreSQL; commit uv.lock when both pass (git checkout uv.lock undoes it).
upgrade: $(VENV)/bin/python
	test -x $(VENV)/bin/uv || $(VENV)/bin/pip install -q "uv==$(UV_VERSION)"
	$(VENV)/bin/uv lock --upgrade
	$(MAKE) test && $(MAKE) test-pg

# bench: seed 10k, 100k and 1M files on SQLite and on a private PostgreSQL, drive the portal with
# wrk (Debian), then grow the audit log to 3M entries and time the auditor's log filters and
# checkpoint signing (--audit-entries), and write BENCHMARKS.md (about 25 minutes on 2 cores, plus
# the audit seeding). BENCH_ARGS=--help for options,
# e.g. make bench BENCH_ARGS="--sizes 10k,100k --databases sqlite --duration 5".
BENCH_ARGS ?=
bench: venv postgres-pkg
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) wrk; }
	$(PY) scripts/bench.py $(BENCH_ARGS)

# clean: remove runtime data and browser-test artifacts (keeps .venv).
clean:
	rm -rf var e2e/artifacts
