//! In-process SMA(10,20) crossover over a 1,000,000-bar SYNTHETIC 1-minute series.
// criterion's macros define the undocumented functions they call.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::strategy::{run, SmaCrossover};
use engine::{Engine, EngineConfig};
use market_data::{build_slice, generate, Amount, SliceRequest, SyntheticSpec, Timeframe};

const BARS: usize = 1_000_000;
const START: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z

fn bench(c: &mut Criterion) {
    let mut spec = SyntheticSpec::new("SYNTH", Timeframe::Min1, START, BARS);
    spec.seed = 42;
    let series = generate(&spec);
    let request = SliceRequest {
        provider: None,
        symbols: vec!["SYNTH".into()],
        timeframe: Timeframe::Min1,
        start: START,
        end: START + 60 * BARS as i64,
        warmup_bars: 0,
    };
    let slice = build_slice(&request, &[series]).unwrap();
    assert_eq!(slice.steps.len(), BARS);
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
