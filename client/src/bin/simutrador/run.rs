//! `run`: one lock-step simulation of a built-in strategy, then its results.

use simutrador_client::{BuyAndHold, Client, Results, SmaCross, Strategy};

use crate::args::Args;
use crate::error::CliError;
use crate::output::{self, key_values, num, pct, ProgressBar, Table};
use crate::params::{session_params, SESSION_OPTIONS};
use crate::settings::Settings;
use crate::token_cache;

/// A strategy chosen on the command line, with a description for the report.
pub fn strategy(args: &Args) -> Result<(Box<dyn Strategy>, String), CliError> {
    let quantity: i64 = args.parsed_or("quantity", 100)?;
    if quantity <= 0 {
        return Err(CliError::Usage("--quantity must be positive".into()));
    }
    match args.value("strategy").unwrap_or("sma-cross") {
        "sma-cross" => {
            let fast: usize = args.parsed_or("fast", 10)?;
            let slow: usize = args.parsed_or("slow", 20)?;
            if fast == 0 || slow == 0 {
                return Err(CliError::Usage(
                    "--fast and --slow must be at least 1".into(),
                ));
            }
            Ok((
                Box::new(SmaCross::new(fast, slow, quantity)),
                format!("SMA crossover ({fast}/{slow}, {quantity} units)"),
            ))
        }
        "buy-and-hold" => {
            if args.value("fast").is_some() || args.value("slow").is_some() {
                return Err(CliError::Usage(
                    "--fast/--slow only apply to --strategy sma-cross".into(),
                ));
            }
            Ok((
                Box::new(BuyAndHold::new(quantity)),
                format!("Buy and hold ({quantity} units)"),
            ))
        }
        other => Err(CliError::Usage(format!(
            "unknown strategy `{other}` (expected sma-cross or buy-and-hold)"
        ))),
    }
}

pub async fn run(settings: &Settings, args: &Args) -> Result<(), CliError> {
    let mut allowed = vec!["strategy", "fast", "slow", "quantity", "json"];
    allowed.extend_from_slice(SESSION_OPTIONS);
    args.allow("run", &allowed)?;
    let params = session_params(args)?;
    let (mut strategy, title) = strategy(args)?;
    let headline = format!(
        "{title} on {}, {}, {} .. {}",
        params.symbols.join(","),
        params.timeframe,
        output::time(params.start_date),
        output::time(params.end_date)
    );

    let client = Client::new(&settings.url);
    let mut conn = token_cache::connect(settings, &client).await?;
    let mut bar = ProgressBar::for_stderr();
    let results = conn
        .run_with_progress(params, &mut strategy, |p| bar.update(p.done, p.total))
        .await;
    bar.finish();
    let results = results?;
    let _ = conn.close().await;

    if args.flag("json") {
        let text = serde_json::to_string_pretty(&results)
            .map_err(|e| CliError::Failed(format!("cannot encode the results: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", report(&headline, &results));
    }
    Ok(())
}

/// The human-readable results: metrics, then one line per trade.
pub fn report(headline: &str, r: &Results) -> String {
    let e = &r.end;
    let mut out = format!("{headline}\n\n");
    out += &key_values(&[
        ("Session", e.session_id.clone()),
        ("End", format!("{:?}", e.reason).to_lowercase()),
        ("Ticks", e.ticks_processed.to_string()),
        ("Final equity", e.final_equity.to_string()),
        ("Total return", pct(e.total_return_pct)),
        ("CAGR", pct(e.cagr_pct)),
        ("Buy & hold return", pct(e.buy_and_hold_return_pct)),
        ("Sharpe", num(e.sharpe_ratio, 2)),
        ("Sortino", num(e.sortino_ratio, 2)),
        ("Calmar", num(e.calmar_ratio, 2)),
        ("Volatility (ann.)", pct(e.volatility_ann_pct)),
        ("Max drawdown", pct(e.max_drawdown_pct)),
        (
            "Max DD duration",
            format!("{} bars", e.max_drawdown_duration_bars),
        ),
        ("Exposure", pct(e.exposure_pct)),
        ("Trades", e.total_trades.to_string()),
        ("Win rate", pct(e.win_rate * 100.0)),
        (
            "Profit factor",
            e.profit_factor.map_or("n/a".into(), |p| num(p, 2)),
        ),
        (
            "Best / worst trade",
            format!("{} / {}", pct(e.best_trade_pct), pct(e.worst_trade_pct)),
        ),
        ("Average trade", pct(e.avg_trade_pct)),
        ("Commission", e.total_commission.to_string()),
        ("Wall time", format!("{} s", e.simulation_duration_sec)),
    ]);
    if !r.trades.is_empty() {
        let mut t = Table::new(&[
            "#",
            "Symbol",
            "Side",
            "Qty",
            "Entry",
            "Entry price",
            "Exit",
            "Exit price",
            "PnL",
            "Return",
        ]);
        for (i, tr) in r.trades.iter().enumerate() {
            t.row(vec![
                (i + 1).to_string(),
                tr.symbol.clone(),
                tr.side.as_str().to_string(),
                tr.quantity.to_string(),
                output::time(tr.entry_time),
                tr.entry_price.to_string(),
                output::time(tr.exit_time),
                tr.exit_price.to_string(),
                tr.pnl.to_string(),
                pct(tr.return_pct),
            ]);
        }
        out += &format!("\nClosed trades ({})\n", r.trades.len());
        out += &t.render();
    }
    if !r.rejected_orders.is_empty() {
        out += "\nRejected orders\n";
        for (id, reason) in &r.rejected_orders {
            out += &format!("  {id}: {reason}\n");
        }
    }
    out
}
