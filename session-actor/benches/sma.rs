//! In-process SMA(10,20) crossover over a 1,000,000-bar synthetic 1-minute series.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use market_data::{Amount, Candle, MarketSession, Price, Slice, Step, SymbolBar, Timeframe};
use session_actor::engine::strategy::{run, SmaCrossover};
use session_actor::{Engine, EngineConfig};

const BARS: usize = 1_000_000;

/// Placeholder walk until the market-data synthetic generator is wired in.
fn series() -> Vec<Candle> {
    let mut x: u64 = 42;
    let mut price: i64 = 100 * 100_000_000;
    (0..BARS)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let open = price;
            price = (price + (x % 2_000_001) as i64 - 1_000_000).max(1_000_000);
            let (hi, lo) = (open.max(price) + 500_000, open.min(price) - 500_000);
            Candle {
                ts: 1_600_000_000 + i as i64 * 60,
                open: Price::from_raw(open),
                high: Price::from_raw(hi),
                low: Price::from_raw(lo.max(1)),
                close: Price::from_raw(price),
                volume: Amount::from_int(1000),
            }
        })
        .collect()
}

fn slice(candles: &[Candle]) -> Slice {
    Slice {
        timeframe: Timeframe::Min1,
        symbols: vec!["SYN".into()],
        warmup: vec![Vec::new()],
        steps: candles
            .iter()
            .enumerate()
            .map(|(i, c)| Step {
                ts: c.ts,
                start: i as u32,
                len: 1,
                is_eod: (i + 1) % 1440 == 0,
                session: MarketSession::Regular,
            })
            .collect(),
        bars: candles
            .iter()
            .map(|&candle| SymbolBar { symbol: 0, candle })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    let slice = slice(&series());
    let config = EngineConfig::new(vec!["SYN".into()], Amount::from_int(1_000_000));
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BARS as u64));
    group.bench_function("sma_10_20_1m_bars", |b| {
        b.iter(|| {
            let mut engine = Engine::new(config.clone()).unwrap();
            let r = run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100));
            assert_eq!(r.metrics.ticks_processed, BARS as u64);
            r
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
