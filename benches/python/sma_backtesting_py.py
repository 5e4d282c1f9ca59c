#!/usr/bin/env python3
"""Python baseline: SMA(10,20) crossover in backtesting.py (https://kernc.github.io/backtesting.py/).

Mirrors SimuTrador's `SmaCrossover::new(10, 20, 100)` (engine/src/strategy.rs):
buy 100 units at market when SMA10 crosses above SMA20 while flat; close the whole
position at market when it crosses below while long. A cross needs fast < slow on the
previous bar and fast > slow now, which is exactly `backtesting.lib.crossover`.
No commission; market orders fill at the next bar's open (`trade_on_close=False`).

Modes:
  synthetic N   SYNTHETIC 1-minute geometric random walk of N bars (numpy, seeded);
                times only `Backtest(...).run()` with time.perf_counter().
  goog          sample-data/ohlcv/GOOG.csv (daily bars), cash 100000;
                prints closed trades and final equity (open position marked at last close).

The synthetic bars are NOT real prices. They follow the same recipe as
market-data/src/synthetic.rs (start 100.00, 0.1% log-return sd per bar, 2 decimals,
open = previous close, high/low a random fraction of sigma beyond the body, rounded
outward to the tick, positive volume) but use numpy's PCG64, so they are not
bit-identical to the Rust series.

Examples:
  python3 sma_backtesting_py.py synthetic 100000 --runs 3
  python3 sma_backtesting_py.py goog
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

import backtesting
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

GOOG_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "sample-data", "ohlcv", "GOOG.csv")
START = pd.Timestamp("2020-01-01T00:00:00")  # 1_577_836_800, as in engine/benches/sma.rs


def sma(values, n):
    return pd.Series(values).rolling(n).mean().to_numpy()


class SmaCross(Strategy):
    fast = 10
    slow = 20
    quantity = 100

    def init(self):
        close = self.data.Close
        self.sma_fast = self.I(sma, close, self.fast)
        self.sma_slow = self.I(sma, close, self.slow)

    def next(self):
        if crossover(self.sma_fast, self.sma_slow):
            if not self.position:
                self.buy(size=self.quantity)
        elif crossover(self.sma_slow, self.sma_fast):
            if self.position.is_long:
                self.position.close()


def synthetic(n, seed=42, start_price=100.0, sigma=0.001):
    """SYNTHETIC 1-minute geometric random walk with valid OHLC (tick 0.01)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    up_z = np.abs(rng.standard_normal(n))
    down_z = np.abs(rng.standard_normal(n))
    vol_z = rng.standard_normal(n)

    close = start_price * np.exp(np.cumsum(sigma * z - sigma * sigma / 2.0))
    close = np.maximum(np.round(close, 2), 0.01)
    open_ = np.empty(n)
    open_[0] = start_price
    open_[1:] = close[:-1]
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = np.maximum(np.ceil(body_hi * (1.0 + sigma * up_z / 2.0) * 100.0 - 1e-9) / 100.0, body_hi)
    low = np.minimum(np.floor(body_lo * (1.0 - sigma * down_z / 2.0) * 100.0 + 1e-9) / 100.0, body_lo)
    low = np.maximum(low, np.minimum(0.01, body_lo))
    volume = np.maximum(np.round(1000.0 * np.exp(0.5 * vol_z)), 1.0)

    index = pd.date_range(START, periods=n, freq="min")
    df = pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close,
                       "Volume": volume}, index=index)
    assert (df.High >= df[["Open", "Close"]].max(axis=1)).all()
    assert (df.Low <= df[["Open", "Close"]].min(axis=1)).all()
    assert (df.Low > 0).all() and (df.Volume > 0).all()
    return df


