//! Runs a built-in strategy in-process over a data root and prints trades and metrics.
//!
//! `cargo run --release -p engine --example backtest -- --help`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use engine::catalog;
use engine::strategy::run;
use engine::{periods_per_year, session_calendar, SimulationResults};
use engine::{Engine, EngineConfig};
use market_data::{format_ts, parse_timestamp, Amount, Catalog, Price, SliceRequest, Timeframe};

const HELP: &str = "\
backtest: run a built-in strategy on historical bars, in-process

Options (defaults in brackets):
  --data DIR           data root [sample-data]
  --symbols A,B        symbols [GOOG]
  --timeframe TF       1min 5min 15min 30min 1h 2h 4h daily [daily]
  --start DATE         first bar, YYYY-MM-DD or RFC 3339 [2004-01-01]
  --end DATE           end, exclusive [2014-01-01]
  --warmup N           warm-up bars per symbol fed to the strategy [0]
  --strategy NAME      sma | buy-and-hold, or a built-in strategy id: sma_crossover,
                       buy_and_hold, breakout, rsi_mean_reversion [sma]
  --param NAME=VALUE   a parameter of the strategy (repeatable), e.g. lookback=20,
                       stop_loss_pct=2.5; the rest take their defaults
  --fast N --slow N    SMA lengths, for `sma` [10, 20]
  --quantity N         units per order, for `sma` and `buy-and-hold` [100]
  --capital X          initial cash [100000]
  --commission X       commission per share [0]
  --slippage BPS       slippage on market and stop fills [0]
  --trades N           print the first N trades [10]
";

struct Args {
    data: PathBuf,
    symbols: Vec<String>,
    timeframe: Timeframe,
    start: i64,
    end: i64,
    warmup: usize,
    strategy: String,
    params: serde_json::Map<String, serde_json::Value>,
    fast: usize,
    slow: usize,
    quantity: i64,
    capital: Amount,
    commission: Price,
    slippage: u32,
    trades: usize,
}

fn parse_args() -> Result<Option<Args>, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let mut a = Args {
        data: root,
        symbols: vec!["GOOG".into()],
        timeframe: Timeframe::Daily,
        start: parse_timestamp("2004-01-01").map_err(|e| e.to_string())?,
        end: parse_timestamp("2014-01-01").map_err(|e| e.to_string())?,
        warmup: 0,
        strategy: "sma".into(),
        params: serde_json::Map::new(),
        fast: 10,
        slow: 20,
        quantity: 100,
        capital: Amount::from_int(100_000),
        commission: Price::ZERO,
        slippage: 0,
        trades: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(&value),
            "--symbols" => a.symbols = value.split(',').map(|s| s.trim().to_string()).collect(),
            "--timeframe" => a.timeframe = value.parse().map_err(|e| bad(&e))?,
            "--start" => a.start = parse_timestamp(&value).map_err(|e| bad(&e))?,
            "--end" => a.end = parse_timestamp(&value).map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = value.parse().map_err(|e| bad(&e))?,
            "--strategy" => a.strategy = value,
            "--param" => {
                let (name, text) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--param {value}: expected NAME=VALUE"))?;
                // A number stays a number; anything else is passed as a string.
                let v = serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.to_string()));
                a.params.insert(name.to_string(), v);
            }
            "--fast" => a.fast = value.parse().map_err(|e| bad(&e))?,
            "--slow" => a.slow = value.parse().map_err(|e| bad(&e))?,
            "--quantity" => a.quantity = value.parse().map_err(|e| bad(&e))?,
            "--capital" => a.capital = value.parse().map_err(|e| bad(&e))?,
            "--commission" => a.commission = value.parse().map_err(|e| bad(&e))?,
            "--slippage" => a.slippage = value.parse().map_err(|e| bad(&e))?,
            "--trades" => a.trades = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag} (see --help)")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| a.map(backtest).transpose()) {
        Ok(Some(())) => ExitCode::SUCCESS,
        Ok(None) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn backtest(a: Args) -> Result<(), String> {
    let loading = Instant::now();
    let catalog = Catalog::open(&a.data).map_err(|e| e.to_string())?;
    let request = SliceRequest {
        provider: None,
        symbols: a.symbols.clone(),
        timeframe: a.timeframe,
        start: a.start,
        end: a.end,
        warmup_bars: a.warmup,
    };
    let slice = catalog.slice(&request).map_err(|e| e.to_string())?;
    let load_time = loading.elapsed();

    let mut config = EngineConfig::new(a.symbols.clone(), a.capital);
    config.commission_per_share = a.commission;
    config.slippage_bps = a.slippage;
    config.periods_per_year = periods_per_year(a.timeframe, session_calendar(&a.symbols));
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    // The short names of the flags above, then any built-in id with `--param`s.
    let mut params = serde_json::Map::new();
    let id = match a.strategy.as_str() {
        "sma" => {
            params.insert("fast".into(), a.fast.into());
            params.insert("slow".into(), a.slow.into());
            params.insert("quantity".into(), a.quantity.into());
            "sma_crossover"
        }
        "buy-and-hold" => {
            params.insert("quantity".into(), a.quantity.into());
            "buy_and_hold"
        }
        other => other,
    };
    params.extend(a.params.clone());
    let built = catalog::build(id, &params).map_err(|e| e.to_string())?;
    println!("{id} {}", serde_json::Value::Object(built.params.clone()));
    let mut strategy = built.strategy;
    let running = Instant::now();
    let results = run(&mut engine, &slice, &mut strategy);
    let run_time = running.elapsed();
    print_results(&a, &results);
    println!(
        "\n{} bars loaded in {:.1} ms, simulated in {:.1} ms",
        slice.steps.len(),
        load_time.as_secs_f64() * 1e3,
        run_time.as_secs_f64() * 1e3
    );
    Ok(())
}

