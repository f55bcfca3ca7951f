# photocluster: every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
TOOLS := .tools
CHECKOV := $(TOOLS)/checkov/bin/checkov
OPENAPI_CLIENT := $(TOOLS)/openapi-client/bin/openapi-python-client
TS_CLIENT := clients/typescript
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install tools system-tools lint test test-fast bench bench-scale loadtest faults demo up deploy plan destroy costs calibrate \
        embedder-serve api-serve eval eval-verify peers eval-peers compose-up compose-test compose-down clean

help: ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(TS_CLIENT)/node_modules/.installed ## create .venv with the project and every extra (pinned); the TypeScript client check's npm packages when npm is present

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

# The TypeScript client check (tests/e2e/test_typescript_client.py): pinned npm packages.
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(TS_CLIENT) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the TypeScript client test skips, saying why"; fi

tools: $(CHECKOV) $(OPENAPI_CLIENT) ## checkov and openapi-python-client, each in its own venv (their pins clash with the project's)

$(CHECKOV): requirements/checkov.txt
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	touch $@

$(OPENAPI_CLIENT): requirements/openapi-client.txt
	$(PYTHON) -m venv $(TOOLS)/openapi-client
	$(TOOLS)/openapi-client/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/openapi-client.txt
	touch $@

# The wallpapers that are the evaluation set's real photographs (photocluster.quality.photos):
# data only, about 185 MB to download, installed in about 20 s.
PHOTO_PACKAGES := mate-backgrounds lomiri-wallpapers-16.04 palapeli-data lxqt-themes plasma-workspace-wallpapers \
  python-matplotlib-data

system-tools: ## Debian's chromium (gallery screenshot), docker-compose (compose validation), the eval set's photographs
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	for package in $(PHOTO_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null) \
	      || echo "could not install:$$missing (the tests that need them skip, saying why)"; \
	  else echo "no apt-get as root: tests needing$$missing skip, saying why"; fi; fi

