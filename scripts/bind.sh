#!/usr/bin/env bash
# A private BIND 9 primary on loopback for development and tests.
#
#   scripts/bind.sh start DIR PORT ZONE:KEY [ZONE:KEY ...]
#       writes DIR/named.conf and a fresh hmac-sha256 TSIG key per KEY (its secret in
#       DIR/secrets/tsig/KEY, mode 600) that may update and transfer that zone, creates a
#       zone file per ZONE (SOA, NS, ns1 A 127.0.0.1) unless one is there from an earlier
#       run (the zone's data and journal are kept, as the database that describes them is),
#       then starts named in the background and waits until it answers.
#   scripts/bind.sh stop DIR
#   scripts/bind.sh resume DIR PORT
#       starts named again with the configuration and keys a stopped `start` left in DIR (an
#       outage of the primary, as the fault-injection suite makes one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

start() {
  local dir port=$2; dir=$(realpath -m "$1"); shift 2
  mkdir -p "$dir/secrets/tsig"
  [ -f "$dir/named.pid" ] && stop "$dir"
  local conf="$dir/named.conf" keys="" zones=""
  declare -A seen=()
  for spec in "$@"; do
    local zone=${spec%%:*} key=${spec#*:}
    if [ -z "${seen[$key]:-}" ]; then
      seen[$key]=1
      tsig-keygen -a hmac-sha256 "$key" >"$dir/$key.key"
      sed -n 's/.*secret "\(.*\)";.*/\1/p' "$dir/$key.key" >"$dir/secrets/tsig/$key"
      chmod 600 "$dir/secrets/tsig/$key" "$dir/$key.key"
      keys+="include \"$dir/$key.key\";"$'\n'
    fi
    [ -f "$dir/$zone.zone" ] || cat >"$dir/$zone.zone" <<ZONE
\$TTL 300
@   IN SOA ns1.$zone. hostmaster.$zone. 1 3600 600 86400 60
    IN NS  ns1.$zone.
ns1 IN A   127.0.0.1
ZONE
    zones+="zone \"$zone\" { type primary; file \"$dir/$zone.zone\"; allow-update { key \"$key\"; }; allow-transfer { key \"$key\"; }; };"$'\n'
  done
  cat >"$conf" <<CONF
options {
  directory "$dir";
  pid-file "$dir/named.pid";
  session-keyfile "$dir/session.key";
  managed-keys-directory "$dir";
  listen-on port $port { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  notify no;
  dnssec-validation no;
};
logging {
  channel to_file { file "$dir/named.log" versions 2 size 20m; severity info; print-time yes; };
  category default { to_file; };
  category update { to_file; };
};
$keys
$zones
CONF
  named-checkconf "$conf" || die "named.conf is not valid ($conf)"
  launch "$dir" "$port" "${1%%:*}"
  say "BIND 9 serving ${*%%:*} on 127.0.0.1:$port (pid $(cat "$dir/named.pid.launcher"))"
}

launch() {  # dir port zone: start named on DIR/named.conf and wait until it answers for ZONE
  local dir=$1 port=$2 zone=$3
  setsid named -f -c "$dir/named.conf" -u root </dev/null >>"$dir/named.out" 2>&1 &
  echo $! >"$dir/named.pid.launcher"
  local deadline=$((SECONDS + 15))
  until dig +tries=1 +time=1 -p "$port" @127.0.0.1 "$zone" SOA +short 2>/dev/null | grep -q .; do
    kill -0 "$(cat "$dir/named.pid.launcher")" 2>/dev/null || die "named exited at start; see $dir/named.out and $dir/named.log"
    ((SECONDS < deadline)) || die "named did not answer on 127.0.0.1:$port within 15 s"
    sleep 0.1
  done
}

resume() {
  local dir port=$2 zone; dir=$(realpath -m "$1")
  [ -f "$dir/named.conf" ] || die "no named.conf in $dir: use start first"
  [ -f "$dir/named.pid.launcher" ] && stop "$dir"
  zone=$(sed -n 's/^zone "\([^"]*\)".*/\1/p' "$dir/named.conf" | head -n1)
  launch "$dir" "$port" "$zone"
  say "BIND 9 resumed on 127.0.0.1:$port (pid $(cat "$dir/named.pid.launcher"))"
}

alive() {  # pid: a named that is running, not a zombie, not a stranger that reused the pid
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $stat == *"(named)"* ]] || return 1
  [[ ${stat#*) } != Z* ]]
}

stop() {
  local dir=$1 pid
  for file in "$dir/named.pid.launcher" "$dir/named.pid"; do
    [ -f "$file" ] || continue
    pid=$(cat "$file")
    if [ -n "$pid" ] && alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 10))
      while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
}

case "${1:-}" in
  start) shift; (($# >= 3)) || die "usage: bind.sh start DIR PORT ZONE:KEY..."; ensure_bind; start "$@" ;;
  stop) shift; (($# == 1)) || die "usage: bind.sh stop DIR"; stop "$1" ;;
  resume) shift; (($# == 2)) || die "usage: bind.sh resume DIR PORT"; resume "$@" ;;
  *) die "usage: bind.sh start DIR PORT ZONE:KEY... | stop DIR | resume DIR PORT" ;;
esac
