# Two commands on a fresh machine: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck check bench install clean web web-tools browser web-lint web-test \
	web-types web-types-check web-pack-check example

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Installs exactly the locked versions (requirements.lock), then the project itself.
$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# ---- web/: @longtasks/ui, the service page built from it, the example host app ---------------
# npm ci runs once (and again when a lock changes); each build reruns only when its sources
# change. Node.js >= 20.19 and npm are found, or installed from Debian where apt is usable.
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/page -type f 2>/dev/null) web/package.json web/tsconfig.json
PAGE := api/static/index.html
LIB := web/node_modules/.lib-built
REACT18_STAMP := web/test/react18/node_modules/.installed
EXAMPLE_STAMP := web/examples/node_modules/.installed
EXAMPLE := web/examples/dist/index.html
EXAMPLE_SOURCES := $(shell find web/examples/src -type f 2>/dev/null) web/examples/index.html \
	web/examples/vite.config.ts web/examples/tsconfig.json web/examples/tsconfig.seed.json
SPEC := .artifacts/openapi.json
OPENAPI_TS := npx openapi-typescript --enum-values --default-non-nullable=false

web-tools:
	@devtools/ensure-tool.sh node

browser:
	@devtools/ensure-tool.sh chromium

$(WEB_STAMP): web/package.json web/package-lock.json | web-tools
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(PAGE): $(WEB_STAMP) $(WEB_SOURCES) web/vite.page.config.ts
	cd web && npm run --silent build:page

$(LIB): $(WEB_STAMP) $(WEB_SOURCES) web/vite.config.ts web/tsconfig.build.json
	cd web && npm run --silent build
	@touch $@

# React 18, for the vitest project that runs the React bindings' tests on a React 18 host.
$(REACT18_STAMP): web/test/react18/package.json web/test/react18/package-lock.json | web-tools
	cd web/test/react18 && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(EXAMPLE_STAMP): web/examples/package.json web/examples/package-lock.json | web-tools
	cd web/examples && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(EXAMPLE): $(EXAMPLE_STAMP) $(LIB) $(EXAMPLE_SOURCES)
	cd web/examples && npm run --silent build

web: $(PAGE) $(LIB)

example: $(EXAMPLE)

# The API's types, generated from its OpenAPI spec (built from the app factory, no server).
# Run after changing a route or schema; commit web/src/api/schema.ts.
web-types: $(STAMP) $(WEB_STAMP)
	@mkdir -p .artifacts
	$(BIN)/python -m devtools.openapi > $(SPEC)
	cd web && $(OPENAPI_TS) ../$(SPEC) -o src/api/schema.ts

web-types-check: $(STAMP) $(WEB_STAMP)
	@mkdir -p .artifacts
	@$(BIN)/python -m devtools.openapi > $(SPEC)
	@cd web && $(OPENAPI_TS) ../$(SPEC) -o ../.artifacts/schema.ts >/dev/null
	@cmp -s web/src/api/schema.ts .artifacts/schema.ts || { \
		diff -u web/src/api/schema.ts .artifacts/schema.ts | head -40; \
		echo "web/src/api/schema.ts differs from the API's spec: run 'make web-types' and commit it"; \
		exit 1; }

# tsc (strict) and ESLint over the package, the page and the example.
web-lint: $(WEB_STAMP) $(EXAMPLE_STAMP) $(LIB)
	cd web && npx tsc --noEmit -p tsconfig.json && npx eslint --max-warnings 0 .
	cd web/examples && npx tsc --noEmit -p tsconfig.json && npx tsc --noEmit -p tsconfig.seed.json

web-test: $(WEB_STAMP) $(REACT18_STAMP)
	cd web && npx vitest run

# The tarball `npm pack` makes holds both entry points and their types.
web-pack-check: $(LIB)
	cd web && node scripts/pack-check.mjs

dev: $(STAMP) $(PAGE)
	$(BIN)/longtasks dev

# Tools first, so a machine without them stops at once with one line, not after the builds.
test: web-tools browser $(STAMP) web-lint web-types-check web-test web-pack-check $(PAGE) $(EXAMPLE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest

lint: $(STAMP) web-lint
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m devtools.bench

# Regenerate the lock files after changing dependencies in pyproject.toml: the development one
# (make dev, make test) and the runtime one (the image), pinned to the same versions.
lock: $(BIN)/python
	$(BIN)/uv pip compile --python-version 3.11 --extra dev pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --python-version 3.11 pyproject.toml -c requirements.lock \
		-o requirements.runtime.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	rm -rf web/node_modules web/dist web/test/react18/node_modules web/examples/node_modules web/examples/dist api/static
