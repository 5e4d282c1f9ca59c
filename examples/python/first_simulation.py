"""A first SimuTrador simulation with a plain WebSocket client (pip install websockets).

Buys 10 GOOG at the first bar, holds it through 2010, and prints fills and the result.
Usage: SIMUTRADOR_API_KEY=stk_... python3 examples/python/first_simulation.py
"""
import asyncio
import json
import os
import urllib.request

import websockets

URL = os.environ.get("SIMUTRADOR_URL", "http://127.0.0.1:8003")
KEY = os.environ["SIMUTRADOR_API_KEY"]


def token() -> str:
    req = urllib.request.Request(f"{URL}/auth/token", data=b"{}", method="POST",
                                 headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)["access_token"]


async def main() -> None:
    ws_url = URL.replace("http", "ws", 1) + f"/ws/simulate?token={token()}"
    async with websockets.connect(ws_url, max_size=None) as ws:
        print(json.loads(await ws.recv())["type"])  # connection_ready
        await ws.send(json.dumps({"type": "start_simulation", "request_id": "start-1", "data": {
            "symbols": ["GOOG"], "start_date": "2010-01-01", "end_date": "2011-01-01",
            "initial_capital": "100000", "timeframe": "daily",
            "flow_control": True, "max_pending_ticks": 1}}))
        session_id, ordered = None, False
        while True:
            msg = json.loads(await ws.recv())
            kind, data = msg["type"], msg["data"]
            if kind == "session_created":
                session_id = data["session_id"]
            elif kind == "tick":
                if not ordered:  # decide on this bar; the order fills at the next bar's open
                    await ws.send(json.dumps({"type": "order_batch", "request_id": "b1", "data": {
                        "session_id": session_id, "batch_id": "b1", "orders": [
                            {"order_id": "o1", "symbol": "GOOG", "side": "buy",
                             "type": "market", "quantity": 10}]}}))
                    ordered = True
                await ws.send(json.dumps({"type": "tick_ack", "data": {
                    "session_id": session_id, "sequence_id": data["sequence_id"]}}))
            elif kind == "execution_report":
                print("filled", data["executed_quantity"], "@", data["executed_price"])
            elif kind in ("error", "session_error"):
                print(kind, data["error_code"], data["message"])
            elif kind == "simulation_end":
                print("final equity", data["final_equity"], "return %", round(data["total_return_pct"], 2))
                break


asyncio.run(main())
