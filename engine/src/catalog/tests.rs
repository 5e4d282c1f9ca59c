//! The catalog: what `build` accepts and refuses, and how each built-in strategy
//! trades, on hand-built bars and on the GOOG daily sample.

use std::path::Path;

use model::{Amount, Candle, MarketSession, Price, Slice, Step, SymbolBar, Timeframe};
use protocol::ParamType;
use serde_json::{json, Map, Value};

use super::*;
use crate::strategy::{run, run_with_events, SmaCrossover};
use crate::{Engine, EngineConfig, Event, FillReason, SimulationResults};

fn p(s: &str) -> Price {
    s.parse().unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn err(id: &str, params: Value) -> String {
    build(id, &obj(params)).unwrap_err().message
}

/// Bars of one symbol given as (open, high, low, close); each its own daily step.
fn candles(ohlc: &[[&str; 4]], first_ts: i64) -> Vec<Candle> {
    ohlc.iter()
        .enumerate()
        .map(|(i, b)| Candle {
            ts: first_ts + i as i64 * 86_400,
            open: p(b[0]),
            high: p(b[1]),
            low: p(b[2]),
            close: p(b[3]),
            volume: Amount::from_int(1_000_000),
        })
        .collect()
}

/// A daily slice: per step, the bars of every symbol in index order; every step ends
/// a day.
fn daily(symbols: &[&str], warmup: Vec<Vec<Candle>>, series: &[Vec<Candle>]) -> Slice {
    let steps = series.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Slice {
        timeframe: Timeframe::Daily,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        warmup,
        steps: Vec::new(),
        bars: Vec::new(),
    };
    for i in 0..steps {
        let start = out.bars.len() as u32;
        let mut ts = 0;
        for (symbol, bars) in series.iter().enumerate() {
            if let Some(&candle) = bars.get(i) {
                ts = candle.ts;
                out.bars.push(SymbolBar {
                    symbol: symbol as u32,
                    candle,
                });
            }
        }
        out.steps.push(Step {
            ts,
            start,
            len: out.bars.len() as u32 - start,
            is_eod: true,
            session: MarketSession::Regular,
        });
    }
    out
}

fn engine_for(symbols: &[&str]) -> Engine {
    Engine::new(EngineConfig::new(
        symbols.iter().map(|s| s.to_string()).collect(),
        Amount::from_int(100_000),
    ))
    .unwrap()
}

/// A fill as the tests compare it: order id, signed quantity (sells negative), price,
/// reason, bar time.
type Fill = (String, i64, Price, FillReason, i64);

/// Runs `built` over `slice`; the results and every fill.
fn run_built(built: &mut Built, symbols: &[&str], slice: &Slice) -> (SimulationResults, Vec<Fill>) {
    let mut engine = engine_for(symbols);
    let mut fills = Vec::new();
    let results = run_with_events(&mut engine, slice, &mut built.strategy, |e| {
        if let Event::Execution(x) = e {
            fills.push((
                x.order_id.clone(),
                x.executed_quantity * x.side.sign(),
                x.executed_price,
                x.reason,
                x.timestamp,
            ));
        }
    });
    (results, fills)
}

fn goog() -> Slice {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bars = market_data::csv::load_csv(&root.join("sample-data/ohlcv/GOOG.csv")).unwrap();
    assert_eq!(bars.len(), 2148);
    daily(&["GOOG"], vec![Vec::new()], &[bars])
}

const DAY: i64 = 86_400;
/// 2020-01-01T00:00:00Z, the first bar of the hand-built series.
const T0: i64 = 1_577_836_800;

// ---------------------------------------------------------------------------------------
// sma_crossover and buy_and_hold: the existing strategies, unchanged
// ---------------------------------------------------------------------------------------

#[test]
fn sma_crossover_is_the_existing_strategy_on_goog() {
    let slice = goog();
    let mut built = build(
        "sma_crossover",
        &obj(json!({"fast": 10, "slow": 20, "quantity": 100})),
    )
    .unwrap();
    let mut engine = engine_for(&["GOOG"]);
    let got = run(&mut engine, &slice, &mut built.strategy);
    assert_eq!(got.trades.len(), 46);
    assert_eq!(got.metrics.final_equity, p("194777.00").into());
    let mut engine = engine_for(&["GOOG"]);
    let want = run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100));
    assert_eq!(got, want);
    // The defaults are the same run.
    let mut defaults = build("sma_crossover", &Map::new()).unwrap();
    assert_eq!(
        run(&mut engine_for(&["GOOG"]), &slice, &mut defaults.strategy),
        want
    );
}

