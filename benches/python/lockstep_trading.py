"""Lock-step throughput from Python (pip install websockets), acknowledging only or
trading: N concurrent sessions (one connection each) over GOOG daily bars; with
--order-every K, every Kth tick is answered with a one-share market order (buy when
flat, sell when long) sent as `order_batch` right before the `tick_ack`, without
waiting for the `batch_ack`. Prints ticks/s, the tick-to-tick round trip and what the
orders came to.

Usage (gateway running; the key's plan must allow N connections and sessions, and
2 messages per tick per connection when trading):
  SIMUTRADOR_URL=http://127.0.0.1:8003 SIMUTRADOR_API_KEY=stk_... \\
    python3 benches/python/lockstep_trading.py --sessions 1 --order-every 1
"""
import argparse
import asyncio
import json
import os
import statistics
import time

import websockets

from simutrador_auth import token

URL = os.environ.get("SIMUTRADOR_URL", "http://127.0.0.1:8003")
KEY = os.environ["SIMUTRADOR_API_KEY"]


class Report:
    def __init__(self):
        self.ticks = 0
        self.first = self.last = None
        self.round_trips = []
        self.orders = self.batch_acks = self.rejected = self.fills = 0
        self.error = None


async def session(ws_url: str, args, report: Report) -> None:
    async with websockets.connect(ws_url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "connection_ready"
        await ws.send(json.dumps({"type": "start_simulation", "request_id": "start", "data": {
            "symbols": [args.symbol], "start_date": args.start, "end_date": args.end,
            "initial_capital": "100000", "timeframe": "daily",
            "flow_control": True, "max_pending_ticks": 1}}))
        session_id, position, stopping = None, 0, False
        while True:
            msg = json.loads(await ws.recv())
            kind, data = msg["type"], msg.get("data", {})
            if kind == "session_created":
                session_id = data["session_id"]
            elif kind == "tick":
                now = time.perf_counter()
                if report.last is not None and not stopping:
                    report.round_trips.append(now - report.last)
                report.first = report.first or now
                report.last = now
                report.ticks += 1
                if stopping:
                    continue
                if args.bars and report.ticks >= args.bars:
                    stopping = True
                    await ws.send(json.dumps({"type": "stop_simulation", "request_id": "stop",
                                              "data": {"session_id": session_id}}))
                    continue
                if args.order_every and report.ticks % args.order_every == 0:
                    report.orders += 1
                    batch = f"b{report.orders}"
                    await ws.send(json.dumps({"type": "order_batch", "request_id": batch, "data": {
                        "session_id": session_id, "batch_id": batch, "orders": [{
                            "order_id": f"o{report.orders}", "symbol": args.symbol,
                            "side": "sell" if position > 0 else "buy",
                            "type": "market", "quantity": 1}]}}))
                await ws.send(json.dumps({"type": "tick_ack", "data": {
                    "session_id": session_id, "sequence_id": data["sequence_id"]}}))
            elif kind == "batch_ack":
                report.batch_acks += 1
                report.rejected += len(data["rejected_orders"])
            elif kind == "execution_report":
                report.fills += 1
                q = data["executed_quantity"]
                position += q if data["side"] == "buy" else -q
            elif kind in ("error", "session_error"):
                report.error = f'{kind} {data["error_code"]}: {data["message"]}'
                if msg.get("request_id", "").startswith("b"):
                    report.rejected += 1
                else:
                    return
            elif kind == "simulation_end":
                await ws.send(json.dumps({"type": "close_session", "request_id": "close",
                                          "data": {"session_id": session_id}}))
                return


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1, help="concurrent sessions (default 1)")
    ap.add_argument("--order-every", type=int, default=0,
                    help="an order every K ticks; 0 (default): acknowledge only")
    ap.add_argument("--bars", type=int, default=0, help="stop each session after this many ticks")
    ap.add_argument("--symbol", default="GOOG")
    ap.add_argument("--start", default="2004-01-01")
    ap.add_argument("--end", default="2014-01-01")
    args = ap.parse_args()
    if args.sessions < 1 or args.order_every < 0 or args.bars < 0:
        ap.error("--sessions must be at least 1; --order-every and --bars at least 0")
    ws_url = URL.replace("http", "ws", 1) + f"/ws/simulate?token={token(URL, KEY)}"
    reports = [Report() for _ in range(args.sessions)]
    t0 = time.perf_counter()
    results = await asyncio.gather(*(session(ws_url, args, r) for r in reports),
                                   return_exceptions=True)
    wall = time.perf_counter() - t0
    for r, res in zip(reports, results):
        if isinstance(res, BaseException):
            r.error = f"{type(res).__name__}: {res}"
    ticks = sum(r.ticks for r in reports)
    firsts = [r.first for r in reports if r.first is not None]
    lasts = [r.last for r in reports if r.last is not None]
    span = max(lasts) - min(firsts) if firsts else 0.0
    rts = sorted(x for r in reports for x in r.round_trips)
    mode = f"an order every {args.order_every} tick(s)" if args.order_every else "ack only"
    print(f"{args.sessions} session(s), lock-step, {mode}, {args.symbol} daily "
          f"{args.start} .. {args.end}")
    print(f"ticks {ticks}, wall {wall:.3f} s, {ticks / wall:.0f} ticks/s over the wall time; "
          f"{ticks / span if span else 0:.0f} ticks/s from first to last tick ({span:.3f} s)")
    if rts:
        p = lambda q: rts[min(len(rts) - 1, max(0, int(q * len(rts) + 0.999999) - 1))] * 1000
        print(f"tick round trip p50 {p(0.50):.3f} ms, p99 {p(0.99):.3f} ms, "
              f"max {rts[-1] * 1000:.3f} ms, mean {statistics.fmean(rts) * 1000:.3f} ms "
              f"({len(rts)} samples)")
    if args.order_every:
        print(f"orders {sum(r.orders for r in reports)} sent, "
              f"{sum(r.batch_acks for r in reports)} batch_acks, "
              f"{sum(r.rejected for r in reports)} rejected, {sum(r.fills for r in reports)} fills")
    errors = [r.error for r in reports if r.error]
    print(f"errors {len(errors)}" + "".join(f"\n  {e}" for e in sorted(set(errors))))


asyncio.run(main())
