#!/usr/bin/env bash
# `make bench`: install what the benchmarks need (wrk, BIND 9, uv), make sure PostgreSQL and
# RabbitMQ answer, then run every benchmark against a Hostmaster of their own (bench/). The peer,
# octoDNS with octodns-bind, is installed by bench/peer.py into a virtual environment of the
# bench's own under .run/octodns (pinned; not a dependency of the project), reused while present.
# Arguments go to `python -m bench` (--records, --api-processes, --budget, --no-peer, ...).
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
ensure_db_role  # the bench connects as this role (bench/stack.py: PG_USER, PGPASSWORD), never a superuser
export PG_USER PGPASSWORD
PGPASSWORD=$(<"$PG_SECRET")
cd "$ROOT"
uv run --frozen python -m bench "$@"
