"""Resume latency after a node is killed, against the local cluster of
deploy/local-cluster.sh (two gateways, Postgres, Redis session store, nginx).

Per trial: start a lock-step GOOG daily session through the load balancer, acknowledge
a random number of ticks, read the session's owner node from Redis, SIGKILL that node
(`local-cluster.sh kill N`), reconnect through nginx and `resume_session`. Measured:
from the start of the reconnect to the first tick after the resume (the server sends
it once the client has acknowledged `last_sequence_id`). Sequence continuity is
checked before and after the kill, the session is closed, and the killed node is
restarted (`local-cluster.sh restart-node N`) before the next trial.

Usage (cluster started with `deploy/local-cluster.sh start`):
  python3 benches/python/failover_resume.py --trials 100 [--raw resume_ms.txt]
  SIMUTRADOR_API_KEY=stk_... python3 benches/python/failover_resume.py ...

Without an API key (--api-key or SIMUTRADOR_API_KEY) the script creates an enterprise
key with `simutrador-gateway admin create-key`, using the cluster's secrets in the
state directory. Only the standard library and `websockets` are needed (Redis is read
over a raw socket).
"""
import argparse
import asyncio
import json
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import websockets

from simutrador_auth import token

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# ------------------------------------------------------------------ cluster helpers

def read_state(state_dir: str) -> dict:
    """Settings recorded by `local-cluster.sh start` (cluster.state, shell syntax)."""
    path = os.path.join(state_dir, "cluster.state")
    if not os.path.exists(path):
        sys.exit(f"no cluster state at {path}: run deploy/local-cluster.sh start first")
    out = subprocess.run(
        ["bash", "-c", f'. {shlex.quote(path)}; echo "$DATABASE_URL"; echo "$REDIS_URL"; '
                       f'echo "${{PORTS[*]}}"; echo "$LB_PORT"'],
        check=True, capture_output=True, text=True).stdout.splitlines()
    return {"database_url": out[0], "redis_url": out[1],
            "ports": [int(p) for p in out[2].split()], "lb_port": int(out[3])}


def create_key(state_dir: str, database_url: str, binary: str) -> str:
    env = dict(os.environ)
    with open(os.path.join(state_dir, "secrets", "jwt_secret")) as f:
        env["SIMUTRADOR__JWT__SECRET"] = f.read().strip()
    with open(os.path.join(state_dir, "secrets", "api_key_pepper")) as f:
        env["SIMUTRADOR__AUTH__API_KEY_PEPPER"] = f.read().strip()
    env["SIMUTRADOR__MODE"] = "production"
    env["SIMUTRADOR__DATABASE__URL"] = database_url
    out = subprocess.run([binary, "admin", "create-key", "--email", "failover-bench@example.com",
                          "--plan", "enterprise", "--name", "failover_resume.py"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return out.strip().splitlines()[-1].strip()


def redis_get(url: str, key: str):
    """GET over a raw socket (RESP); redis://[:password@]host[:port][/db]."""
    u = urllib.parse.urlparse(url)
    cmds = []
    if u.password:
        cmds.append(["AUTH", u.password] if not u.username else ["AUTH", u.username, u.password])
    db = (u.path or "/").strip("/")
    if db:
        cmds.append(["SELECT", db])
    cmds.append(["GET", key])
    payload = b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in c)
        for c in cmds)
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=5) as s:
        s.sendall(payload)
        f = s.makefile("rb")
        reply = None
        for _ in cmds:
            line = f.readline()
            if line.startswith(b"-"):
                raise RuntimeError(f"redis: {line.decode().strip()}")
            if line.startswith(b"$"):
                n = int(line[1:])
                reply = None if n < 0 else f.read(n + 2)[:-2].decode()
            else:
                reply = line[1:].strip().decode()
        return reply


