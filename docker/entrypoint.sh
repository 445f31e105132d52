#!/usr/bin/env bash
# The containers' entrypoint: wait for what the role needs, then exec the process (PID 1 gets
# the signals: SIGTERM drains and stops it).
#
#   hostmaster-entrypoint api|worker|consumer|recovery|migrate [ARGS...]
#   hostmaster-entrypoint COMMAND [ARGS...]      anything else is run as it is
#
# Addresses come from the HOSTMASTER_* variables (ConfigMap, compose env_file) or, when one is
# not set, from envs/.env.$APP_ENV in the image. HOSTMASTER_WAIT_TIMEOUT_S (120) bounds the wait.
set -euo pipefail

APP_DIR=${APP_DIR:-$(cd "$(dirname "$(readlink -f "$0")")/.." 2>/dev/null && pwd)}
[ -f "$APP_DIR/envs/.env.${APP_ENV:-dev}" ] || APP_DIR=/app
WAIT_TIMEOUT_S=${HOSTMASTER_WAIT_TIMEOUT_S:-120}

log() { printf '{"level": "INFO", "component": "entrypoint", "message": "%s"}\n' "$*" >&2; }
fail() { printf '{"level": "ERROR", "component": "entrypoint", "message": "%s"}\n' "$*" >&2; exit 1; }

setting() {  # NAME DEFAULT: the environment's value, else the env file's, else DEFAULT
  local name=$1 default=${2:-} file="$APP_DIR/envs/.env.${APP_ENV:-dev}" value
  value=${!name:-}
  if [ -z "$value" ] && [ -f "$file" ]; then
    value=$(sed -n "s/^$name=//p" "$file" | tail -n1)
  fi
  printf '%s' "${value:-$default}"
}

host_port() {  # URL DEFAULT_PORT: "host port" of a URL such as postgresql+psycopg2://u@h:5432/db
  local rest=${1#*://} default=$2
  rest=${rest##*@}
  rest=${rest%%/*}
  rest=${rest%%\?*}
  if [[ $rest == \[*\]* ]]; then  # [IPv6]:port
    local host=${rest%%]*}; host=${host#[}
    local port=${rest##*]}; port=${port#:}
    printf '%s %s' "$host" "${port:-$default}"
  elif [[ $rest == *:* ]]; then
    printf '%s %s' "${rest%%:*}" "${rest##*:}"
  else
    printf '%s %s' "$rest" "$default"
  fi
}

wait_for() {  # NAME HOST PORT
  local name=$1 host=$2 port=$3 deadline=$((SECONDS + WAIT_TIMEOUT_S))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    ((SECONDS < deadline)) || fail "$name at $host:$port did not answer within $WAIT_TIMEOUT_S s"
    sleep 1
  done
  log "$name at $host:$port answers"
}

database() { wait_for database $(host_port "$(setting HOSTMASTER_DATABASE_URL postgresql://127.0.0.1:5432/hostmaster)" 5432); }
broker() { wait_for rabbitmq $(host_port "$(setting HOSTMASTER_RABBITMQ_URL amqp://127.0.0.1:5672/)" 5672); }
kafka() {
  local first; first=$(setting HOSTMASTER_KAFKA_BOOTSTRAP_SERVERS 127.0.0.1:9092); first=${first%%,*}
  wait_for kafka $(host_port "kafka://$first" 9092)
}
api() { wait_for api $(host_port "$(setting HOSTMASTER_API_URL http://127.0.0.1:8000)" 80); }

role=${1:-api}
(($#)) && shift
case $role in
  api) database; broker; exec hostmaster run api "$@" ;;
  worker) database; broker; exec hostmaster run worker "$@" ;;
  recovery) database; broker; exec hostmaster run recovery "$@" ;;
  consumer) kafka; api; exec hostmaster run consumer "$@" ;;
  migrate) database; cd "$APP_DIR"; exec alembic upgrade head "$@" ;;
  *) exec "$role" "$@" ;;
esac
