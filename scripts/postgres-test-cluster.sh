#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: Debian's postgresql binaries, a
# temporary data directory, a free port on 127.0.0.1, trust authentication.
#
#   scripts/postgres-test-cluster.sh start        starts one; prints its URL on stdout:
#       postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   scripts/postgres-test-cluster.sh stop URL     stops it and removes its directory
#   scripts/postgres-test-cluster.sh run -- CMD…  starts one, runs CMD with
#       DIALOGBOT_TEST_POSTGRES=URL in its environment, stops it (also on failure
#       or Ctrl-C), and exits with CMD's status
#
# Without /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql), `start`
# prints why on stderr and exits 77, the usual "skipped" status; `run` then runs
# CMD without DIALOGBOT_TEST_POSTGRES, so tests that need it skip themselves.
# As root, the server runs as the postgres user (initdb refuses root). fsync is
# off: the data is thrown away, and tests then run faster.
set -euo pipefail
skip=77

bindir() {
  local initdb
  initdb=$(for f in /usr/lib/postgresql/*/bin/initdb; do if [ -x "$f" ]; then echo "$f"; fi; done | sort -V | tail -1)
  [ -n "$initdb" ] || return 1
  dirname "$initdb"
}

# as_owner runs a command as the cluster's owner: postgres when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir_of() { echo "${TMPDIR:-/tmp}/dialogbot-pgtest-$1"; }

# start_on tries one port; it fails when the port was taken meanwhile.
start_on() {
  local bin=$1 port=$2 dir
  dir=$(dir_of "$port")
  mkdir "$dir" || return 1
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1; }
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
    tail -5 "$dir/server.log" >&2
    rm -rf "$dir"
    return 1
  fi
}

start() {
  local bin port
  if ! bin=$(bindir); then
    echo "postgres-test-cluster: skipped: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)" >&2
    return $skip
  fi
  for _ in 1 2 3; do
    port=$(free_port)
    if start_on "$bin" "$port"; then
      echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
      return 0
    fi
  done
  echo "postgres-test-cluster: could not start a cluster (3 tries)" >&2
  return 1
}

stop() {
  local url=${1:?usage: postgres-test-cluster.sh stop URL} port dir bin
  port=$(sed -nE 's#^postgres://[^@]*@127\.0\.0\.1:([0-9]+)/.*#\1#p' <<<"$url")
  [ -n "$port" ] || { echo "postgres-test-cluster: not a URL of this script: $url" >&2; return 2; }
  dir=$(dir_of "$port")
  [ -d "$dir/data" ] || { echo "postgres-test-cluster: no cluster in $dir" >&2; return 1; }
  bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  rm -rf "$dir"
}

run() {
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || { echo "usage: postgres-test-cluster.sh run -- CMD..." >&2; return 2; }
  local status=0
  # url is global: the EXIT trap runs after this function has returned.
  url=$(start) || status=$?
  if [ $status -eq $skip ]; then
    "$@"
    return
  fi
  [ $status -eq 0 ] || return $status
  trap 'stop "$url"' EXIT
  trap 'exit 130' INT TERM
  DIALOGBOT_TEST_POSTGRES=$url "$@"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
run) shift && run "$@" ;;
*)
  sed -n '2,17s/^# \{0,1\}//p' "$0" >&2
  exit 2
  ;;
esac
