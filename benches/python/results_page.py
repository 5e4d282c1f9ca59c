"""The console's results page in headless Chromium: time from navigation start to
everything drawn (`#results[data-rendered]`, the page's `results-rendered` performance
mark) for a finished server-side backtest, over plain WebDriver (Debian's chromium and
chromedriver, no other package).

It creates a user (admin API), signs in as the console does (cookies), runs one
backtest (or takes --session), then opens /results/<id> --runs times: the first in a
fresh browser (nothing cached), the others reloads.

Usage (gateway running; SIMUTRADOR_API_KEY an admin key):
  SIMUTRADOR_URL=http://127.0.0.1:8213 SIMUTRADOR_API_KEY=stk_... \\
    python3 benches/python/results_page.py --symbol SYNTH --timeframe 1min \\
      --start 2020-01-01 --end 2021-12-01 --provider synth --runs 5
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from simutrador_auth import token

URL = os.environ.get("SIMUTRADOR_URL", "http://127.0.0.1:8003")
KEY = os.environ["SIMUTRADOR_API_KEY"]
PASSWORD = "a long and careful passphrase"


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            text = res.read()
            return json.loads(text) if text else None, res.headers
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url}: {e.code} {e.read().decode()}")


def api(method, path, bearer, body=None):
    return call(method, URL + path, body, {"Authorization": f"Bearer {bearer}"})[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """Just the WebDriver calls this needs, over HTTP."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800",
                     "--disable-dev-shm-usage"]}}}}
        self.sid = call("POST", f"{self.base}/session", caps)[0]["value"]["sessionId"]

    def do(self, method, path, body=None):
        return call(method, f"{self.base}/session/{self.sid}{path}", body)[0]["value"]

    def run(self, script):
        return self.do("POST", "/execute/sync", {"script": script, "args": []})

    def quit(self):
        call("DELETE", f"{self.base}/session/{self.sid}")


def rendered_ms(driver, url):
    driver.do("POST", "/url", {"url": url})
    deadline = time.time() + 60
    while time.time() < deadline:
        state = driver.run(
            "const r = document.getElementById('results');"
            "if (r && r.dataset.failed) return 'failed';"
            "const m = performance.getEntriesByName('results-rendered');"
            "return m.length ? m[0].startTime : null;")
        if state == "failed":
            raise SystemExit("the page could not show the session")
        if state is not None:
            return state
        time.sleep(0.02)
    raise SystemExit("the page never finished drawing")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--symbol", default="GOOG")
    p.add_argument("--timeframe", default="daily")
    p.add_argument("--start", default="2004-01-01")
    p.add_argument("--end", default="2014-01-01")
    p.add_argument("--provider")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--detail", action="store_true", help="print the last load's requests")
    args = p.parse_args()

    admin = token(URL, KEY)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    api("POST", "/admin/users", admin, {"email": email, "password": PASSWORD, "plan": "enterprise"})
    login = {"email": email, "password": PASSWORD, "server": "default"}
    bearer = call("POST", URL + "/auth/login", login)[0]["access_token"]
    body = {"strategy": "sma_crossover", "params": {"fast": 10, "slow": 20},
            "symbols": [args.symbol], "start_date": args.start, "end_date": args.end,
            "initial_capital": "100000", "timeframe": args.timeframe}
    if args.provider:
        body["data_provider"] = args.provider
    status = api("POST", "/api/backtests", bearer, body)
    sid = status["session_id"]
    while status["state"] in ("queued", "running"):
        time.sleep(0.05)
        status = api("GET", f"/api/backtests/{sid}", bearer)
    detail = api("GET", f"/api/sessions/{sid}", bearer)
    print(f"session {sid}: {status['state']}, {status['ticks_processed']} bars, "
          f"{detail['metrics']['total_trades']} trades")

    # The console's cookies for the browser.
    _, headers = call("POST", URL + "/auth/login", login, {"X-Auth-Mode": "cookie"})
    cookies = [c.split(";")[0].split("=", 1) for c in headers.get_all("Set-Cookie")]

    port = free_port()
    driver_proc = subprocess.Popen(["chromedriver", f"--port={port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                call("GET", f"http://127.0.0.1:{port}/status")
                break
            except Exception:
                time.sleep(0.05)
        driver = WebDriver(port)
        driver.do("POST", "/url", {"url": URL + "/health"})
        for name, value in cookies:
            if name != "st_refresh":
                driver.do("POST", "/cookie", {"cookie": {"name": name, "value": value, "path": "/"}})
        page = f"{URL}/results/{sid}"
        times = [rendered_ms(driver, page) for _ in range(args.runs)]
        charts = driver.run("return document.querySelector(\"[data-chart='candles']\")"
                            ".parentElement.querySelector('p').textContent;")
        if args.detail:
            for name, start, took, size in driver.run(
                    "return performance.getEntriesByType('resource').map(e => "
                    "[e.name.replace(location.origin, ''), e.startTime, e.duration, e.transferSize]);"):
                print(f"  {start:7.0f} ms +{took:5.0f} ms {size:>9} B  {name[:90]}")
        driver.quit()
    finally:
        driver_proc.terminate()
    print(f"candles: {charts}")
    print("navigation start -> rendered, ms: " + ", ".join(f"{t:.0f}" for t in times))
    print(f"first (fresh browser) {times[0]:.0f} ms; median of the rest "
          f"{statistics.median(times[1:] or times):.0f} ms")


if __name__ == "__main__":
    main()
