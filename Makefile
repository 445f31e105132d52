# Hostmaster — see README.md. Everything started here lives under .run/.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never

.PHONY: help run test test-unit test-fuzz test-faults bench docs lint typecheck format check clean
.DEFAULT_GOAL := help

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

run:  ## the whole service on this machine, in the foreground (Ctrl-C stops it)
	@bash scripts/run.sh

test:  ## install what is missing, bring up what the tests need, run the whole suite (the fault suite restarts the machine's PostgreSQL and RabbitMQ)
	@bash scripts/test.sh

test-unit:  ## unit tests only: no service installed, started or needed (uv and the project's environment only)
	@bash -c 'source scripts/lib.sh && ensure_python_env && cd "$$ROOT" && uv run --frozen pytest tests/unit'

test-faults:  ## the fault-injection suite alone (make test runs it too): kills, restarts, outages under load
	@bash scripts/test.sh tests/faults

test-fuzz:  ## longer fuzzing: schemathesis and hypothesis with many more examples
	@FUZZ_EXAMPLES=100 FUZZ_SEED=$$RANDOM HYPOTHESIS_PROFILE=fuzz bash scripts/test.sh tests/unit/test_properties.py tests/integration/test_fuzz.py

bench:  ## every benchmark beside its baseline, on a stack of its own; not timed tests (docs/performance.md)
	@bash scripts/bench.sh

docs:  ## regenerate the configuration reference in docs/operations.md from service/core/settings.py
	uv run --frozen python -m service.core.configdoc --write

lint:  ## ruff: lint and format check
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .

typecheck:  ## mypy, strict
	uv run --frozen mypy

format:  ## ruff: format and fix what it can
	uv run --frozen ruff format .
	uv run --frozen ruff check --fix .

check: lint typecheck  ## lint and typecheck

clean:  ## stop what make run, the tests and the bench left running (BIND 9, the Kafka broker), remove .run/
	for dir in .run .run/test .run/test/faults .run/bench .run/test/make-run; do \
	  bash scripts/bind.sh stop $$dir/bind || true; bash scripts/kafka.sh stop $$dir/kafka || true; done
	rm -rf .run
