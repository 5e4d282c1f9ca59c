//! Loader benchmarks: a 1,000,000-bar SYNTHETIC 1-minute series written once to temporary
//! Parquet files (float64 and decimal128), then loaded repeatedly; and the bundled GOOG
//! daily sample as CSV and Parquet.
// criterion's macros define the undocumented functions they call.
#![allow(missing_docs)]

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use market_data::{
    build_slice, generate, load_csv, load_parquet, parse_timestamp, write_parquet, PriceEncoding,
    SliceRequest, SyntheticSpec, Timeframe,
};

const BARS: usize = 1_000_000;

fn loads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = parse_timestamp("2020-01-01").expect("date");
    let series = generate(&SyntheticSpec::new("BENCH", Timeframe::Min1, start, BARS));
    let float64 = dir.path().join("float64.parquet");
    let decimal = dir.path().join("decimal128.parquet");
    write_parquet(&float64, &series.candles, PriceEncoding::Float64).expect("write float64");
    write_parquet(&decimal, &series.candles, PriceEncoding::Decimal128).expect("write decimal128");
    assert_eq!(load_parquet(&float64).expect("load").len(), BARS);

    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let goog_csv = samples.join("ohlcv/GOOG.csv");
    let goog_parquet = samples.join("candles/daily/GOOG.parquet");

    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("parquet_1m_1min_float64", |b| {
        b.iter(|| load_parquet(&float64).expect("load"))
    });
    group.bench_function("parquet_1m_1min_decimal128", |b| {
        b.iter(|| load_parquet(&decimal).expect("load"))
    });
    group.bench_function("csv_goog_daily_2148", |b| {
        b.iter(|| load_csv(&goog_csv).expect("load"))
    });
    group.bench_function("parquet_goog_daily_2148", |b| {
        b.iter(|| load_parquet(&goog_parquet).expect("load"))
    });
    group.finish();

    let request = SliceRequest {
        provider: None,
        symbols: vec!["BENCH".into()],
        timeframe: Timeframe::Min1,
        start,
        end: start + BARS as i64 * 60,
        warmup_bars: 0,
    };
    let mut group = c.benchmark_group("slice");
    group.sample_size(20);
    group.bench_function("build_1m_1min", |b| {
        b.iter(|| build_slice(&request, &[&series]).expect("slice"))
    });
    group.finish();
}

criterion_group!(benches, loads);
criterion_main!(benches);
