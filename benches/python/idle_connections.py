"""Memory per idle WebSocket connection: opens N connections (each waits for its
`connection_ready`), then samples the gateway's resident set before and after.

Usage (gateway running with a plan that allows N connections):
  SIMUTRADOR_URL=http://127.0.0.1:8003 SIMUTRADOR_API_KEY=stk_... \
    python3 benches/python/idle_connections.py --pid $(pgrep -f simutrador-gateway) -n 1000
"""
import argparse
import asyncio
import json
import os

import websockets

from simutrador_auth import token

URL = os.environ.get("SIMUTRADOR_URL", "http://127.0.0.1:8003")
KEY = os.environ["SIMUTRADOR_API_KEY"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True, help="gateway process id")
    ap.add_argument("-n", type=int, default=1000, help="connections to open")
    args = ap.parse_args()
    ws_url = URL.replace("http", "ws", 1) + f"/ws/simulate?token={token(URL, KEY)}"
    before = rss_kib(args.pid)
    conns = []
    for _ in range(args.n):
        ws = await websockets.connect(ws_url, max_size=None)
        assert json.loads(await ws.recv())["type"] == "connection_ready"
        conns.append(ws)
    await asyncio.sleep(1)
    after = rss_kib(args.pid)
    print(f"{args.n} idle connections: RSS {before} KiB -> {after} KiB, "
          f"{(after - before) / args.n:.1f} KiB per connection")
    await asyncio.gather(*(ws.close() for ws in conns))


asyncio.run(main())
