//! Session parameters from `--symbols --timeframe --start --end --capital --commission
//! --slippage --warmup --allow-short`, shared by `run`, `session create` and `bench`.

use simutrador_client::{parse_time, Amount, Price, SessionParams, Timeframe};

use crate::args::Args;
use crate::error::CliError;

/// The options [`session_params`] reads.
pub const SESSION_OPTIONS: &[&str] = &[
    "symbols",
    "timeframe",
    "start",
    "end",
    "capital",
    "commission",
    "slippage",
    "warmup",
    "allow-short",
];

/// Parameters from the command line; `--start` and `--end` are required.
pub fn session_params(args: &Args) -> Result<SessionParams, CliError> {
    let symbols: Vec<String> = args
        .value("symbols")
        .unwrap_or("GOOG")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        return Err(CliError::Usage(
            "--symbols needs at least one symbol".into(),
        ));
    }
    let timeframe: Timeframe = args.parsed_or("timeframe", Timeframe::Daily)?;
    let time = |name: &str| {
        let v = args.required(name)?;
        parse_time(v).map_err(|e| CliError::Usage(format!("invalid --{name}: {e}")))
    };
    let (start, end) = (time("start")?, time("end")?);
    if start >= end {
        return Err(CliError::Usage("--start must be before --end".into()));
    }
    let capital: Amount = args.parsed_or("capital", Amount::from_int(100_000))?;
    if !capital.is_positive() {
        return Err(CliError::Usage("--capital must be positive".into()));
    }
    let mut params = SessionParams::new(symbols, start, end, capital, timeframe);
    params.commission_per_share = args.parsed::<Price>("commission")?;
    params.slippage_bps = args.parsed::<u32>("slippage")?;
    params.warmup_bars = args.parsed_or("warmup", 0)?;
    params.allow_short = args.flag("allow-short");
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Result<SessionParams, CliError> {
        session_params(&Args::parse(s.split_whitespace().map(String::from)).unwrap())
    }

    #[test]
    fn defaults_and_overrides() {
        let p = params("--start 2005-01-01 --end 2013-03-02").unwrap();
        assert_eq!(p.symbols, ["GOOG"]);
        assert_eq!(p.timeframe, Timeframe::Daily);
        assert_eq!(p.initial_capital, Amount::from_int(100_000));
        assert_eq!((p.commission_per_share, p.slippage_bps), (None, None));
        let p = params(
            "--symbols AAPL,MSFT --timeframe 1h --start 2020-01-01 --end 2020-02-01 \
             --capital 5000.5 --commission 0.005 --slippage 3 --warmup 20",
        )
        .unwrap();
        assert_eq!(p.symbols, ["AAPL", "MSFT"]);
        assert_eq!(p.timeframe, Timeframe::H1);
        assert_eq!(p.initial_capital.to_string(), "5000.50");
        assert_eq!(p.commission_per_share, Some("0.005".parse().unwrap()));
        assert_eq!((p.slippage_bps, p.warmup_bars), (Some(3), 20));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for bad in [
            "--end 2013-01-01",
            "--start 2013-01-01 --end 2012-01-01",
            "--start 2013-01-01 --end 2014-01-01 --timeframe weekly",
            "--start 2013-01-01 --end 2014-01-01 --capital -5",
            "--start yesterday --end 2014-01-01",
        ] {
            assert!(matches!(params(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