#[test]
fn buy_and_hold_buys_each_symbol_once() {
    let a = candles(
        &[
            ["10", "10", "10", "10"],
            ["11", "11", "11", "11"],
            ["12", "12", "12", "12"],
        ],
        T0,
    );
    let b = candles(&[["20", "20", "20", "20"], ["21", "21", "21", "21"]], T0);
    let slice = daily(&["AAA", "BBB"], vec![Vec::new(), Vec::new()], &[a, b]);
    let mut built = build("buy_and_hold", &obj(json!({"quantity": 7}))).unwrap();
    let (results, fills) = run_built(&mut built, &["AAA", "BBB"], &slice);
    assert_eq!(
        fills,
        vec![
            ("bh-0".into(), 7, p("11"), FillReason::Entry, T0 + DAY),
            ("bh-1".into(), 7, p("21"), FillReason::Entry, T0 + DAY),
        ]
    );
    assert!(results.trades.is_empty());
    assert_eq!(results.account.positions.len(), 2);
}

// ---------------------------------------------------------------------------------------
// breakout
// ---------------------------------------------------------------------------------------

/// Lookback 3, stop-loss 2 %, take-profit 4 %, 10 units. Bar 4 (index 3) closes at
/// 102.5 above the band 102 (highs 101, 102, 101.5): entry at bar 5's open 103, stop
/// 100.45, target 106.6. Bar 5 closes above its band (103) but the position is held.
/// Bar 6 reaches the target; its close 106 is above the band 104 (flat again), so bar
/// 7 enters at 105 with stop 103.88 (106 x 0.98) and target 110.24, and its low 103
/// takes the stop.
fn breakout_bars() -> Vec<Candle> {
    candles(
        &[
            ["100", "101", "99", "100"],
            ["100", "102", "99", "101"],
            ["101", "101.5", "100", "101"],
            ["101", "103", "100.5", "102.5"],
            ["103", "104", "102", "103.5"],
            ["104", "107", "103.5", "106"],
            ["105", "105.5", "103", "104"],
            ["104", "104.5", "103.5", "104"],
        ],
        T0,
    )
}

fn breakout_params() -> Map<String, Value> {
    obj(json!({"lookback": 3, "stop_loss_pct": "2", "take_profit_pct": 4, "quantity": 10}))
}

#[test]
fn breakout_enters_on_the_break_and_exits_at_the_exact_bracket_prices() {
    let slice = daily(&["AAA"], vec![Vec::new()], &[breakout_bars()]);
    let mut built = build("breakout", &breakout_params()).unwrap();
    let (results, fills) = run_built(&mut built, &["AAA"], &slice);
    assert_eq!(
        fills,
        vec![
            (
                "brk-1".into(),
                10,
                p("103"),
                FillReason::Entry,
                T0 + 4 * DAY
            ),
            (
                "brk-1-tp".into(),
                -10,
                p("106.6"),
                FillReason::TakeProfit,
                T0 + 5 * DAY
            ),
            (
                "brk-2".into(),
                10,
                p("105"),
                FillReason::Entry,
                T0 + 6 * DAY
            ),
            (
                "brk-2-sl".into(),
                -10,
                p("103.88"),
                FillReason::StopLoss,
                T0 + 6 * DAY
            ),
        ]
    );
    let trades: Vec<_> = results
        .trades
        .iter()
        .map(|t| (t.entry_price, t.exit_price, t.pnl))
        .collect();
    assert_eq!(
        trades,
        vec![
            (p("103"), p("106.6"), p("36").into()),
            (p("105"), p("103.88"), p("-11.2").into()),
        ]
    );
    // Bar 8 closes at 104, below its band 107: no third entry, nothing left working.
    assert_eq!(results.account.open_orders, Vec::<String>::new());
    assert!(results.account.positions.is_empty());
}

