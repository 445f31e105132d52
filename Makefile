# Hostmaster — see README.md. Everything started here lives under .run/.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-unit test-fuzz test-faults bench docs lint typecheck format check clean

run:  ## the whole service on this machine, in the foreground (Ctrl-C stops it)
	@bash scripts/run.sh

test:  ## install what is missing, bring up what the tests need, run the whole suite
	@bash scripts/test.sh

test-unit:  ## unit tests only (no services)
	@bash scripts/test.sh tests/unit

test-faults:  ## the fault-injection suite alone (make test runs it too): kills, restarts, outages under load
	@bash scripts/test.sh tests/faults

test-fuzz:  ## longer fuzzing: schemathesis and hypothesis with many more examples
	@FUZZ_EXAMPLES=100 FUZZ_SEED=$$RANDOM HYPOTHESIS_PROFILE=fuzz bash scripts/test.sh tests/unit/test_properties.py tests/integration/test_fuzz.py

bench:  ## every benchmark beside its baseline, on a stack of its own; not timed tests (docs/performance.md)
	@bash scripts/bench.sh

docs:  ## regenerate the configuration reference in docs/operations.md from service/core/settings.py
	uv run --frozen python -m service.core.configdoc --write

lint:
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .

typecheck:
	uv run --frozen mypy

format:
	uv run --frozen ruff format .
	uv run --frozen ruff check --fix .

check: lint typecheck

clean:
	bash scripts/bind.sh stop .run/bind || true
	bash scripts/bind.sh stop .run/test/bind || true
	bash scripts/bind.sh stop .run/test/faults/bind || true
	rm -rf .run
