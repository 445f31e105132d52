# Shared helpers for the project's scripts: install what is missing, reuse or start services.
# Sourced, not run. Everything the scripts start lives under $RUN_DIR (default .run/).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
export UV_PYTHON_DOWNLOADS=never
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf '[hostmaster] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
  return 1
}

wait_port() {  # host port seconds what
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    ((SECONDS < deadline)) || die "$4 did not open $1:$2 within $3 s"
    sleep 0.2
  done
}

APT_UPDATED=0
apt_install() {  # packages...
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]} (apt)"
  if ((APT_UPDATED == 0)); then apt-get update -q >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_uv() {
  if ! command -v uv >/dev/null; then
    [ -x "$HOME/.local/bin/uv" ] && export PATH="$HOME/.local/bin:$PATH"
  fi
  if ! command -v uv >/dev/null; then
    export PATH="$HOME/.local/bin:$PATH"
    if python3 -m pip --version >/dev/null 2>&1; then
      say "installing uv (pip)"
      python3 -m pip install -q --user uv 2>/dev/null || python3 -m pip install -q --user --break-system-packages uv
    else
      say "installing uv (pipx)"
      apt_install pipx
      pipx install uv >/dev/null
    fi
  fi
  command -v uv >/dev/null || die "uv is not on PATH after installing it"
}

ensure_bind() {
  command -v named >/dev/null && command -v tsig-keygen >/dev/null && command -v dig >/dev/null && return 0
  apt_install bind9 bind9-utils bind9-dnsutils
}

ensure_chromium() {  # the console's browser tests: Debian's Chromium and its ChromeDriver, no downloaded browser
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  apt_install chromium chromium-driver fonts-dejavu-core
}

STARTED_POSTGRES=0
ensure_postgres() {
  port_open "$PG_HOST" "$PG_PORT" && return 0
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
    local conf
    conf=$(ls -d /etc/postgresql/*/main | head -n1)
    # A fresh cluster: let local development connect over loopback without a password.
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
  fi
  port_open "$PG_HOST" "$PG_PORT" && return 0  # the package started it
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  STARTED_POSTGRES=1
  wait_port "$PG_HOST" "$PG_PORT" 30 PostgreSQL
}

STARTED_RABBITMQ=0
ensure_rabbitmq() {
  if ! port_open 127.0.0.1 "$RABBITMQ_PORT"; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    port_open 127.0.0.1 "$RABBITMQ_PORT" && return 0  # the package started it
    say "starting RabbitMQ"
    rabbitmq-server -detached
    STARTED_RABBITMQ=1
    local deadline=$((SECONDS + 60))
    until rabbitmqctl -q await_startup >/dev/null 2>&1; do
      ((SECONDS < deadline)) || die "RabbitMQ did not start within 60 s"
      sleep 1
    done
  fi
}

enable_rabbitmq_management() {
  command -v rabbitmq-plugins >/dev/null || return 0
  rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management && return 0
  rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || say "could not enable the RabbitMQ management UI"
}

stop_started_services() {
  if ((STARTED_RABBITMQ)); then say "stopping RabbitMQ (started by this script)"; rabbitmqctl -q stop >/dev/null 2>&1 || true; fi
  if ((STARTED_POSTGRES)); then
    say "stopping PostgreSQL (started by this script)"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main stop || true
  fi
}

ensure_database() {  # name
  # PostgreSQL may answer from elsewhere (a container, another host): its client is needed here anyway.
  command -v psql >/dev/null || apt_install postgresql-client
  local found
  found=$(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" 2>&1) \
    || die "PostgreSQL at $PG_HOST:$PG_PORT does not let user postgres in to create database $1: ${found##*FATAL:  }"
  [ "$found" = 1 ] || psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "CREATE DATABASE \"$1\"" >/dev/null \
    || die "could not create database $1 on PostgreSQL at $PG_HOST:$PG_PORT"
}

ensure_python_env() {
  ensure_uv
  (cd "$ROOT" && uv sync --frozen -q) || die "uv sync failed"
}
