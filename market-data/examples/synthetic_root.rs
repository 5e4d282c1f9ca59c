//! Writes SYNTHETIC 1-minute bars as a data root, for load tests that need longer
//! sessions than the bundled samples (these bars are not real prices):
//!
//! ```text
//! cargo run --release -p market-data --example synthetic_root -- DIR [SYMBOL] [DAYS]
//! ```
//!
//! writes `DIR/candles/1min/SYMBOL/<date>.parquet`, 1,440 bars a day from 2020-01-01
//! (defaults: SYNTH, 100 days = 144,000 bars). Serve it with
//! `SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT=DIR`.

use std::path::PathBuf;

use market_data::{
    generate, parse_timestamp, write_layout, PriceEncoding, SyntheticSpec, Timeframe,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: synthetic_root DIR [SYMBOL] [DAYS]")?,
    );
    let symbol = args.next().unwrap_or_else(|| "SYNTH".into());
    let days: usize = args.next().map_or(Ok(100), |d| d.parse())?;
    let spec = SyntheticSpec::new(
        symbol.as_str(),
        Timeframe::Min1,
        parse_timestamp("2020-01-01")?,
        days * 1440,
    );
    let series = generate(&spec);
    let files = write_layout(
        &dir,
        &symbol,
        Timeframe::Min1,
        &series.candles,
        PriceEncoding::Float64,
    )?;
    println!(
        "wrote {} bars of {symbol} (1min from 2020-01-01) in {} files under {}",
        series.candles.len(),
        files.len(),
        dir.display()
    );
    Ok(())
}
