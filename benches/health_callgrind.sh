#!/bin/bash
# Instructions the gateway spends per /health request, with request limits off or on,
# counted by callgrind (repeatable to 0.1%, whatever else the machine is doing).
# Two runs serve 1,000 and 11,000 requests over one keep-alive connection; the
# difference over 10,000 cancels start-up and shutdown. Kernel work is not counted.
# Run from the repository root after `cargo build --release -p gateway`.
# usage: benches/health_callgrind.sh disabled|enabled PORT [BINARY]
mode=$1; port=$2; bin=${3:-target/release/simutrador-gateway}
run() {
  local n=$1 D
  D=$(mktemp -d)
  local env=(SIMUTRADOR__DATA_DIR=$D SIMUTRADOR__SERVER__PORT=$port SIMUTRADOR__SERVER__COMPAT_PORT=0 SIMUTRADOR__LOG__LEVEL=warn)
  case $mode in
    disabled) env+=(SIMUTRADOR__RATE_LIMITS__ENABLED=false);;
    enabled) env+=(SIMUTRADOR__RATE_LIMITS__HEALTH__REQUESTS=4000000000);;
    *) echo "mode: disabled or enabled" >&2; exit 2;;
  esac
  env "${env[@]}" valgrind --tool=callgrind --callgrind-out-file=$D/cg.out "$bin" > $D/out.log 2>&1 &
  local pid=$!
  for _ in $(seq 300); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.5; done
  python3 - "$port" "$n" <<'PY' || exit 1
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
buf = b""
for _ in range(n):
    s.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                if not head.startswith("HTTP/1.1 200"):
                    sys.exit("unexpected answer: " + head.splitlines()[0])
                buf = buf[end + 4 + length:]
                break
        data = s.recv(65536)
        if not data:
            sys.exit("connection closed")
        buf += data
PY
  kill -TERM $pid; wait $pid 2>/dev/null
  awk '/^summary:/ {print $2}' $D/cg.out
  rm -rf $D
}
small=$(run 1000); large=$(run 11000)
echo "$mode instructions_per_request=$(( (large - small) / 10000 ))"