#[test]
fn breakout_consumes_warm_up_bars() {
    // The first three bars as warm-up: the signal comes on the run's first bar.
    let bars = breakout_bars();
    let slice = daily(&["AAA"], vec![bars[..3].to_vec()], &[bars[3..].to_vec()]);
    let mut built = build("breakout", &breakout_params()).unwrap();
    let (_, fills) = run_built(&mut built, &["AAA"], &slice);
    assert_eq!(
        fills[0],
        (
            "brk-1".into(),
            10,
            p("103"),
            FillReason::Entry,
            T0 + 4 * DAY
        )
    );
    assert_eq!(fills.len(), 4);
}

#[test]
fn breakout_trades_each_symbol_on_its_own() {
    // BBB is flat: it never breaks out; AAA trades exactly as alone.
    let flat = candles(&[["50", "50", "50", "50"]; 8], T0);
    let slice = daily(
        &["AAA", "BBB"],
        vec![Vec::new(), Vec::new()],
        &[breakout_bars(), flat],
    );
    let mut built = build("breakout", &breakout_params()).unwrap();
    let (_, fills) = run_built(&mut built, &["AAA", "BBB"], &slice);
    let ids: Vec<&str> = fills.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, ["brk-1", "brk-1-tp", "brk-2", "brk-2-sl"]);
    // The same bars on BBB, with AAA flat: BBB trades.
    let flat = candles(&[["50", "50", "50", "50"]; 8], T0);
    let slice = daily(
        &["AAA", "BBB"],
        vec![Vec::new(), Vec::new()],
        &[flat, breakout_bars()],
    );
    let mut built = build("breakout", &breakout_params()).unwrap();
    let (results, fills) = run_built(&mut built, &["AAA", "BBB"], &slice);
    assert_eq!(fills.len(), 4);
    assert!(results.trades.iter().all(|t| t.symbol == "BBB"));
}

#[test]
fn bracket_prices_round_away_from_the_close() {
    let b = Breakout::new(20, p("3"), p("7"), 1);
    // 1.23456789 x 0.97 = 1.1975308533 -> down; x 1.07 = 1.3209876423 -> up.
    assert_eq!(
        b.bracket(p("1.23456789")),
        Some((p("1.19753085"), p("1.32098765")))
    );
    // Exact products stay as they are.
    assert_eq!(b.bracket(p("100")), Some((p("97"), p("107"))));
    // The smallest bounds still give distinct exits on a close of two grid steps...
    let tight = Breakout::new(20, p("0.1"), p("0.1"), 1);
    assert_eq!(
        tight.bracket(Price::from_raw(2)),
        Some((Price::from_raw(1), Price::from_raw(3)))
    );
    // ...but a stop-loss of zero is no price: no order.
    assert_eq!(tight.bracket(Price::from_raw(1)), None);
    // A take-profit beyond the largest price: no order.
    let wide = Breakout::new(20, p("2"), p("500"), 1);
    assert_eq!(wide.bracket(Price::from_raw(i64::MAX / 2)), None);
}

