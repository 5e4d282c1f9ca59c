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

/// The metrics of this run are those the engine produced before it became its own
/// crate (commit 8d67f86), so results compare across changes; the snapshot bytes are
/// pinned for format version 3 (the analytics' curve, peak and months), so a change of
/// the serialized state cannot pass unnoticed without a new `FORMAT_VERSION`.
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
        (38_937, 0xc258_236f_d536_c0b1)
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

/// The analytics of the golden run agree with the float metrics and with themselves:
/// monthly and yearly returns compound to the total return, the last buy-and-hold point
/// is `buy_and_hold_return_pct`, the deepest drawdown point is `max_drawdown_pct`, also
/// when the curve has been thinned hard.
#[test]
fn analytics_of_sma_10_20_on_goog_agree_with_the_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candles = market_data::csv::load_csv(&root.join("sample-data/ohlcv/GOOG.csv")).unwrap();
    let slice = daily_slice("GOOG", &candles);
    for points in [2048, 64, 2] {
        let mut config = EngineConfig::new(vec!["GOOG".into()], Amount::from_int(100_000));
        config.equity_curve_points = points;
        let mut engine = Engine::new(config).unwrap();
        let r = run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100));
        let a = &r.analytics;
        let m = &r.metrics;
        let pct = |p: &engine::Percent| p.to_f64();
        // Four decimals, half away from zero: within 0.00005 of the exact value.
        let close = |x: f64, y: f64| (x - y).abs() <= 0.000_05 + 1e-9;

        // The curve: the plain curve's points with buy and hold and drawdown.
        assert!(a.curve.len() <= points + 1);
        let plain: Vec<_> = a.curve.iter().map(|p| (p.time, p.equity)).collect();
        assert_eq!(plain, r.equity_curve);
        let deepest = a
            .curve
            .iter()
            .map(|p| pct(&p.drawdown_pct))
            .fold(0.0, f64::max);
        assert!(
            close(deepest, m.max_drawdown_pct),
            "{points} points: deepest {deepest} vs max drawdown {}",
            m.max_drawdown_pct
        );
        let last = a.curve.last().unwrap();
        assert_eq!(last.time, candles.last().unwrap().ts);
        let bh = (last.buy_and_hold.to_f64() / 100_000.0 - 1.0) * 100.0;
        assert!((bh - m.buy_and_hold_return_pct).abs() < 1e-6, "{bh}");
        let first_close = candles[0].close.to_f64();
        for p in &a.curve {
            let c = candles
                .iter()
                .find(|c| c.ts == p.time)
                .unwrap()
                .close
                .to_f64();
            let want = 100_000.0 * c / first_close;
            assert!((p.buy_and_hold.to_f64() - want).abs() < 1e-6, "{}", p.time);
        }

        // Months: every calendar month of the data (GOOG listed in August 2004), each
        // return over the previous month's end, compounding to the total return.
        let months: Vec<&str> = a
            .monthly_returns
            .iter()
            .map(|p| p.period.as_str())
            .collect();
        assert_eq!(months.first(), Some(&"2004-08"));
        assert_eq!(months.last(), Some(&"2013-03"));
        assert_eq!(months.len(), 5 + 12 * 8 + 3);
        assert!(months.windows(2).all(|w| w[0] < w[1]));
        let growth = m.final_equity.to_f64() / 100_000.0;
        for periods in [&a.monthly_returns, &a.yearly_returns] {
            let mut prev = 100_000.0;
            let mut product = 1.0;
            // Each factor is off by at most 0.00005% of the base: relatively by
            // 0.0000005 / (1 + r).
            let mut relative = 0.0;
            for p in periods.iter() {
                let e = p.end_equity.to_f64();
                assert!(
                    close(pct(&p.return_pct), (e / prev - 1.0) * 100.0),
                    "{}",
                    p.period
                );
                let factor = 1.0 + pct(&p.return_pct) / 100.0;
                product *= factor;
                relative += 0.000_000_5 / factor;
                prev = e;
            }
            assert_eq!(periods.last().unwrap().end_equity, m.final_equity);
            assert!(
                (product - growth).abs() <= growth * relative * 1.01 + 1e-12,
                "{product} vs {growth}"
            );
        }
        let years: Vec<&str> = a.yearly_returns.iter().map(|p| p.period.as_str()).collect();
        assert_eq!(
            years,
            ["2004", "2005", "2006", "2007", "2008", "2009", "2010", "2011", "2012", "2013"]
        );
        // A year ends where its last month does.
        for y in &a.yearly_returns {
            let last_month = a
                .monthly_returns
                .iter()
                .rfind(|p| p.period.starts_with(&y.period))
                .unwrap();
            assert_eq!(y.end_equity, last_month.end_equity);
        }

        // One exact return per trade, in trade order, matching the float one.
        assert_eq!(a.trade_returns_pct.len(), r.trades.len());
        for (exact, t) in a.trade_returns_pct.iter().zip(&r.trades) {
            assert!(
                close(pct(exact), t.return_pct),
                "{exact} vs {}",
                t.return_pct
            );
        }
    }
}