fn print_results(a: &Args, r: &SimulationResults) {
    let day = |ts: i64| {
        format_ts(ts)
            .chars()
            .take(16)
            .collect::<String>()
            .replace('T', " ")
    };
    println!(
        "{} on {} ({}), {} trades",
        a.strategy,
        a.symbols.join(","),
        a.timeframe,
        r.trades.len()
    );
    if !r.trades.is_empty() {
        println!(
            "\n{:<8} {:<5} {:>6}  {:<16} {:>12}  {:<16} {:>12} {:>12}",
            "symbol", "side", "qty", "entry", "price", "exit", "price", "pnl"
        );
    }
    for t in r.trades.iter().take(a.trades) {
        println!(
            "{:<8} {:<5} {:>6}  {:<16} {:>12}  {:<16} {:>12} {:>12}",
            t.symbol,
            t.side,
            t.quantity,
            day(t.entry_time),
            t.entry_price.to_string(),
            day(t.exit_time),
            t.exit_price.to_string(),
            t.pnl.to_string()
        );
    }
    if r.trades.len() > a.trades {
        println!("... {} more (--trades N)", r.trades.len() - a.trades);
    }
    let m = &r.metrics;
    let rows: Vec<(&str, String)> = vec![
        ("final equity", m.final_equity.to_string()),
        ("cash", r.account.cash.to_string()),
        ("open positions", r.account.positions.len().to_string()),
        ("total return %", format!("{:.2}", m.total_return_pct)),
        (
            "buy & hold return %",
            format!("{:.2}", m.buy_and_hold_return_pct),
        ),
        ("CAGR %", format!("{:.2}", m.cagr_pct)),
        ("Sharpe", format!("{:.3}", m.sharpe_ratio)),
        ("Sortino", format!("{:.3}", m.sortino_ratio)),
        ("Calmar", format!("{:.3}", m.calmar_ratio)),
        (
            "volatility (ann.) %",
            format!("{:.2}", m.volatility_ann_pct),
        ),
        ("max drawdown %", format!("{:.2}", m.max_drawdown_pct)),
        (
            "max drawdown bars",
            m.max_drawdown_duration_bars.to_string(),
        ),
        ("exposure %", format!("{:.2}", m.exposure_pct)),
        ("closed trades", m.total_trades.to_string()),
        ("win rate", format!("{:.3}", m.win_rate)),
        (
            "profit factor",
            m.profit_factor.map_or("n/a".into(), |p| format!("{p:.3}")),
        ),
        (
            "best / worst trade %",
            format!("{:.2} / {:.2}", m.best_trade_pct, m.worst_trade_pct),
        ),
        ("avg trade %", format!("{:.2}", m.avg_trade_pct)),
        ("commission", m.total_commission.to_string()),
        ("bars", m.ticks_processed.to_string()),
    ];
    println!();
    for (k, v) in rows {
        println!("{k:<22} {v:>14}");
    }
}