#[test]
fn breakout_on_goog_trades_and_exits_only_by_its_brackets() {
    let slice = goog();
    let mut built = build("breakout", &Map::new()).unwrap();
    let (results, fills) = run_built(&mut built, &["GOOG"], &slice);
    assert!(results.trades.len() > 20, "{}", results.trades.len());
    let mut entries = 0;
    let mut exits = 0;
    for (id, qty, _, reason, _) in &fills {
        match reason {
            FillReason::Entry => {
                entries += 1;
                assert_eq!(
                    (id.as_str(), *qty),
                    (format!("brk-{entries}").as_str(), 100)
                );
            }
            FillReason::StopLoss | FillReason::TakeProfit => {
                exits += 1;
                assert_eq!(*qty, -100);
                let suffix = if *reason == FillReason::StopLoss {
                    "sl"
                } else {
                    "tp"
                };
                assert_eq!(id, &format!("brk-{entries}-{suffix}"));
            }
            FillReason::Exit => panic!("a fill outside the bracket: {id}"),
        }
    }
    // Every entry but possibly the last was closed by exactly one leg.
    assert_eq!(exits, results.trades.len());
    assert!(entries == exits || entries == exits + 1);
    let both = fills.iter().filter(|f| f.3 == FillReason::StopLoss).count();
    assert!(
        both > 0 && both < exits,
        "both legs should occur: {both}/{exits}"
    );
}

// ---------------------------------------------------------------------------------------
// rsi_mean_reversion
// ---------------------------------------------------------------------------------------

/// Period 2, levels 30/70. Closes 100, 103, 96, 95, 92, 99, 101, 100: moves +3 -7
/// (RSI exactly 30: no entry), -7 -1 (RSI 0: buy after bar 4, filled at bar 5's open
/// 94), -1 -3 (0), -3 +7 (exactly 70: no exit), +7 +2 (100: sell after bar 7, filled
/// at bar 8's open 100.5), +2 -1 (66.7).
fn rsi_bars() -> Vec<Candle> {
    candles(
        &[
            ["100", "100", "100", "100"],
            ["101", "103", "101", "103"],
            ["102", "102", "96", "96"],
            ["96", "96", "95", "95"],
            ["94", "94", "92", "92"],
            ["93", "99", "93", "99"],
            ["99", "101", "99", "101"],
            ["100.5", "101", "100", "100"],
        ],
        T0,
    )
}

fn rsi_params() -> Map<String, Value> {
    obj(json!({"period": 2, "oversold": 30, "overbought": 70, "quantity": 10}))
}

#[test]
fn rsi_enters_and_exits_on_the_exact_bars() {
    let slice = daily(&["AAA"], vec![Vec::new()], &[rsi_bars()]);
    let mut built = build("rsi_mean_reversion", &rsi_params()).unwrap();
    let (results, fills) = run_built(&mut built, &["AAA"], &slice);
    assert_eq!(
        fills,
        vec![
            ("rsi-1".into(), 10, p("94"), FillReason::Entry, T0 + 4 * DAY),
            (
                "rsi-2".into(),
                -10,
                p("100.5"),
                FillReason::Exit,
                T0 + 7 * DAY
            ),
        ]
    );
    assert_eq!(results.trades.len(), 1);
    assert_eq!(results.trades[0].pnl, p("65").into());
}

#[test]
fn rsi_levels_are_strict() {
    // Oversold 31 makes the first reading (exactly 30) an entry, one bar earlier;
    // overbought 69 makes the reading of exactly 70 an exit, one bar earlier.
    let slice = daily(&["AAA"], vec![Vec::new()], &[rsi_bars()]);
    let params = obj(json!({"period": 2, "oversold": 31, "overbought": 69, "quantity": 10}));
    let mut built = build("rsi_mean_reversion", &params).unwrap();
    let (_, fills) = run_built(&mut built, &["AAA"], &slice);
    assert_eq!(
        fills,
        vec![
            ("rsi-1".into(), 10, p("96"), FillReason::Entry, T0 + 3 * DAY),
            ("rsi-2".into(), -10, p("99"), FillReason::Exit, T0 + 6 * DAY),
        ]
    );
}

