#!/usr/bin/env bash
# `make bench`: install what the benchmarks need (wrk, BIND 9, uv), make sure PostgreSQL and
# RabbitMQ answer, then run every benchmark against a Hostmaster of their own (bench/).
# Results: bench/results/latest.json and the table in docs/performance.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

trap stop_started_services EXIT
ensure_bind
apt_install wrk
ensure_uv
ensure_postgres
ensure_rabbitmq
ensure_python_env
cd "$ROOT"
uv run --frozen python -m bench "$@"
