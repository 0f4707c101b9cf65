# flightdeck: every target runs from a fresh clone; `make setup` installs what the others need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
# Heroku's registry takes Docker schema-2 manifests only: no provenance attestation (an image index).
export BUILDX_NO_DEFAULT_ATTESTATIONS := 1

DOCKER_HOST ?= $(shell scripts/docker-engine host)
export DOCKER_HOST

.PHONY: help setup services lint test bench image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## install system packages (root) and the locked Python environment
	scripts/setup

services: ## start the Docker engine and PostgreSQL when they are not running
	@scripts/docker-engine start >/dev/null
	@scripts/local-postgres >/dev/null

# Tracked files by kind, so a new script or Dockerfile is linted without editing this list.
DOCKERFILES = $(shell git ls-files '*Dockerfile')
SHELL_SCRIPTS = $(sort $(shell git ls-files | while read -r f; do head -n1 "$$f" | grep -qE '^\#!.*[/ ](ba)?sh$$' && echo "$$f"; done) $(shell git ls-files '*.sh'))
WORKFLOWS = $(shell git ls-files '.github/workflows/*.yml')

lint: ## ruff, mypy, hadolint, shellcheck, actionlint, workflow schemas
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .
	uv run --frozen mypy
	uv run --frozen hadolint $(DOCKERFILES)
	uv run --frozen shellcheck $(SHELL_SCRIPTS)
	uv run --frozen actionlint $(WORKFLOWS)
	uv run --frozen check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	uv run --frozen check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml

test: services lint ## lint, then every test (Docker tests fail instead of skipping with REQUIRE_DOCKER=1)
	uv run --frozen pytest

bench: services ## benchmarks; results in bench/results.json
	uv run --frozen python -m bench $(BENCH)

# The app image. Where no registry is reachable the base is a local stand-in of python:3.13-slim;
# elsewhere: make image PYTHON_IMAGE=python:3.13-slim
PYTHON_IMAGE ?= flightdeck/python-standin:3.13
IMAGE ?= flightdeck-app:latest
image: services ## build the app image IMAGE from app/ on PYTHON_IMAGE
	@if [[ "$(PYTHON_IMAGE)" == flightdeck/python-standin:* ]]; then scripts/standin-image "$(PYTHON_IMAGE)"; fi
	DOCKER_BUILDKIT=1 "$$(scripts/docker-engine cli)" build --network host \
		--build-arg PYTHON_IMAGE="$(PYTHON_IMAGE)" --tag "$(IMAGE)" app

.PHONY: compare
compare: ## IaaS vs PaaS report: docs/iaas-vs-paas.md and .png from the stack files and prices.json
	uv run --frozen python -m reports.compare

# Pulumi on this machine: the CLI from scripts/install-pulumi, state in .pulumi-state/ (docs/pulumi-cli.md).
STACK ?= local
.PHONY: pulumi up preview down refresh releases rollback unpin backup backups restore test-hosts
pulumi: ## find or build (from the Go module proxy) the Pulumi CLI and plugins; prints their bin dir
	scripts/install-pulumi
up: ## deploy STACK (default local): pulumi up
	STACK="$(STACK)" scripts/pulumi-local up
preview: ## what pulumi up would change on STACK
	STACK="$(STACK)" scripts/pulumi-local preview
down: ## destroy STACK's resources: pulumi destroy
	STACK="$(STACK)" scripts/pulumi-local destroy
refresh: ## read STACK's resources as they are now (drift shows as updates): pulumi refresh
	STACK="$(STACK)" scripts/pulumi-local refresh
releases: ## STACK's recorded releases, newest first (* marks the one serving)
	uv run --frozen python -m tools.rollback --stack "$(STACK)"
rollback: ## release an older release of STACK through pulumi up: TO=<number|image by digest> [FORCE=1]
	@[ -n "$(TO)" ] || { echo "make rollback: give TO=<release number|image by digest> (make releases lists them)" >&2; exit 2; }
	uv run --frozen python -m tools.rollback --stack "$(STACK)" --to "$(TO)" $(if $(FORCE),--force)
unpin: ## after a rollback, build STACK from the code again on the next up
	STACK="$(STACK)" scripts/pulumi-local cli config rm flightdeck:imageDigest
backup: ## back STACK's database up to its bucket now (servers targets)
	uv run --frozen python -m tools.backups backup --stack "$(STACK)"
backups: ## list STACK's backups
	uv run --frozen python -m tools.backups list --stack "$(STACK)"
restore: ## restore a backup into STACK's running database: FROM=<key|file name|latest>
	@[ -n "$(FROM)" ] || { echo "make restore: give FROM=<key|file name|latest> (make backups lists them)" >&2; exit 2; }
	uv run --frozen python -m tools.backups restore --stack "$(STACK)" --from "$(FROM)"
N ?= 3
test-hosts: ## N (default 3) test hosts on this machine (docs/test-hosts.md), then: make up STACK=servers-test
	scripts/test-hosts up $(N)
	STACK=servers-test scripts/pulumi-local cli config set --secret flightdeck:bucketAccessKey test-hosts-key
	STACK=servers-test scripts/pulumi-local cli config set --secret flightdeck:bucketSecretKey test-hosts-secret

.PHONY: requirements
requirements: ## app/requirements.txt (the image's hashed lock) from uv.lock, after `uv lock`
	uv export --package flightdeck-app --no-dev --frozen --no-emit-project --no-header --quiet -o app/requirements.txt
