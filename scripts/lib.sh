# Shared helpers for the project's scripts: install what is missing, reuse or start services.
# Sourced, not run. Everything the scripts start lives under $RUN_DIR (default .run/).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
# The role Hostmaster (and its tests) connect as — never a superuser — and the file of its password.
PG_USER=${PG_USER:-hostmaster}
PG_SECRET=${PG_SECRET:-$RUN_DIR/secrets/hostmaster_database_password}
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
  # A fresh cluster keeps Debian's pg_hba.conf: Hostmaster connects as its own role with a password.
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
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

pg_as() {  # user password psql-args...: psql as that user over TCP, stopping at the first error
  local user=$1 password=$2
  shift 2
  PGPASSWORD=$password PGCONNECT_TIMEOUT=10 psql -h "$PG_HOST" -p "$PG_PORT" -U "$user" -v ON_ERROR_STOP=1 -X "$@"
}

pg_superuser() {  # psql-args...: as the cluster's superuser, however it lets one in; fails when it does not
  if pg_as postgres "${PGPASSWORD:-}" -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then  # trust, or PGPASSWORD
    pg_as postgres "${PGPASSWORD:-}" "$@"
  elif [[ $PG_HOST == 127.0.0.1 || $PG_HOST == localhost ]] && id postgres >/dev/null 2>&1 \
    && [ -d /var/run/postgresql ] && command -v runuser >/dev/null; then
    # A cluster of this machine: its Unix socket, where Debian lets the postgres user in (peer).
    runuser -u postgres -- psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -X "$@"
  else
    return 1
  fi
}

ensure_db_role() {  # the role $PG_USER may log in with the password in $PG_SECRET (made once, 0600)
  # PostgreSQL may answer from elsewhere (a container, another host): its client is needed here anyway.
  command -v psql >/dev/null || apt_install postgresql-client
  if [ ! -s "$PG_SECRET" ]; then
    mkdir -p "$(dirname "$PG_SECRET")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$PG_SECRET")
  fi
  local password
  password=$(<"$PG_SECRET")
  pg_as "$PG_USER" "$password" -d postgres -tAc "SELECT 1" >/dev/null 2>&1 && return 0  # in already
  say "making the PostgreSQL role $PG_USER (its password: $PG_SECRET)"
  pg_superuser -d postgres -q -v user="$PG_USER" -v password="$password" >/dev/null <<'SQL' \
    || die "PostgreSQL at $PG_HOST:$PG_PORT lets neither $PG_USER in with the password in $PG_SECRET nor a superuser in to make that role: make it (CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '<the file's text>'), or give its name and password file as PG_USER and PG_SECRET"
SELECT format('CREATE ROLE %I', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" LOGIN CREATEDB NOSUPERUSER PASSWORD :'password';
SQL
}

ensure_database() {  # name: a database owned by $PG_USER (ensure_db_role first)
  command -v psql >/dev/null || apt_install postgresql-client
  local password found
  password=$(cat "$PG_SECRET" 2>/dev/null || true)
  found=$(pg_as "$PG_USER" "$password" -d postgres -tAc \
    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$1'" 2>&1) \
    || die "PostgreSQL at $PG_HOST:$PG_PORT does not let user $PG_USER in to create database $1: ${found##*FATAL:  }"
  if [ -z "$found" ]; then
    pg_as "$PG_USER" "$password" -d postgres -qc "CREATE DATABASE \"$1\"" >/dev/null \
      || die "could not create database $1 on PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER"
  elif [ "$found" != "$PG_USER" ]; then
    # Made by an earlier version as another role: hand it, its schema and its tables to $PG_USER.
    say "giving database $1 (owned by $found) to $PG_USER"
    pg_superuser -d postgres -q -v user="$PG_USER" -v db="$1" >/dev/null <<<"ALTER DATABASE :\"db\" OWNER TO :\"user\";" \
      || die "database $1 is owned by $found, and no superuser may give it to $PG_USER"
    pg_superuser -q -d "$1" -v user="$PG_USER" >/dev/null <<'SQL' || die "could not give the tables of database $1 to $PG_USER"
ALTER SCHEMA public OWNER TO :"user";
SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, :'user')
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \gexec
SQL
  fi
}

ensure_python_env() {
  ensure_uv
  (cd "$ROOT" && uv sync --frozen -q) || die "uv sync failed"
}
