# Online program registration — the two commands are `make up` and `make test`.
# Everything a fresh machine needs (uv, the Python packages, the local servers)
# is installed by these targets; only Python 3.11 is assumed.

PYTHON      ?= python3
BOOTSTRAP   := .bootstrap
UV          := $(BOOTSTRAP)/bin/uv
UV_VERSION  := 0.13.9
VENV        := .venv
RUN         := $(UV) run --frozen --no-sync
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

SCHEMAS     := tools/schemas/node_modules/.package-lock.json
PORTAL      := portal/dist/index.html
NPM_CI      := npm ci --no-audit --no-fund --loglevel=error

.PHONY: help install portal up down status logs test test-unit test-security-deep soak test-integration lint typecheck fmt schemas docs clean bench

help:
	@echo "make up         start the whole system locally (embedded servers), print the URLs"
	@echo "make down       stop it; data under .data/ is kept"
	@echo "make test       install and run the whole test suite"
	@echo "make status     what is running"
	@echo "make soak       the reliability scenarios with a bigger cohort (SOAK_COHORT=60)"
	@echo "make test-security-deep  the security suite with 40 generated requests per operation"
	@echo "make lint       ruff + mypy"
	@echo "make schemas    record new event schema snapshots (additive changes only)"
	@echo "make docs       regenerate docs/asyncapi/*.json and docs/events.md from the code"
	@echo "make clean      stop and delete every local datum (.data/)"
	@echo "make bench      an intake of N students (default 500) on a private stack; results in bench/results/"

$(UV):
	$(PYTHON) -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

# The published JSON schemas (AsyncAPI) the tests validate generated documents against.
$(SCHEMAS): tools/schemas/package.json tools/schemas/package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	$(NPM_CI) --prefix tools/schemas

# The web portal: a static bundle the gateway (or the portal image) serves.
$(PORTAL): portal/package.json portal/package-lock.json portal/index.html portal/vite.config.ts $(shell find portal/src -type f 2>/dev/null)
	@command -v npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm install --no-audit --no-fund --loglevel=error --prefix portal
	npm run --prefix portal build --silent

portal: $(PORTAL)

# Chromium for the browser tests, from Debian (Playwright cannot download its own
# here), and fonts with Chinese glyphs so screenshots show the Traditional Chinese text.
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
$(CHROMIUM) $(CJK_FONT):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk

up: install $(PORTAL)
	$(RUN) python -m opr_shared.devstack up

down: install
	$(RUN) python -m opr_shared.devstack down

status: install
	$(RUN) python -m opr_shared.devstack status

test: install $(SCHEMAS) $(PORTAL) $(CHROMIUM) $(CJK_FONT) lint
	$(RUN) pytest

# The reliability scenarios (tests/reliability/) with a bigger cohort; not part of `make test`.
SOAK_COHORT ?= 60
soak: install
	OPR_RELIABILITY_COHORT=$(SOAK_COHORT) $(RUN) pytest -m reliability tests/reliability

test-unit: install
	$(RUN) pytest -m "not integration and not e2e"

# The security suite alone, with many more generated requests per operation.
test-security-deep: install
	OPR_SECURITY_EXAMPLES=40 $(RUN) pytest --timeout=3600 tests/security

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

schemas: install
	$(RUN) python -m opr_shared.contracts.snapshot

docs: install
	$(RUN) python docs/generate.py

# Load benchmark: N=8000 for the full intake, USERS students at once, THINK their mean pause
# before each step (s), BENCH_ARGS for more
# (e.g. --reuse to drive the stack `make up` runs, --profile 60 for py-spy flame graphs).
N     ?= 500
USERS ?= 200
THINK ?= 0
bench: install
	$(RUN) python -m bench --n $(N) --users $(USERS) --think $(THINK) $(BENCH_ARGS)

clean: down
	rm -rf .data
