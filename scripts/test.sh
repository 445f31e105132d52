#!/usr/bin/env bash
# `make test`: install what is missing, make sure PostgreSQL and RabbitMQ answer, then run
# ruff, mypy and the whole pytest suite, then the fault-injection suite (tests/faults). The tests
# start their own BIND 9, Kafka broker, API and workers (tests/conftest.py) under .run/test and
# stop them at the end; the console's browser tests drive Debian's headless Chromium.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

trap stop_started_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ensure_bind
ensure_chromium
ensure_uv
ensure_postgres
ensure_rabbitmq
ensure_python_env
ensure_db_role  # the tests connect as this role (tests/conftest.py: PG_USER, PGPASSWORD), never a superuser
export PG_USER PG_SECRET PGPASSWORD
PGPASSWORD=$(<"$PG_SECRET")
cd "$ROOT"

say "ruff"
uv run --frozen ruff check .
uv run --frozen ruff format --check .
say "mypy"
uv run --frozen mypy
say "pytest"
if (($#)); then
  uv run --frozen pytest "$@"
  exit
fi
uv run --frozen pytest
# The fault-injection suite restarts PostgreSQL and RabbitMQ and stops BIND: it runs on its own,
# after everything else, with processes and a run directory of its own.
say "pytest tests/faults (fault injection)"
TEST_RUN_DIR="$ROOT/.run/test/faults" uv run --frozen pytest tests/faults