def run_script(script: str, *args: str, state_dir: str) -> str:
    env = dict(os.environ, STATE_DIR=state_dir)
    res = subprocess.run([script, *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed ({res.returncode}):\n"
                           f"{res.stdout}{res.stderr}")
    return res.stdout + res.stderr


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as res:
            return res.status == 200
    except OSError:
        return False


def wait_dead(pid: int, timeout: float = 5.0) -> None:
    """Until `pid` is gone (or a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.001)
    raise RuntimeError(f"pid {pid} still alive {timeout}s after SIGKILL")


# ------------------------------------------------------------------ one trial

class TrialError(Exception):
    pass


async def recv_json(ws, timeout: float) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, kind: str, timeout: float, seen=None) -> dict:
    """Next message of type `kind`; fails on errors. Other messages go to `seen`."""
    while True:
        m = await recv_json(ws, timeout)
        if m["type"] == kind:
            return m
        if m["type"] in ("error", "session_error"):
            raise TrialError(f"waiting for {kind}: {json.dumps(m)}")
        if seen is not None:
            seen.append(m)


async def tick_ack(ws, sid: str, seq: int) -> None:
    await ws.send(json.dumps({"type": "tick_ack",
                              "data": {"session_id": sid, "sequence_id": seq}}))


async def connect(ws_url: str, timeout: float):
    """Connects and waits for connection_ready; retries refused handshakes (e.g. 502 from
    nginx) until `timeout`. Returns (ws, attempts)."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            ws = await asyncio.wait_for(
                websockets.connect(ws_url, max_size=None, compression=None), timeout)
            ready = await recv_json(ws, timeout)
            if ready["type"] != "connection_ready":
                raise TrialError(f"expected connection_ready, got {json.dumps(ready)}")
            return ws, attempts
        except (OSError, websockets.exceptions.InvalidStatus,
                websockets.exceptions.InvalidHandshake) as e:
            if time.monotonic() >= deadline:
                raise TrialError(f"reconnect failed after {attempts} attempts: {e!r}")
            await asyncio.sleep(0.005)


async def trial(args, ws_url: str, state: dict, n: int, rng: random.Random) -> dict:
    acks = rng.randint(args.min_acks, args.max_acks)
    ws, _ = await connect(ws_url, 10)
    await ws.send(json.dumps({"type": "start_simulation", "request_id": f"start-{n}", "data": {
        "symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
        "initial_capital": "100000", "timeframe": "daily",
        "flow_control": True, "max_pending_ticks": 1}}))
    sid = (await until(ws, "session_created", 10))["data"]["session_id"]
    # Acknowledge ticks 1..acks, then hold tick acks+1 without acknowledging it: the
    # node dies with that tick delivered and unacknowledged.
    last = 0
    while True:
        m = await until(ws, "tick", 10)
        seq = m["data"]["sequence_id"]
        if seq != last + 1:
            raise TrialError(f"tick {seq} after {last} before the kill")
        last = seq
        if seq > acks:
            break
        await tick_ack(ws, sid, seq)

    owner = redis_get(state["redis_url"], f"{args.key_prefix}:{{{sid}}}:owner")
    if owner is None:
        raise TrialError(f"no owner key {args.key_prefix}:{{{sid}}}:owner in Redis "
                         "(wrong --key-prefix, or no Redis store?)")
    victim = owner.rsplit(":", 1)[0]
    if not victim.startswith("gateway"):
        raise TrialError(f"owner {owner!r} is not a local-cluster node id")
    node = int(victim[len("gateway"):])
    out = run_script(args.cluster_script, "kill", str(node), state_dir=args.state_dir)
    pid = int(out.split("pid ")[1].split(")")[0])
    wait_dead(pid)

    # ---- measured: reconnect through nginx, resume, first tick after the resume
    t0 = time.perf_counter()
    ws2, attempts = await connect(ws_url, 10)
    t_ready = time.perf_counter()
    await ws2.send(json.dumps({"type": "resume_session", "request_id": f"resume-{n}", "data": {
        "session_id": sid, "last_sequence_id": last, "epoch": 1}}))
    resumed = await until(ws2, "session_resumed", 10)
    t_resumed = time.perf_counter()
    d = resumed["data"]
    if d["resumed_from_sequence"] != last or d["epoch"] != 1:
        raise TrialError(f"unexpected session_resumed: {json.dumps(resumed)}")
    nxt = await recv_json(ws2, 10)
    if nxt["type"] != "account_snapshot":
        raise TrialError(f"expected account_snapshot after session_resumed, got {json.dumps(nxt)}")
    await tick_ack(ws2, sid, last)
    m = await until(ws2, "tick", 10)
    t1 = time.perf_counter()
    # ---- end of the measured part
    if m["data"]["sequence_id"] != last + 1:
        raise TrialError(f"first tick after resume is {m['data']['sequence_id']}, want {last + 1}")
    new_owner = redis_get(state["redis_url"], f"{args.key_prefix}:{{{sid}}}:owner")
    if new_owner is None or new_owner.rsplit(":", 1)[0] == victim:
        raise TrialError(f"owner after resume is {new_owner!r} (killed {victim})")
    seq = last + 1
    for _ in range(args.after):
        await tick_ack(ws2, sid, seq)
        m = await until(ws2, "tick", 10)
        if m["data"]["sequence_id"] != seq + 1:
            raise TrialError(f"tick {m['data']['sequence_id']} after {seq} after the resume")
        seq += 1

    await ws2.send(json.dumps({"type": "close_session", "request_id": f"close-{n}",
                               "data": {"session_id": sid}}))
    await until(ws2, "session_closed", 10)
    await ws2.close()
    try:
        await asyncio.wait_for(ws.close(), 1)
    except Exception:
        pass
    return {"trial": n, "session_id": sid, "acked": acks, "killed": victim,
            "resumed_on": new_owner.rsplit(":", 1)[0], "last_sequence_id": last,
            "attempts": attempts,
            "ready_ms": (t_ready - t0) * 1e3, "resumed_ms": (t_resumed - t0) * 1e3,
            "first_tick_ms": (t1 - t0) * 1e3}