#[test]
fn rsi_consumes_warm_up_and_trades_each_symbol_on_its_own() {
    // The first three closes as warm-up of BBB; AAA is flat (no RSI, no signal).
    let bars = rsi_bars();
    let flat = candles(&[["50", "50", "50", "50"]; 5], T0 + 3 * DAY);
    let warm_flat = candles(&[["50", "50", "50", "50"]; 3], T0);
    let slice = daily(
        &["AAA", "BBB"],
        vec![warm_flat, bars[..3].to_vec()],
        &[flat, bars[3..].to_vec()],
    );
    let mut built = build("rsi_mean_reversion", &rsi_params()).unwrap();
    let (results, fills) = run_built(&mut built, &["AAA", "BBB"], &slice);
    assert_eq!(
        fills,
        vec![
            ("rsi-1".into(), 10, p("94"), FillReason::Entry, T0 + 4 * DAY),
            (
                "rsi-2".into(),
                -10,
                p("100.5"),
                FillReason::Exit,
                T0 + 7 * DAY
            ),
        ]
    );
    assert_eq!(results.trades[0].symbol, "BBB");
}

#[test]
fn rsi_on_goog_trades() {
    let slice = goog();
    let mut built = build("rsi_mean_reversion", &Map::new()).unwrap();
    let (results, fills) = run_built(&mut built, &["GOOG"], &slice);
    assert!(results.trades.len() > 5, "{}", results.trades.len());
    // Entries and exits alternate, ids counting up.
    for (n, f) in fills.iter().enumerate() {
        assert_eq!(f.0, format!("rsi-{}", n + 1));
        let want = if n % 2 == 0 {
            (100, FillReason::Entry)
        } else {
            (-100, FillReason::Exit)
        };
        assert_eq!((f.1, f.3), want, "fill {n}");
    }
}

#[test]
fn no_new_order_while_one_is_working() {
    // Intraday steps (no day end, so day orders stay working) and a volume cap that
    // allows no unit of a 100-unit bar: entries are accepted but never fill. Later
    // signals while flat must not stack more entries on the working one.
    for (id, params, bars) in [
        ("breakout", breakout_params(), breakout_bars()),
        ("rsi_mean_reversion", rsi_params(), rsi_bars()),
    ] {
        let bars: Vec<Candle> = bars
            .into_iter()
            .map(|c| Candle {
                volume: Amount::from_int(100),
                ..c
            })
            .collect();
        let mut slice = daily(&["AAA"], vec![Vec::new()], &[bars]);
        for step in &mut slice.steps {
            step.is_eod = false;
        }
        let mut config = EngineConfig::new(vec!["AAA".into()], Amount::from_int(100_000));
        config.max_volume_participation_bps = Some(50);
        let mut engine = Engine::new(config).unwrap();
        let mut built = build(id, &params).unwrap();
        let results = run(&mut engine, &slice, &mut built.strategy);
        let prefix = if id == "breakout" { "brk" } else { "rsi" };
        assert_eq!(results.account.open_orders, [format!("{prefix}-1")], "{id}");
        assert!(results.account.positions.is_empty(), "{id}");
    }
}

// ---------------------------------------------------------------------------------------
// validation
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_strategy_lists_the_valid_ids() {
    assert_eq!(
        err("sma", json!({})),
        "unknown strategy `sma`; valid ids: sma_crossover, buy_and_hold, breakout, \
         rsi_mean_reversion"
    );
    let long = "x".repeat(10_000);
    assert!(err(&long, json!({})).len() < 200);
}

#[test]
fn unknown_parameter_is_named() {
    assert_eq!(
        err("sma_crossover", json!({"fast": 5, "fats": 5})),
        "unknown parameter `fats` for strategy `sma_crossover`; its parameters: fast, slow, \
         quantity"
    );
    assert!(err("buy_and_hold", json!({"lookback": 3})).contains("`lookback`"));
}

