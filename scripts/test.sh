#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with a Rust toolchain and Postgres
# and Redis running: installs what the tests need when it can (as root, with apt-get),
# checks the services, runs `cargo test --workspace` with any extra arguments, and
# prints one total line. Exits non-zero, saying exactly what to do, when something
# is missing.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p gateway      # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"

fail() { echo "test.sh: $*" >&2; exit 1; }

# The cluster failover test (gateway/tests/failover.rs) runs real nginx (Debian's
# nginx-light) in front of two gateway processes; the console's browser tests
# (gateway/tests/console.rs) drive Debian's headless Chromium through chromedriver.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  # A fresh machine often has no package lists yet.
  apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1
}
if [ ! -x /usr/sbin/nginx ]; then
  echo "test.sh: installing nginx-light for the failover test"
  apt_install nginx-light \
    || fail "nginx is required by gateway/tests/failover.rs and could not be installed; run as root: apt-get update && apt-get install -y nginx-light"
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "test.sh: installing chromium and chromium-driver for the console's browser tests"
  apt_install chromium chromium-driver \
    || fail "chromium and chromedriver are required by gateway/tests/console.rs and could not be installed; run as root: apt-get update && apt-get install -y chromium chromium-driver"
fi

# Postgres and Redis must be up: the tests that need them run, never skip.
pg_host_port=${TEST_POSTGRES_URL#*://}; pg_host_port=${pg_host_port#*@}; pg_host_port=${pg_host_port%%/*}
pg_host=${pg_host_port%:*}; pg_port=${pg_host_port##*:}
[ "$pg_port" = "$pg_host_port" ] && pg_port=5432
redis_host_port=${TEST_REDIS_URL#redis://}; redis_host_port=${redis_host_port#*@}; redis_host_port=${redis_host_port%%/*}
redis_host=${redis_host_port%:*}; redis_port=${redis_host_port##*:}
[ "$redis_port" = "$redis_host_port" ] && redis_port=6379

reachable() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
pg_up() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$pg_host" -p "$pg_port" -t 5
  else
    reachable "$pg_host" "$pg_port"
  fi
}
redis_up() {
  if command -v redis-cli >/dev/null; then
    [ "$(timeout 5 redis-cli -u "$TEST_REDIS_URL" ping 2>/dev/null)" = "PONG" ]
  else
    reachable "$redis_host" "$redis_port"
  fi
}
pg_up || fail "Postgres is unreachable at $TEST_POSTGRES_URL (TEST_POSTGRES_URL). Start it with:
  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start
or point TEST_POSTGRES_URL at a server whose user may create databases."
redis_up || fail "Redis is unreachable at $TEST_REDIS_URL (TEST_REDIS_URL). Start it with:
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
or point TEST_REDIS_URL at a running Redis."
echo "test.sh: Postgres and Redis reachable"

# One total line at the end, since cargo's own last line is the (empty) doc-test
# summary of the last crate.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
