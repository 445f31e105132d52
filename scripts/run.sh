#!/usr/bin/env bash
# `make run`: the whole service on this machine, in the foreground.
#
# Installs what is missing, starts BIND 9 with the demo zone and a fresh TSIG key,
# reuses (or starts) PostgreSQL and RabbitMQ, migrates, registers the demo zone, then
# runs the API and a worker until Ctrl-C, which stops what this script started and
# nothing else. Settings: APP_ENV (dev), API_PORT, BIND_PORT, DEMO_ZONE, RUN_DIR.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

API_HOST=${API_HOST:-127.0.0.1}
API_PORT=${API_PORT:-8000}
BIND_PORT=${BIND_PORT:-15353}
DEMO_ZONE=${DEMO_ZONE:-example.test}
DEMO_KEY=${DEMO_KEY:-hostmaster-key}
DB_NAME=${DB_NAME:-hostmaster}
export APP_ENV=${APP_ENV:-dev}
BIND_DIR="$RUN_DIR/bind"
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_PORT=${KAFKA_PORT:-19092}

pids=()
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  trap - EXIT
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 30))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  "$ROOT/scripts/bind.sh" stop "$BIND_DIR"
  "$ROOT/scripts/kafka.sh" stop "$KAFKA_DIR"
  stop_started_services
  say "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT  # stopping on request is not a failure
trap 'exit 0' TERM

ensure_bind
ensure_uv
ensure_postgres
ensure_rabbitmq
enable_rabbitmq_management
ensure_python_env
apt_install curl  # the banner's "Try:" uses curl (dig comes with BIND 9)

"$ROOT/scripts/bind.sh" start "$BIND_DIR" "$BIND_PORT" "$DEMO_ZONE:$DEMO_KEY"
mkdir -p "$RUN_DIR/secrets/tsig"
cp "$BIND_DIR/secrets/tsig/$DEMO_KEY" "$RUN_DIR/secrets/tsig/$DEMO_KEY"
# The pepper of API key hashes: made once, kept, so keys stay valid across runs.
[ -s "$RUN_DIR/secrets/hostmaster_api_pepper" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$RUN_DIR/secrets/hostmaster_api_pepper")

# Its own role, with a password made once in the secrets directory, where the settings read it
# (hostmaster_database_password); the machine's pg_hba.conf is left as it was found.
ensure_db_role
ensure_database "$DB_NAME"
export HOSTMASTER_DATABASE_URL=${HOSTMASTER_DATABASE_URL:-postgresql+psycopg2://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME}
export HOSTMASTER_SECRETS_DIR=${HOSTMASTER_SECRETS_DIR:-$RUN_DIR/secrets}
[ "$PG_SECRET" -ef "$HOSTMASTER_SECRETS_DIR/hostmaster_database_password" ] \
  || install -m 600 "$PG_SECRET" "$HOSTMASTER_SECRETS_DIR/hostmaster_database_password"
cd "$ROOT"
uv run --frozen alembic upgrade head
uv run --frozen hostmaster zone add "$DEMO_ZONE" --primary "127.0.0.1:$BIND_PORT" --key "$DEMO_KEY" --update
ADMIN_KEY=$(uv run --frozen hostmaster clients create dev-admin --scope admin --zone '*' --rotate-if-exists 2>/dev/null)
# Kafka events act as the client their topic is bound to: the demo producer's client may write in
# the demo zone only; the consumer's own key is a delegate that can do nothing by itself.
uv run --frozen hostmaster clients create kafka-demo --scope write --zone "$DEMO_ZONE" --rotate-if-exists >/dev/null 2>&1
export HOSTMASTER_KAFKA_TOPIC_CLIENTS=${HOSTMASTER_KAFKA_TOPIC_CLIENTS:-'{"dns.requests": "kafka-demo"}'}
export HOSTMASTER_CONSUMER_API_KEY
HOSTMASTER_CONSUMER_API_KEY=$(uv run --frozen hostmaster clients create kafka-consumer --scope delegate \
  --rotate-if-exists 2>/dev/null)
"$ROOT/scripts/kafka.sh" start "$KAFKA_DIR" "$KAFKA_PORT"
export HOSTMASTER_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT HOSTMASTER_API_URL=http://$API_HOST:$API_PORT
uv run --frozen python - <<PY
from kafka.admin import KafkaAdminClient, NewTopic
admin = KafkaAdminClient(bootstrap_servers="127.0.0.1:$KAFKA_PORT", request_timeout_ms=15000)
missing = {"dns.requests", "dns.requests.dlq", "dns.requests.results"} - set(admin.list_topics())
admin.create_topics([NewTopic(name, 1, 1) for name in missing]) if missing else None
admin.close()
PY

uv run --frozen hostmaster run api --host "$API_HOST" --port "$API_PORT" &
pids+=($!)
HOSTMASTER_METRICS_PORT=${WORKER_METRICS_PORT:-9191} uv run --frozen hostmaster run worker --processes 1 --threads 4 &
pids+=($!)
wait_port "$API_HOST" "$API_PORT" 30 "the API"
HOSTMASTER_METRICS_PORT=${CONSUMER_METRICS_PORT:-9192} uv run --frozen hostmaster run consumer &
pids+=($!)
uv run --frozen hostmaster run recovery &
pids+=($!)

cat >&2 <<TXT

  Hostmaster is running (Ctrl-C stops it).
    Console       http://$API_HOST:$API_PORT/ui  (sign in with the admin key below)
    API docs      http://$API_HOST:$API_PORT/docs
    Metrics       http://$API_HOST:$API_PORT/metrics (API), http://127.0.0.1:${WORKER_METRICS_PORT:-9191}/metrics (worker),
                  http://127.0.0.1:${CONSUMER_METRICS_PORT:-9192}/metrics (consumer)
    RabbitMQ UI   http://127.0.0.1:15672  (guest / guest)
    BIND 9        127.0.0.1:$BIND_PORT, zone $DEMO_ZONE
    Kafka         127.0.0.1:$KAFKA_PORT, topics dns.requests, dns.requests.dlq, dns.requests.results
    Admin key     $ADMIN_KEY
                  (client dev-admin, development only; a new one on every start)

  Try:
    export HOSTMASTER_KEY=$ADMIN_KEY
    curl -s -X POST http://$API_HOST:$API_PORT/api/v1/records -H "Authorization: Bearer \$HOSTMASTER_KEY" \\
         -H 'Content-Type: application/json' \\
         -d '{"name": "www.$DEMO_ZONE", "type": "A", "values": ["192.0.2.10"], "ttl": 300}'
    dig @127.0.0.1 -p $BIND_PORT www.$DEMO_ZONE A +short

TXT
wait -n "${pids[@]}" || true
say "a process exited; stopping the rest"
