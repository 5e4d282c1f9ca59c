//! Golden test: SMA(10,20) crossover on GOOG daily must match, trade for trade, the
//! result on which backtesting.py, backtrader and NautilusTrader agree
//! (`tests/fixtures/goog_sma_10_20.json`).

use std::path::Path;

use engine::strategy::{run, SmaCrossover};
use engine::{Engine, EngineConfig};
use market_data::{Amount, Candle, MarketSession, Price, Slice, Step, SymbolBar, Timeframe};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    closed_trades: u64,
    open_trades_at_end: u64,
    final_equity: Amount,
    final_cash: Amount,
    final_position: i64,
    trades: Vec<RefTrade>,
}

#[derive(Deserialize)]
struct RefTrade {
    entry_date: String,
    entry_price: Price,
    quantity: i64,
    exit_date: Option<String>,
    exit_price: Option<Price>,
}

/// Every bar its own step; daily bars each end a trading day.
fn daily_slice(symbol: &str, candles: &[Candle]) -> Slice {
    Slice {
        timeframe: Timeframe::Daily,
        symbols: vec![symbol.to_string()],
        warmup: vec![Vec::new()],
        steps: candles
            .iter()
            .enumerate()
            .map(|(i, c)| Step {
                ts: c.ts,
                start: i as u32,
                len: 1,
                is_eod: true,
                session: MarketSession::Regular,
            })
            .collect(),
        bars: candles
            .iter()
            .map(|&candle| SymbolBar { symbol: 0, candle })
            .collect(),
    }
}

fn date(ts: i64) -> String {
    market_data::datetime::format_ts(ts)[..10].to_string()
}

#[test]
fn sma_10_20_on_goog_matches_reference_engines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candles = market_data::csv::load_csv(&root.join("sample-data/ohlcv/GOOG.csv")).unwrap();
    assert_eq!(candles.len(), 2148);
    let reference: Reference =
        serde_json::from_str(include_str!("fixtures/goog_sma_10_20.json")).unwrap();

    let slice = daily_slice("GOOG", &candles);
    let mut engine = Engine::new(EngineConfig::new(
        vec!["GOOG".into()],
        Amount::from_int(100_000),
    ))
    .unwrap();
    let results = run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100));

    let closed: Vec<_> = reference
        .trades
        .iter()
        .filter(|t| t.exit_date.is_some())
        .collect();
    assert_eq!(closed.len() as u64, reference.closed_trades);
    assert_eq!(results.trades.len(), closed.len());
    for (i, (got, want)) in results.trades.iter().zip(&closed).enumerate() {
        assert_eq!(
            date(got.entry_time),
            want.entry_date,
            "trade {i} entry date"
        );
        assert_eq!(got.entry_price, want.entry_price, "trade {i} entry price");
        assert_eq!(got.quantity, want.quantity, "trade {i} quantity");
        assert_eq!(
            Some(date(got.exit_time)),
            want.exit_date,
            "trade {i} exit date"
        );
        assert_eq!(
            Some(got.exit_price),
            want.exit_price,
            "trade {i} exit price"
        );
    }
    let open: Vec<_> = reference
        .trades
        .iter()
        .filter(|t| t.exit_date.is_none())
        .collect();
    assert_eq!(open.len() as u64, reference.open_trades_at_end);
    assert_eq!(engine.position(0), reference.final_position);
    assert_eq!(results.account.positions[0].avg_cost, open[0].entry_price);
    assert_eq!(results.account.cash, reference.final_cash);
    assert_eq!(results.metrics.final_equity, reference.final_equity);
    assert_eq!(results.metrics.total_trades, reference.closed_trades);
    assert_eq!(results.metrics.ticks_processed, 2148);
}

/// FNV-1a, 64 bits: enough to tell bytes apart in a pin.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The snapshot bytes and the metrics of this run are those the engine produced before
/// it became its own crate (commit 8d67f86): snapshots stored by running sessions
/// restore, and results compare, across the change.
#[test]
fn snapshot_and_metrics_bytes_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candles = market_data::csv::load_csv(&root.join("sample-data/ohlcv/GOOG.csv")).unwrap();
    let slice = daily_slice("GOOG", &candles);
    let mut engine = Engine::new(EngineConfig::new(
        vec!["GOOG".into()],
        Amount::from_int(100_000),
    ))
    .unwrap();
    let results = run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100));
    let snapshot = engine.snapshot();
    assert_eq!(
        (snapshot.len(), fnv(&snapshot)),
        (15_010, 0x8ace_c517_b6ab_15c2)
    );
    let metrics = serde_json::to_string(&results.metrics).unwrap();
    assert_eq!(
        (results.trades.len(), fnv(metrics.as_bytes())),
        (46, 0x3e52_dd1a_ebfd_2e70)
    );
    assert_eq!(Engine::restore(&snapshot).unwrap().snapshot(), snapshot);
}

/// `run_controlled` equals `run` when its control lets it finish, is asked every
/// `CONTROL_EVERY_BARS` bars with the bars done so far, and a stop ends the run right
/// there with the control's reason.
#[test]
fn a_controlled_run_reports_progress_and_stops_when_told() {
    use engine::strategy::{run_controlled, CONTROL_EVERY_BARS};
    use engine::EndReason;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candles = market_data::csv::load_csv(&root.join("sample-data/ohlcv/GOOG.csv")).unwrap();
    let slice = daily_slice("GOOG", &candles);
    let engine = || {
        Engine::new(EngineConfig::new(
            vec!["GOOG".into()],
            Amount::from_int(100_000),
        ))
        .unwrap()
    };
    let want = run(&mut engine(), &slice, &mut SmaCrossover::new(10, 20, 100));

    let mut asked = Vec::new();
    let got = run_controlled(
        &mut engine(),
        &slice,
        &mut SmaCrossover::new(10, 20, 100),
        |done| {
            asked.push(done);
            None
        },
    );
    assert_eq!(got.metrics, want.metrics);
    assert_eq!(got.trades, want.trades);
    assert_eq!(got.reason, EndReason::Completed);
    assert_eq!(asked, vec![0, CONTROL_EVERY_BARS, 2 * CONTROL_EVERY_BARS]);

    let stopped = run_controlled(
        &mut engine(),
        &slice,
        &mut SmaCrossover::new(10, 20, 100),
        |done| (done >= CONTROL_EVERY_BARS).then_some(EndReason::Stopped),
    );
    assert_eq!(stopped.reason, EndReason::Stopped);
    assert_eq!(stopped.metrics.ticks_processed, CONTROL_EVERY_BARS);
    assert!(stopped.metrics.total_trades < want.metrics.total_trades);
}