PY_SOURCES = src tests bench $(wildcard services/*/*.py)

lint: install ## ruff, mypy, and import-linter's contract (every import points down the floors)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Tests run on TEST_WORKERS processes (pytest-xdist; 0: one process). worksteal, not
# loadfile: schemathesis' cases share one node id, and the schedulers by file or scope run
# one of them and drop the rest without a word.
TEST_WORKERS ?= 2
test: install tools system-tools lint ## everything CI runs: lint, unit, integration, e2e, terraform, fuzzing
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=40

test-fast: install ## unit tests only
	$(BIN)/python -m pytest -q tests/unit

bench: install ## benchmarks: medians and ratios against the baselines (not part of test)
	$(BIN)/python -m bench

BENCH_SCALE_ARGS ?=

bench-scale: install ## a 100,000-photo library shaped like a real one: every route's latency, bytes read, RSS (BENCH_SCALE_ARGS)
	$(BIN)/python -m bench.bench_scale $(BENCH_SCALE_ARGS)

LOADTEST_ARGS ?=

loadtest: install ## API under load: 32 clients + 4 writers, then an abusive client (LOADTEST_ARGS)
	$(BIN)/python -m bench.loadtest $(LOADTEST_ARGS)

FAULT_ITERATIONS ?= 500

faults: install ## kill writers at random points FAULT_ITERATIONS times per seed (make test: 50)
	PHOTOCLUSTER_FAULT_ITERATIONS=$(FAULT_ITERATIONS) $(BIN)/python -m pytest -q -s tests/integration/test_fault_injection.py

demo: install ## the whole pipeline on this machine: upload samples, print clusters, exit
	$(BIN)/photocluster demo

UP_ARGS ?=

up: install ## the same stack, kept running until Ctrl-C (UP_ARGS: --no-samples, --host 0.0.0.0, --cors-origin URL...)
	$(BIN)/photocluster up $(UP_ARGS)

embedder-serve: install ## the SageMaker-style inference server on :8080
	$(BIN)/python services/embedder/serve

api-serve: install ## the cluster API with uvicorn on :8000
	$(BIN)/photocluster api-serve

# The quality targets write their sets under EVAL_OUT; EVAL_SUBJECTS=N caps the subjects per
# set (quick runs; the tests use it). The model is the CLI's default, the offline encoder.
EVAL_OUT ?= build
EVAL_SUBJECTS ?=
EVAL_CAP := $(if $(EVAL_SUBJECTS),--subjects $(EVAL_SUBJECTS))

eval: install ## quality table of the offline encoder on held-out sources and seed (README, Quality)
	$(BIN)/photocluster make-eval-set $(EVAL_OUT)/evalset-3 --seed 3 --split evaluation $(EVAL_CAP)
	$(BIN)/photocluster eval $(EVAL_OUT)/evalset-3 --html $(EVAL_OUT)/eval-errors.html

eval-verify: install ## the geometric check measured alone (full matrix, no candidate cap) on make eval's set (README, Quality)
	$(BIN)/photocluster make-eval-set $(EVAL_OUT)/evalset-3 --seed 3 --split evaluation $(EVAL_CAP)
	$(BIN)/photocluster eval-verify $(EVAL_OUT)/evalset-3

PEERS := $(TOOLS)/peers

peers: $(PEERS)/.installed ## fastdup and imagededup in their own venv, .tools/peers (their pins clash with ours)

$(PEERS)/.installed: requirements/peers.txt requirements/peers-no-deps.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary :all: \
	  -r requirements/peers.txt
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary :all: \
	  --no-deps -r requirements/peers-no-deps.txt
	touch $@

# fastdup's telemetry and version check off (its runner sets them too): nothing leaves the machine.
eval-peers: install peers ## fastdup and imagededup PHash on make eval's set, in its table's shape (not part of test)
	$(BIN)/photocluster make-eval-set $(EVAL_OUT)/evalset-3 --seed 3 --split evaluation $(EVAL_CAP)
	SENTRY_OPT_OUT=1 FASTDUP_PRODUCTION=1 \
	  $(BIN)/photocluster eval-peers $(EVAL_OUT)/evalset-3 --python $(PEERS)/bin/python

calibrate: install ## sweep the development sets (seeds 0-2): the tiers a calibration would hold
	for seed in 0 1 2; do $(BIN)/photocluster make-eval-set $(EVAL_OUT)/evalset-$$seed --seed $$seed \
	  --split calibration $(EVAL_CAP) || exit 1; done
	$(BIN)/photocluster calibrate $(EVAL_OUT)/evalset-0 $(EVAL_OUT)/evalset-1 $(EVAL_OUT)/evalset-2

# make deploy / destroy / costs: TFVARS=terraform/prod.tfvars.example, say. EMULATOR=URL
# deploys into an AWS emulator (moto) instead: every step but the Docker build.
TFVARS ?= terraform/terraform.tfvars
TERRAFORM_DIR ?= terraform
DEPLOY = $(if $(wildcard /opt/tf-plugins),TF_CLI_CONFIG_FILE=$(CURDIR)/terraform/terraformrc.offline) \
  $(BIN)/photocluster deploy --tfvars $(TFVARS) --terraform $(TERRAFORM_DIR) \
  $(if $(EMULATOR),--emulator $(EMULATOR)) $(if $(TAG),--tag $(TAG))

plan: ## terraform plan of the root module (no AWS account needed without terraform.tfvars)
	$(MAKE) -C terraform plan

deploy: install ## state bucket, ECR repositories, build + push the 3 images, apply; prints the API URL
	$(DEPLOY)

destroy: install ## terraform destroy of the deployed stack (same TFVARS; CONFIRM=<project>-<environment> if protected)
	$(DEPLOY) --destroy $(if $(CONFIRM),--confirm $(CONFIRM))

costs: install ## what TFVARS's provisioned capacity costs a month, idle (unit prices: terraform/prices.json)
	$(BIN)/photocluster deploy --costs --tfvars $(TFVARS) --terraform $(TERRAFORM_DIR)

COMPOSE ?= docker compose
COMPOSE_FILE := docker/docker-compose.yml

docker/.env:
	$(PYTHON) -c "import secrets; print('PHOTOCLUSTER_JWT_SECRET=' + secrets.token_urlsafe(32))" > $@

compose-up: docker/.env ## docker compose: LocalStack + the real images (needs a Docker engine)
	$(COMPOSE) -f $(COMPOSE_FILE) up --build -d --wait

compose-test: install docker/.env ## the end-to-end test against the compose stack
	set -a && . docker/.env && set +a && AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
	  PHOTOCLUSTER_E2E_API_URL=http://127.0.0.1:8000 PHOTOCLUSTER_E2E_EXTERNAL=1 \
	  $(BIN)/python -m pytest -q tests/e2e

compose-down: ## stop the compose stack and remove its volumes
	$(COMPOSE) -f $(COMPOSE_FILE) down -v

clean: ## remove build outputs and local data (keeps .venv)
	rm -rf build data .pytest_cache .mypy_cache .ruff_cache .hypothesis
