#!/usr/bin/env bash
# The docker-compose topology as native processes on loopback: two gateways (production
# mode, shared Postgres database, Redis session store) behind nginx. For machines
# without Docker and for failover experiments.
#
#   deploy/local-cluster.sh start | stop | status | kill N | restart-node N
#
# Environment (defaults in brackets):
#   POSTGRES_URL   server URL, no database or parameters [postgres://postgres@127.0.0.1:5432]
#   DB_NAME        database, created if missing [simutrador_cluster]
#   REDIS_URL      session store; empty = in-memory per node [redis://127.0.0.1:6379]
#   GATEWAY_PORTS  one port per gateway [18011 18012]
#   LB_PORT        nginx [18010]
#   STATE_DIR      secrets, data dirs, logs, pid files [<repo>/target/local-cluster]
#   NGINX          nginx binary [/usr/sbin/nginx]
#   READY_TIMEOUT  seconds to wait for /ready [60]
# `start` records the ports and URLs in STATE_DIR; the other commands use those.
# Start over: stop, then remove STATE_DIR and drop the database (with new secrets,
# every API key stored before stops working).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${STATE_DIR:-$REPO/target/local-cluster}
BIN=$REPO/target/release/simutrador-gateway
NGINX=${NGINX:-/usr/sbin/nginx}
READY_TIMEOUT=${READY_TIMEOUT:-60}
# A little above the gateway's server.shutdown_timeout_sec (30 s) drain.
STOP_TIMEOUT=${STOP_TIMEOUT:-40}

