# highway — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV_SH := bash tools/venv.sh
PYTEST_ARGS ?=

.PHONY: help venv demo test lint unit integration down bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: ## create/update the virtualenv in the cache and print its path
	@$(VENV_SH)

demo: ## start the local stack, produce events, run bronze, silver and gold, show every store matches
	@V=$$($(VENV_SH)) && "$$V/bin/highway" demo

lint: ## ruff (lint + format check), mypy, import-linter
	@V=$$($(VENV_SH)) && set -e && \
	"$$V/bin/ruff" check src tests bench spark_apps plugins dags && \
	"$$V/bin/ruff" format --check src tests bench spark_apps plugins dags && \
	"$$V/bin/mypy" && \
	"$$V/bin/lint-imports" --no-cache

unit: ## fast tests of the pure core (no services)
	@V=$$($(VENV_SH)) && "$$V/bin/pytest" -q tests/unit $(PYTEST_ARGS)

test: lint ## lint, then every test against a real local stack the tests start themselves
	@V=$$($(VENV_SH)) && "$$V/bin/pytest" -ra --durations=40 tests $(PYTEST_ARGS)

down: ## stop the local stack started by `make demo`
	@V=$$($(VENV_SH)) && "$$V/bin/highway" stack down

bench: ## benchmarks -> bench/report.md + PNG plots
	@V=$$($(VENV_SH)) && "$$V/bin/python" -m bench.run

