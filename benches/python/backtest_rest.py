"""Server-side backtests over REST: N concurrent `POST /api/backtests` runs, each
polled with `GET /api/backtests/{id}` every 5 ms until it ends. Prints each run's wall
time from the POST to `completed` (what a user waits for), and the total.

Usage (gateway running; the key's plan must allow N sessions):
  SIMUTRADOR_URL=http://127.0.0.1:8003 SIMUTRADOR_API_KEY=stk_... \\
    python3 benches/python/backtest_rest.py --symbol SYNTH --timeframe 1min \\
      --start 2020-01-01 --end 2022-01-01 --provider synth --runs 3 --sessions 1
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import time
import urllib.request

from simutrador_auth import token

URL = os.environ.get("SIMUTRADOR_URL", "http://127.0.0.1:8003")
KEY = os.environ["SIMUTRADOR_API_KEY"]


def call(method, path, bearer, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {bearer}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read())


def one(args, bearer):
    body = {
        "strategy": args.strategy,
        "params": json.loads(args.params),
        "symbols": [args.symbol],
        "start_date": args.start,
        "end_date": args.end,
        "initial_capital": "100000",
        "timeframe": args.timeframe,
    }
    if args.provider:
        body["data_provider"] = args.provider
    started = time.perf_counter()
    status = call("POST", "/api/backtests", bearer, body)
    sid = status["session_id"]
    while status["state"] in ("queued", "running"):
        time.sleep(0.005)
        status = call("GET", f"/api/backtests/{sid}", bearer)
    elapsed = time.perf_counter() - started
    if status["state"] != "completed":
        raise SystemExit(f"{sid} ended {status['state']}")
    result = call("GET", f"/api/sessions/{sid}", bearer)
    return elapsed, status["ticks_processed"], result["metrics"]["total_trades"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--strategy", default="sma_crossover")
    p.add_argument("--params", default='{"fast": 10, "slow": 20}')
    p.add_argument("--symbol", default="GOOG")
    p.add_argument("--timeframe", default="daily")
    p.add_argument("--start", default="2004-01-01")
    p.add_argument("--end", default="2014-01-01")
    p.add_argument("--provider", default="")
    p.add_argument("--sessions", type=int, default=1, help="concurrent backtests")
    p.add_argument("--runs", type=int, default=3, help="rounds of --sessions backtests")
    args = p.parse_args()
    bearer = token(URL, KEY)
    for r in range(args.runs):
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.sessions) as pool:
            done = list(pool.map(lambda _: one(args, bearer), range(args.sessions)))
        total = time.perf_counter() - t0
        times = [d[0] for d in done]
        bars = sum(d[1] for d in done)
        print(
            f"round {r + 1}: {args.sessions} backtest(s), {done[0][1]} bars and "
            f"{done[0][2]} trades each; per run median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms; all in {total * 1000:.0f} ms "
            f"({bars / total / 1e6:.2f} M bars/s)"
        )


if __name__ == "__main__":
    main()
