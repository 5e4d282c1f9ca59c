#!/bin/bash
# The /health rate with request limits off or on, and the gateway CPU per request.
# Run from the repository root after `cargo build --release -p gateway`.
# usage: benches/health_bench.sh disabled|enabled|redis PORT
mode=$1; port=$2
D=$(mktemp -d)
env=(SIMUTRADOR__DATA_DIR=$D SIMUTRADOR__SERVER__PORT=$port SIMUTRADOR__SERVER__COMPAT_PORT=0 SIMUTRADOR__LOG__LEVEL=warn)
case $mode in
  disabled) env+=(SIMUTRADOR__RATE_LIMITS__ENABLED=false);;
  enabled) env+=(SIMUTRADOR__RATE_LIMITS__HEALTH__REQUESTS=4000000000);;
  redis) env+=(SIMUTRADOR__RATE_LIMITS__HEALTH__REQUESTS=4000000000 SIMUTRADOR__RATE_LIMITS__API__REQUESTS=4000000000 SIMUTRADOR__SESSION_STORE__REDIS_URL=redis://127.0.0.1:6379 SIMUTRADOR__SESSION_STORE__KEY_PREFIX=bench$RANDOM);;
esac
env "${env[@]}" target/release/simutrador-gateway > $D/out.log 2>&1 &
pid=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.2; done
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
c0=$(cpu)
out=$(wrk -t2 -c32 -d5s http://127.0.0.1:$port/health)
c1=$(cpu)
n=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
tck=$(getconf CLK_TCK)
echo "$mode rps=$rps requests=$n server_cpu_us_per_req=$(echo "scale=2; ($c1-$c0)*1000000/$tck/$n" | bc) non2xx=${non2xx:-0}"
kill -TERM $pid; wait $pid 2>/dev/null
rm -rf $D