# ------------------------------------------------------------------ main

def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--min-acks", type=int, default=50)
    ap.add_argument("--max-acks", type=int, default=500)
    ap.add_argument("--after", type=int, default=20,
                    help="ticks checked for continuity after the resume (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=6.0,
                    help="seconds to wait after restarting the killed node, so nginx "
                         "(max_fails=1 fail_timeout=5s) routes to it again (default 6)")
    ap.add_argument("--raw", help="write one JSON line per trial to this file")
    ap.add_argument("--api-key", default=os.environ.get("SIMUTRADOR_API_KEY"))
    ap.add_argument("--key-prefix", default=os.environ.get("SIMUTRADOR__SESSION_STORE__KEY_PREFIX", "st"),
                    help="session store key prefix of the gateways (default st)")
    ap.add_argument("--state-dir", default=os.environ.get(
        "STATE_DIR", os.path.join(REPO, "target", "local-cluster")))
    ap.add_argument("--cluster-script", default=os.path.join(REPO, "deploy", "local-cluster.sh"))
    ap.add_argument("--gateway-bin", default=os.path.join(REPO, "target", "release", "simutrador-gateway"),
                    help="used only to create an API key")
    args = ap.parse_args()

    state = read_state(args.state_dir)
    if not state["redis_url"]:
        sys.exit("the cluster runs without Redis (REDIS_URL was empty): nothing to fail over")
    base = f"http://127.0.0.1:{state['lb_port']}"
    key = args.api_key or create_key(args.state_dir, state["database_url"], args.gateway_bin)
    tok, tok_at = token(base, key), time.monotonic()
    print(run_script(args.cluster_script, "status", state_dir=args.state_dir).rstrip())

    rng = random.Random(args.seed)
    raw = open(args.raw, "w") if args.raw else None
    results, failures = [], []
    for n in range(1, args.trials + 1):
        if time.monotonic() - tok_at > 1800:
            tok, tok_at = token(base, key), time.monotonic()
        ws_url = f"ws://127.0.0.1:{state['lb_port']}/ws/simulate?token={tok}"
        # nginx breaks least_conn ties round-robin and a trial makes two WebSocket
        # requests, so without this the same node would own every session.
        if rng.random() < 0.5:
            urllib.request.urlopen(f"{base}/health", timeout=5).close()
        try:
            r = await trial(args, ws_url, state, n, rng)
            results.append(r)
            if raw:
                raw.write(json.dumps(r) + "\n")
                raw.flush()
            print(f"trial {n:3}: acked {r['acked']:3}, killed {r['killed']}, resumed on "
                  f"{r['resumed_on']}: reconnect {r['ready_ms']:6.2f} ms, session_resumed "
                  f"{r['resumed_ms']:6.2f} ms, first tick {r['first_tick_ms']:6.2f} ms"
                  + (f" ({r['attempts']} connect attempts)" if r["attempts"] > 1 else ""),
                  flush=True)
        except Exception as e:
            failures.append((n, repr(e)))
            print(f"trial {n:3}: FAILED: {e!r}", flush=True)
        # Bring every node that is down back (the killed one, or any after a failure).
        for i, port in enumerate(state["ports"], 1):
            if not ready(port):
                run_script(args.cluster_script, "restart-node", str(i), state_dir=args.state_dir)
        if n < args.trials:
            time.sleep(args.settle)
    if raw:
        raw.close()

    print()
    if results:
        ms = [r["first_tick_ms"] for r in results]
        print(f"{len(results)} trials, {len(failures)} failed; reconnect to first resumed tick: "
              f"p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms, max {max(ms):.2f} ms "
              f"(mean {statistics.fmean(ms):.2f}, min {min(ms):.2f})")
        for name, k in (("connection_ready", "ready_ms"), ("session_resumed", "resumed_ms")):
            xs = [r[k] for r in results]
            print(f"  of which to {name}: p50 {pct(xs, 50):.2f} ms, p99 {pct(xs, 99):.2f} ms, "
                  f"max {max(xs):.2f} ms")
        retried = sum(1 for r in results if r["attempts"] > 1)
        if retried:
            print(f"  {retried} reconnects needed more than one attempt")
    for n, e in failures:
        print(f"trial {n} failed: {e}")
    sys.exit(1 if failures or not results else 0)


if __name__ == "__main__":
    asyncio.run(main())