def expected_trades(df, fast=10, slow=20):
    """Independent check of the trade count: same signals, flat/long state machine.

    A signal on bar i fills at bar i+1's open, before bar i+1's signal is evaluated;
    a signal on the last bar never fills. Returns (closed, open) round trips.
    """
    f = sma(df.Close.to_numpy(), fast)
    s = sma(df.Close.to_numpy(), slow)
    up = np.zeros(len(df), bool)
    dn = np.zeros(len(df), bool)
    up[1:] = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
    dn[1:] = (s[:-1] < f[:-1]) & (s[1:] > f[1:])
    long_, closed = False, 0
    for i in np.flatnonzero(up | dn):
        if i == len(df) - 1:
            break
        if up[i] and not long_:
            long_ = True
        elif dn[i] and long_:
            long_, closed = False, closed + 1
    return closed, int(long_)


def report(stats):
    trades = stats["_trades"]
    return int(stats["# Trades"]), float(stats["Equity Final [$]"]), len(trades)


def run_synthetic(n, runs, cash, seed):
    df = synthetic(n, seed=seed)
    need = 100 * df.High.max()
    if need > cash / 2:
        sys.exit(f"cash {cash} too low for this series (100 x max high = {need:.2f})")
    exp_closed, exp_open = expected_trades(df)
    print(f"backtesting.py {backtesting.__version__}, pandas {pd.__version__}, "
          f"numpy {np.__version__}, python {sys.version.split()[0]}")
    print(f"SYNTHETIC series: {n} 1-minute bars, seed {seed}, close {df.Close.iloc[0]:.2f} -> "
          f"{df.Close.iloc[-1]:.2f}, range [{df.Low.min():.2f}, {df.High.max():.2f}], cash {cash}")
    for r in range(runs):
        bt = Backtest(df, SmaCross, cash=cash, commission=0.0, trade_on_close=False,
                      exclusive_orders=False, finalize_trades=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "trades remain open" warning
            t0 = time.perf_counter()
            stats = bt.run()
            t = time.perf_counter() - t0
        closed, equity, _ = report(stats)
        open_now = len(stats["_strategy"].trades)
        ok = ("OK" if (closed, open_now) == (exp_closed, exp_open)
              else f"MISMATCH, expected {exp_closed} + {exp_open}")
        print(f"run {r + 1}: {n} bars, {t:.3f} seconds, {n / t:,.0f} bars per second, "
              f"{closed} closed trades (+{open_now} open; check {ok}), "
              f"final equity {equity:.2f}")


def run_goog(cash):
    df = pd.read_csv(GOOG_CSV, index_col=0, parse_dates=True)
    exp_closed, exp_open = expected_trades(df)
    bt = Backtest(df, SmaCross, cash=cash, commission=0.0, trade_on_close=False,
                  exclusive_orders=False, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stats = bt.run()
        t = time.perf_counter() - t0
    closed, equity, _ = report(stats)
    open_now = len(stats["_strategy"].trades)
    print(f"backtesting.py {backtesting.__version__}")
    print(f"GOOG: {len(df)} daily bars ({df.index[0].date()} .. {df.index[-1].date()}), cash {cash}")
    print(f"closed trades: {closed}, open trades: {open_now} "
          f"(independent check: {exp_closed} closed + {exp_open} open)")
    print(f"final equity (open position marked at last close): {equity:.2f}")
    print(f"run time: {t:.4f} seconds, {len(df) / t:,.0f} bars per second")
    trades = stats["_trades"]
    if len(trades):
        print(f"first closed trade: size {trades.Size.iloc[0]}, entry {trades.EntryTime.iloc[0].date()} "
              f"@ {trades.EntryPrice.iloc[0]}, exit {trades.ExitTime.iloc[0].date()} "
              f"@ {trades.ExitPrice.iloc[0]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("synthetic", help="time a SYNTHETIC N-bar series")
    s.add_argument("bars", type=int)
    s.add_argument("--runs", type=int, default=1)
    s.add_argument("--cash", type=float, default=1_000_000,
                   help="starting cash (default 1,000,000, as in engine/benches/sma.rs)")
    s.add_argument("--seed", type=int, default=42)
    g = sub.add_parser("goog", help="run on sample-data/ohlcv/GOOG.csv")
    g.add_argument("--cash", type=float, default=100_000)
    a = p.parse_args()
    if a.mode == "synthetic":
        run_synthetic(a.bars, a.runs, a.cash, a.seed)
    else:
        run_goog(a.cash)


if __name__ == "__main__":
    main()