#[test]
fn wrong_types_are_refused_naming_the_parameter() {
    for bad in [
        json!(1.5),
        json!("x"),
        json!("10"),
        json!(10.0),
        json!(null),
        json!([1]),
    ] {
        let e = err("sma_crossover", json!({ "fast": bad }));
        assert!(
            e.starts_with("parameter `fast` must be an integer, got "),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        err("sma_crossover", json!({"slow": 1.5})),
        "parameter `slow` must be an integer, got 1.5"
    );
    assert_eq!(
        err("breakout", json!({"stop_loss_pct": "x"})),
        "parameter `stop_loss_pct` must be a decimal string or number, got \"x\""
    );
    assert_eq!(
        err("breakout", json!({"take_profit_pct": true})),
        "parameter `take_profit_pct` must be a decimal string or number, got true"
    );
    assert_eq!(
        err("breakout", json!({"stop_loss_pct": "1.000000001"})),
        "parameter `stop_loss_pct` takes at most 8 decimal places, got \"1.000000001\""
    );
}

#[test]
fn out_of_bounds_states_the_bounds() {
    assert_eq!(
        err("sma_crossover", json!({"fast": 0})),
        "parameter `fast` must be between 1 and 999, got 0"
    );
    assert_eq!(
        err("rsi_mean_reversion", json!({"period": 501})),
        "parameter `period` must be between 2 and 500, got 501"
    );
    assert_eq!(
        err("breakout", json!({"stop_loss_pct": "50.5"})),
        "parameter `stop_loss_pct` must be between 0.1 and 50, got \"50.5\""
    );
    assert_eq!(
        err("breakout", json!({"take_profit_pct": 0.05})),
        "parameter `take_profit_pct` must be between 0.1 and 500, got 0.05"
    );
    // Beyond what the types hold is out of bounds too, not a panic.
    assert_eq!(
        err("breakout", json!({"quantity": u64::MAX})),
        "parameter `quantity` must be between 1 and 1000000, got 18446744073709551615"
    );
    assert!(err("breakout", json!({"stop_loss_pct": "1e30"})).contains("between 0.1 and 50"));
    assert!(err("breakout", json!({"stop_loss_pct": 1e300})).contains("between 0.1 and 50"));
    assert!(err("buy_and_hold", json!({"quantity": -5})).contains("`quantity`"));
}

#[test]
fn rules_between_parameters() {
    assert_eq!(
        err("sma_crossover", json!({"fast": 20, "slow": 20})),
        "parameter `fast` (20) must be less than `slow` (20)"
    );
    // The default slow is 20.
    assert_eq!(
        err("sma_crossover", json!({"fast": 30})),
        "parameter `fast` (30) must be less than `slow` (20)"
    );
    assert_eq!(
        err("rsi_mean_reversion", json!({"oversold": 70})),
        "parameter `oversold` (70) must be less than `overbought` (70)"
    );
    assert!(build("sma_crossover", &obj(json!({"fast": 19}))).is_ok());
    assert!(build("rsi_mean_reversion", &obj(json!({"oversold": 69}))).is_ok());
}

#[test]
fn resolved_params_fill_defaults_in_the_canonical_encoding() {
    let built = build("breakout", &obj(json!({"stop_loss_pct": "2.50"}))).unwrap();
    assert_eq!(
        Value::Object(built.params),
        json!({"lookback": 20, "stop_loss_pct": "2.5", "take_profit_pct": "4", "quantity": 100})
    );
    // Numbers are read exactly: 0.1 is 0.1, and 1e1 and "10.000" are 10.
    let built = build(
        "breakout",
        &obj(json!({"stop_loss_pct": 0.1, "take_profit_pct": "10.000", "lookback": 2})),
    )
    .unwrap();
    assert_eq!(built.params["stop_loss_pct"], json!("0.1"));
    assert_eq!(built.params["take_profit_pct"], json!("10"));
    let built = build("breakout", &obj(json!({"take_profit_pct": 1e1}))).unwrap();
    assert_eq!(built.params["take_profit_pct"], json!("10"));
    let built = build(
        "breakout",
        &obj(json!({"stop_loss_pct": 0.30000000000000004})),
    );
    // The shortest text of that float has 17 decimals: more than a decimal may have.
    assert!(built
        .unwrap_err()
        .message
        .contains("at most 8 decimal places"));
    let built = build("sma_crossover", &Map::new()).unwrap();
    assert_eq!(
        Value::Object(built.params),
        json!({"fast": 10, "slow": 20, "quantity": 100})
    );
    let built = build("rsi_mean_reversion", &Map::new()).unwrap();
    assert_eq!(
        Value::Object(built.params),
        json!({"period": 14, "oversold": 30, "overbought": 70, "quantity": 100})
    );
    assert_eq!(
        Value::Object(build("buy_and_hold", &Map::new()).unwrap().params),
        json!({"quantity": 100})
    );
}

#[test]
fn the_resolved_params_build_the_same_strategy() {
    // A stored run's params, sent back, reproduce it.
    let slice = daily(&["AAA"], vec![Vec::new()], &[breakout_bars()]);
    let mut first = build("breakout", &breakout_params()).unwrap();
    let mut again = build("breakout", &first.params.clone()).unwrap();
    assert_eq!(again.params, first.params);
    assert_eq!(
        run_built(&mut first, &["AAA"], &slice),
        run_built(&mut again, &["AAA"], &slice)
    );
}

/// A value one step beyond `bound` (an integer 1, a decimal 10^-8) in direction `dir`.
fn step(kind: ParamType, bound: &Value, dir: i64) -> Value {
    match kind {
        ParamType::Integer => json!(bound.as_i64().unwrap() + dir),
        ParamType::Decimal => {
            let d: Price = bound.as_str().unwrap().parse().unwrap();
            json!(params::decimal_text(Price::from_raw(d.raw() + dir)))
        }
    }
}

#[test]
fn the_listed_metadata_is_what_build_accepts() {
    let list = strategies();
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "sma_crossover",
            "buy_and_hold",
            "breakout",
            "rsi_mean_reversion"
        ]
    );
    for s in &list {
        assert!(!s.name.is_empty() && !s.description.is_empty());
        let all = |pick: fn(&protocol::ParamDescription) -> &Value| {
            let m: Map<String, Value> = s
                .params
                .iter()
                .map(|d| (d.name.clone(), pick(d).clone()))
                .collect();
            m
        };
        // Defaults, given explicitly, build and resolve to themselves; so do every
        // parameter at its minimum, and every one at its maximum.
        for given in [all(|d| &d.default), all(|d| &d.min), all(|d| &d.max)] {
            let built = build(&s.id, &given).unwrap_or_else(|e| panic!("{}: {e}", s.id));
            assert_eq!(built.params, given, "{}", s.id);
        }
        assert_eq!(
            build(&s.id, &Map::new()).unwrap().params,
            all(|d| &d.default)
        );
        for d in &s.params {
            assert!(
                !d.label.is_empty() && d.description.ends_with('.'),
                "{}",
                d.name
            );
            match d.kind {
                ParamType::Integer => assert!(d.default.is_i64() && d.min.is_i64()),
                ParamType::Decimal => assert!(d.default.is_string() && d.max.is_string()),
            }
            // Each bound alone (the rest at defaults) builds unless it breaks a rule
            // between parameters, and one step beyond it fails naming the bounds.
            for (bound, dir) in [(&d.min, -1), (&d.max, 1)] {
                let alone = obj(json!({ d.name.clone(): bound.clone() }));
                if let Err(e) = build(&s.id, &alone) {
                    assert!(e.message.contains("must be less than"), "{}: {e}", d.name);
                }
                let beyond = obj(json!({ d.name.clone(): step(d.kind, bound, dir) }));
                let e = build(&s.id, &beyond).unwrap_err().message;
                let (min, max) = (d.min.to_string(), d.max.to_string());
                let bounds = format!(
                    "between {} and {}",
                    min.trim_matches('"'),
                    max.trim_matches('"')
                );
                assert!(
                    e.starts_with(&format!("parameter `{}` must be {bounds}", d.name)),
                    "{}: {e}",
                    d.name
                );
            }
        }
    }
}

#[test]
fn built_strategies_are_send() {
    fn send<T: Send>(_: &T) {}
    let built = build("breakout", &Map::new()).unwrap();
    send(&built.strategy);
    assert!(format!("{built:?}").contains("lookback"));
}
