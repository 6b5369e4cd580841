#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL backend.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # prints export lines
#   go test ./internal/store/postgres/
#   scripts/pg-test-cluster.sh stop "$CAPF_TEST_PG_DIR"
#
# start initdb's a new cluster into a temporary directory (or $CAPF_PG_DIR
# when set and empty), starts it listening only on a unix socket inside that
# directory (no TCP port, nothing to collide with), and prints the
# environment the tests read: CAPF_TEST_POSTGRES, a DSN of the superuser
# "capf" (trust on the socket), and CAPF_TEST_PG_DIR. Members of the role
# capf_pw must give a password (scram-sha-256), for the tests of a wrong
# password.
# The server refuses to run as root: as root the cluster runs as the system
# user capftest, created when missing. Durability is off (fsync,
# synchronous_commit, full_page_writes): the data is thrown away.
#
# stop DIR stops the cluster and removes DIR.
# Uses Debian's postgresql package (scripts/install-deps.sh installs it);
# downloads nothing.
set -euo pipefail

pgbin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "pg-test-cluster: no PostgreSQL server found under /usr/lib/postgresql: run scripts/install-deps.sh (Debian package postgresql)" >&2
    exit 1
  fi
  echo "$d"
}

# as runs its arguments as the cluster's owner.
as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u capftest -- "$@"
  else
    "$@"
  fi
}

start() {
  local bin dir
  bin=$(pgbin)
  if [ "$(id -u)" -eq 0 ] && ! id capftest >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin capftest
  fi
  dir=${CAPF_PG_DIR:-$(mktemp -d /tmp/capf-pg.XXXXXX)}
  mkdir -p "$dir"
  chmod 0755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown capftest: "$dir"; fi
  as "$bin/initdb" -D "$dir/data" -U capf --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  # The password-checked role first: pg_hba.conf takes the first match.
  as sh -c "printf '%s\n' 'local all +capf_pw scram-sha-256' 'local all all trust' >'$dir/data/pg_hba.conf'"
  as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "export CAPF_TEST_POSTGRES='postgres://capf@/postgres?host=$dir&sslmode=disable'"
  echo "export CAPF_TEST_PG_DIR='$dir'"
}

stop() {
  local bin dir=${1:?usage: pg-test-cluster.sh stop DIR}
  bin=$(pgbin)
  if [ -d "$dir/data" ]; then
    as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    /tmp/capf-pg.*) rm -rf "$dir" ;;
    *) rm -rf "$dir/data" ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
