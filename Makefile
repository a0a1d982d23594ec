# The two commands: `make run` and `make test`. Each sets itself up from nothing.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
# MapLibre GL JS for /viewer, from the npm registry (pinned; not committed).
MAPLIBRE_VERSION ?= 5.24.1
VENDOR := src/worldbase/static/vendor
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: run test install install-dev runtime-check cluster-test lint format typecheck bench bench-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@ $(VENV)/.stamp-install

$(VENDOR)/.maplibre-$(MAPLIBRE_VERSION):
	@mkdir -p $(VENDOR)
	@if command -v npm >/dev/null; then \
	  cd $(VENDOR) && npm pack --silent maplibre-gl@$(MAPLIBRE_VERSION) >/dev/null 2>&1 \
	  && tar -xzf maplibre-gl-$(MAPLIBRE_VERSION).tgz --strip-components=2 \
	     package/dist/maplibre-gl.js package/dist/maplibre-gl.css \
	  && rm maplibre-gl-$(MAPLIBRE_VERSION).tgz && touch .maplibre-$(MAPLIBRE_VERSION); \
	else echo "npm not found: /viewer will say MapLibre is missing"; fi

install: $(VENV)/.stamp-install $(VENDOR)/.maplibre-$(MAPLIBRE_VERSION)
install-dev: $(VENV)/.stamp-dev $(VENDOR)/.maplibre-$(MAPLIBRE_VERSION)

## Serve every app on embedded defaults (SQLite, local files, in-process jobs) with demo data.
run: install
	$(BIN)/worldbase migrate
	$(BIN)/worldbase seed
	$(BIN)/worldbase serve --host $(HOST) --port $(PORT)

## Set up and run the whole test suite (WORLDBASE_TEST_BACKEND=embedded|served).
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## What `make run` installs (its `install` target, no dev extras, in a separate venv), checked
## end to end: pip check, every module imported, one real job of each app over HTTP
## against `worldbase serve` on a temporary data dir (.ci/runtime_check.py).
RUNTIME_VENV ?= .venv-runtime
runtime-check:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory install VENV=$(RUNTIME_VENV) \
	&& $(RUNTIME_VENV)/bin/python .ci/runtime_check.py; rc=$$?; \
	echo "runtime-check took $$(( $$(date +%s) - start )) s"; exit $$rc

## The cluster fault test (tests/cluster, `python -m tests.cluster`; not part of `make test`):
## nginx over two `worldbase serve` and two `worldbase worker`, with their own PostGIS, Redis
## and moto S3 on loopback ports, under a mixed load while faults are injected. Needs the
## Debian packages nginx, redis-server, postgresql-15 and postgresql-15-postgis-3, and root
## (PostgreSQL runs as the `postgres` user). CLUSTER_* variables: see tests/cluster/__main__.py.
cluster-test: install-dev
	$(BIN)/python -m tests.cluster

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: install-dev
	$(BIN)/mypy

## Every benchmark (bench/__main__.py). First installs, when missing, the Debian packages
## the benches run (as .ci/run does): wrk (load generator), MapServer (the WMS bench's
## server), osmium-tool (the OSM import's fast path). PostgreSQL and Redis must be running.
bench-tools:
	@missing=""; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v mapserv >/dev/null || [ -x /usr/lib/cgi-bin/mapserv ] \
	  || missing="$$missing cgi-mapserver mapserver-bin"; \
	command -v osmium >/dev/null || missing="$$missing osmium-tool"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
	  >/dev/null || { echo "make bench needs the Debian packages$$missing (as root)"; exit 1; }; \
	fi

bench: install-dev bench-tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .pytest_cache .mypy_cache .ruff_cache