usage() {
    sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- cluster settings

# Settings of a fresh start, from the environment.
settings_from_env() {
    POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
    POSTGRES_URL=${POSTGRES_URL%/}
    DB_NAME=${DB_NAME:-simutrador_cluster}
    [[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "DB_NAME must match [a-z_][a-z0-9_]*: $DB_NAME"
    DATABASE_URL=$POSTGRES_URL/$DB_NAME
    # No colon: an explicitly empty REDIS_URL selects the in-memory store.
    REDIS_URL=${REDIS_URL-redis://127.0.0.1:6379}
    read -r -a PORTS <<<"${GATEWAY_PORTS:-18011 18012}"
    ((${#PORTS[@]} > 0)) || die "GATEWAY_PORTS is empty"
    LB_PORT=${LB_PORT:-18010}
    local port
    for port in "${PORTS[@]}" "$LB_PORT"; do
        [[ $port =~ ^[0-9]+$ ]] || die "not a port number: $port"
    done
}

save_settings() {
    {
        printf 'DATABASE_URL=%q\n' "$DATABASE_URL"
        printf 'REDIS_URL=%q\n' "$REDIS_URL"
        printf 'PORTS=(%s)\n' "${PORTS[*]}"
        printf 'LB_PORT=%q\n' "$LB_PORT"
    } >"$STATE_DIR/cluster.state"
}

# Settings recorded by the last `start`.
load_settings() {
    [[ -f $STATE_DIR/cluster.state ]] || die "no cluster in $STATE_DIR (run: $0 start)"
    # shellcheck source=/dev/null
    . "$STATE_DIR/cluster.state"
}

node_dir() { echo "$STATE_DIR/gateway$1"; }

check_node_index() {
    if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > ${#PORTS[@]})); then
        die "node index must be 1..${#PORTS[@]}: $1"
    fi
}

# ---------------------------------------------------------------- processes

# The pid in FILE if that process is alive and runs PATTERN (a recycled pid is not ours).
live_pid() {
    local file=$1 pattern=$2 pid
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    echo "$pid"
}

gateway_pid() { live_pid "$(node_dir "$1")/gateway.pid" simutrador-gateway; }
nginx_pid() { live_pid "$STATE_DIR/nginx/nginx.pid" nginx; }

# Sends SIGTERM, waits up to SECONDS, then SIGKILL.
stop_pid() {
    local pid=$1 seconds=$2 name=$3 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || {
            echo "stopped $name (pid $pid)"
            return 0
        }
        sleep 0.1
    done
    echo "$name (pid $pid) still running after ${seconds}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# Waits until URL answers 2xx; fails early if PID dies, shows LOG's tail on failure.
wait_ready() {
    local url=$1 pid=$2 log=$3 name=$4 deadline=$((SECONDS + READY_TIMEOUT))
    until http_ok "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "local-cluster: $name exited before $url answered; last lines of $log:" >&2
            tail -n 20 "$log" >&2 || true
            echo "(whatever did start keeps running: $0 stop)" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "local-cluster: $name: $url not ready after ${READY_TIMEOUT}s; last lines of $log:" >&2
            tail -n 20 "$log" >&2 || true
            curl -sS --max-time 2 "$url" >&2 || true
            echo >&2
            echo "(whatever did start keeps running: $0 stop)" >&2
            exit 1
        fi
        sleep 0.3
    done
}

# The environment every node and every admin command shares. Secrets are read from
# their files, never printed.
cluster_env() {
    echo "SIMUTRADOR__MODE=production"
    echo "SIMUTRADOR__DATABASE__URL=$DATABASE_URL"
    echo "SIMUTRADOR__JWT__SECRET=$(<"$STATE_DIR/secrets/jwt_secret")"
    echo "SIMUTRADOR__AUTH__API_KEY_PEPPER=$(<"$STATE_DIR/secrets/api_key_pepper")"
    echo "SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT=$REPO/sample-data"
    echo "SIMUTRADOR__SESSION_STORE__REDIS_URL=$REDIS_URL"
    # nginx on loopback forwards the client's address in X-Forwarded-For.
    echo "SIMUTRADOR__RATE_LIMITS__TRUSTED_PROXIES=127.0.0.1"
}

# Starts gateway N in the background (if not already running); prints its pid.
start_gateway() {
    local n=$1 dir pid
    dir=$(node_dir "$n")
    if pid=$(gateway_pid "$n"); then
        echo "gateway$n already running (pid $pid)" >&2
        echo "$pid"
        return 0
    fi
    mkdir -p "$dir/data"
    local -a env_vars
    mapfile -t env_vars < <(cluster_env)
    echo "=== $(date -u +%FT%TZ) start gateway$n on 127.0.0.1:${PORTS[n - 1]}" >>"$dir/gateway.log"
    # Fresh session (setsid) so a terminal's Ctrl-C does not reach the nodes.
    env "${env_vars[@]}" \
        SIMUTRADOR__SERVER__HOST=127.0.0.1 \
        SIMUTRADOR__SERVER__PORT="${PORTS[n - 1]}" \
        SIMUTRADOR__SERVER__COMPAT_PORT=0 \
        SIMUTRADOR__SERVER__NODE_ID="gateway$n" \
        SIMUTRADOR__DATA_DIR="$dir/data" \
        setsid "$BIN" serve >>"$dir/gateway.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/gateway.pid"
    echo "started gateway$n (pid $pid, port ${PORTS[n - 1]}, log $dir/gateway.log)" >&2
    echo "$pid"
}

stop_gateway() {
    local n=$1 pid
    if pid=$(gateway_pid "$n"); then
        stop_pid "$pid" "$STOP_TIMEOUT" "gateway$n"
    else
        echo "gateway$n not running"
    fi
    rm -f "$(node_dir "$n")/gateway.pid"
}

# ---------------------------------------------------------------- preparation

ensure_binary() {
    if [[ ! -x $BIN ]]; then
        echo "building $BIN (cargo build --release -p gateway)"
        (cd "$REPO" && cargo build --release -p gateway)
    fi
}

ensure_tools() {
    [[ -x $NGINX ]] || die "nginx not found at $NGINX: install it with \`apt-get install nginx-light\` (or set NGINX=/path/to/nginx)"
    command -v curl >/dev/null || die "curl is needed: apt-get install curl"
    command -v psql >/dev/null || die "psql is needed to create the database: apt-get install postgresql-client"
}

ensure_database() {
    local admin_url=$POSTGRES_URL/postgres exists
    exists=$(psql "$admin_url" -v ON_ERROR_STOP=1 -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ||
        die "cannot reach Postgres at $POSTGRES_URL (set POSTGRES_URL)"
    if [[ $exists != 1 ]]; then
        psql "$admin_url" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
        echo "created database $DB_NAME"
    fi
}

check_redis() {
    [[ -n $REDIS_URL ]] || {
        echo "REDIS_URL is empty: each node keeps its sessions in memory"
        return 0
    }
    if command -v redis-cli >/dev/null; then
        [[ $(redis-cli -u "$REDIS_URL" ping 2>/dev/null) == PONG ]] ||
            die "Redis does not answer at $REDIS_URL (start redis-server, set REDIS_URL, or REDIS_URL= for in-memory)"
    fi
}

# Generated once, shared by all nodes, reused on every start (a new pepper would
# invalidate every API key in the database).
ensure_secrets() {
    local dir=$STATE_DIR/secrets name
    mkdir -p "$dir"
    chmod 700 "$dir"
    for name in jwt_secret api_key_pepper; do
        if [[ ! -s $dir/$name ]]; then
            (
                umask 077
                # Letters and digits only, 64 characters; the leading letter keeps it
                # from ever being read as a number by the configuration loader.
                printf 'k%s' "$(head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 63)" >"$dir/$name"
            )
        fi
        chmod 600 "$dir/$name"
    done
}

write_nginx_conf() {
    local dir=$STATE_DIR/nginx port servers="" user_line=""
    mkdir -p "$dir/tmp"
    for port in "${PORTS[@]}"; do
        servers+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
    done
    # As root, nginx would run its workers as `nobody`, who cannot use the temp paths
    # in the state directory.
    if ((EUID == 0)); then
        user_line="user root root;"
    fi
    # Loopback variant of deploy/nginx.conf; keep the two in step.
    cat >"$dir/nginx.conf" <<EOF
# Generated by deploy/local-cluster.sh; rewritten on every start.
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 4096;
}

http {
    log_format gateway '\$remote_addr [\$time_local] "\$request_method \$uri \$server_protocol" '
                       '\$status \$body_bytes_sent \$request_time upstream=\$upstream_addr';
    access_log $dir/access.log gateway;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }

    upstream simutrador_gateways {
        least_conn;
$servers    }

    server {
        listen 127.0.0.1:$LB_PORT;

        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$connection_upgrade;

        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;
        proxy_connect_timeout 2s;

        location /ws/ {
            proxy_pass http://simutrador_gateways;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
        }

        location / {
            proxy_pass http://simutrador_gateways;
            proxy_read_timeout 60s;
            proxy_send_timeout 60s;
        }
    }
}
EOF
}

nginx_cmd() { "$NGINX" -p "$STATE_DIR/nginx" -e "$STATE_DIR/nginx/error.log" -c "$STATE_DIR/nginx/nginx.conf" "$@"; }

start_nginx() {
    local pid
    write_nginx_conf
    nginx_cmd -t -q || die "nginx rejected $STATE_DIR/nginx/nginx.conf"
    if pid=$(nginx_pid); then
        nginx_cmd -s reload
        echo "nginx already running (pid $pid): configuration reloaded"
    else
        nginx_cmd
        # The daemonized master writes its pid file just after the launcher returns.
        for _ in $(seq 50); do
            nginx_pid >/dev/null && break
            sleep 0.1
        done
        pid=$(nginx_pid) || die "nginx did not start; see $STATE_DIR/nginx/error.log"
        echo "started nginx (pid $pid) on 127.0.0.1:$LB_PORT (logs $STATE_DIR/nginx/)"
    fi
}

# ---------------------------------------------------------------- commands

# The demo key a node printed on first start, if this start was the first.
demo_key() {
    local log=$1 offset=$2
    tail -c +"$((offset + 1))" "$log" | grep -A1 '^First start' | tail -n 1 | tr -d ' ' || true
}

cmd_start() {
    settings_from_env
    ensure_tools
    ensure_binary
    mkdir -p "$STATE_DIR"
    ensure_database
    check_redis
    ensure_secrets
    save_settings

    local n pid key="" log
    local -a pids offsets
    for n in $(seq 1 "${#PORTS[@]}"); do
        log=$(node_dir "$n")/gateway.log
        offsets[n]=$(stat -c %s "$log" 2>/dev/null || echo 0)
        pids[n]=$(start_gateway "$n")
    done
    for n in $(seq 1 "${#PORTS[@]}"); do
        wait_ready "http://127.0.0.1:${PORTS[n - 1]}/ready" "${pids[n]}" \
            "$(node_dir "$n")/gateway.log" "gateway$n"
        echo "gateway$n ready on http://127.0.0.1:${PORTS[n - 1]}"
        [[ -n $key ]] || key=$(demo_key "$(node_dir "$n")/gateway.log" "${offsets[n]}")
    done

    start_nginx
    wait_ready "http://127.0.0.1:$LB_PORT/ready" "$(nginx_pid)" \
        "$STATE_DIR/nginx/error.log" nginx
    echo "load balancer ready on http://127.0.0.1:$LB_PORT"

    cat <<EOF

Cluster up. Connect clients to the load balancer:
  http://127.0.0.1:$LB_PORT        (WebSocket: ws://127.0.0.1:$LB_PORT/ws/simulate)
  export SIMUTRADOR_URL=http://127.0.0.1:$LB_PORT
EOF
    if [[ -n $key ]]; then
        cat <<EOF

First start on an empty database: the gateways created the admin user and this demo
API key (shown only now, also in the gateway log):
  $key
EOF
    fi
    cat <<EOF

Create an API key (printed on the last line):
  SIMUTRADOR__MODE=production \\
  SIMUTRADOR__DATABASE__URL='$DATABASE_URL' \\
  SIMUTRADOR__JWT__SECRET="\$(cat '$STATE_DIR/secrets/jwt_secret')" \\
  SIMUTRADOR__AUTH__API_KEY_PEPPER="\$(cat '$STATE_DIR/secrets/api_key_pepper')" \\
  '$BIN' admin create-key --email you@example.com --plan enterprise

Then: curl -s -X POST -H "X-API-Key: stk_..." http://127.0.0.1:$LB_PORT/auth/token
Failover: $0 kill 1 | restart-node 1 | status | stop
EOF
}

cmd_stop() {
    [[ -d $STATE_DIR ]] || {
        echo "nothing to stop ($STATE_DIR does not exist)"
        return 0
    }
    local pid n dir
    if pid=$(nginx_pid); then
        stop_pid "$pid" 10 nginx
    else
        echo "nginx not running"
    fi
    # Every gateway directory, also those of an earlier start with more ports.
    for dir in "$STATE_DIR"/gateway*/; do
        [[ -d $dir ]] || continue
        n=${dir%/}
        n=${n##*/gateway}
        [[ $n =~ ^[0-9]+$ ]] && stop_gateway "$n"
    done
    return 0
}

cmd_status() {
    load_settings
    local n pid all_up=0 code
    for n in $(seq 1 "${#PORTS[@]}"); do
        if pid=$(gateway_pid "$n"); then
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                "http://127.0.0.1:${PORTS[n - 1]}/ready" || true)
            echo "gateway$n  up    pid $pid  http://127.0.0.1:${PORTS[n - 1]}  /ready: $code"
            [[ $code == 200 ]] || all_up=1
        else
            echo "gateway$n  down                 port ${PORTS[n - 1]}"
            all_up=1
        fi
    done
    if pid=$(nginx_pid); then
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
            "http://127.0.0.1:$LB_PORT/ready" || true)
        echo "nginx     up    pid $pid  http://127.0.0.1:$LB_PORT  /ready: $code"
        [[ $code == 200 ]] || all_up=1
    else
        echo "nginx     down                 port $LB_PORT"
        all_up=1
    fi
    return "$all_up"
}

cmd_kill() {
    load_settings
    check_node_index "$1"
    local pid
    pid=$(gateway_pid "$1") || die "gateway$1 is not running"
    kill -KILL "$pid"
    echo "sent SIGKILL to gateway$1 (pid $pid)"
}

cmd_restart_node() {
    load_settings
    check_node_index "$1"
    local n=$1 pid
    ensure_tools
    stop_gateway "$n"
    pid=$(start_gateway "$n")
    wait_ready "http://127.0.0.1:${PORTS[n - 1]}/ready" "$pid" \
        "$(node_dir "$n")/gateway.log" "gateway$n"
    echo "gateway$n ready on http://127.0.0.1:${PORTS[n - 1]}"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
kill) (($# == 2)) || usage; cmd_kill "$2" ;;
restart-node) (($# == 2)) || usage; cmd_restart_node "$2" ;;
*) usage ;;
esac
