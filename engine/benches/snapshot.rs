//! Snapshot and restore of a busy session: 50 positions and 100 working orders.
// criterion's macros define the undocumented functions they call.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use engine::{Engine, EngineConfig};
use engine::{ExecutionMode, OrderRequest, Side, TimeInForce};
use model::{Amount, Candle, MarketSession, Price, Step, SymbolBar};

fn busy_engine() -> Engine {
    let symbols: Vec<String> = (0..50).map(|i| format!("SYM{i:02}")).collect();
    let mut engine = Engine::new(EngineConfig::new(
        symbols.clone(),
        Amount::from_int(10_000_000),
    ))
    .unwrap();
    let bars: Vec<SymbolBar> = (0..50)
        .map(|i| SymbolBar {
            symbol: i,
            candle: Candle {
                ts: 0,
                open: Price::from_int(100),
                high: Price::from_int(101),
                low: Price::from_int(99),
                close: Price::from_int(100),
                volume: Amount::from_int(1_000_000),
            },
        })
        .collect();
    let step = |ts| Step {
        ts,
        start: 0,
        len: 50,
        is_eod: false,
        session: MarketSession::Regular,
    };
    let mut out = Vec::new();
    engine.on_step(&step(60), &bars, &mut out);
    let buys = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| OrderRequest::market(format!("buy-{i}"), s.clone(), Side::Buy, 10));
    engine.submit(buys.collect(), ExecutionMode::BestEffort);
    engine.on_step(&step(120), &bars, &mut out);
    let resting = (0..100).map(|i| {
        OrderRequest::limit(
            format!("rest-{i}"),
            symbols[i % 50].clone(),
            Side::Buy,
            1,
            Price::from_int(50),
        )
        .with_tif(TimeInForce::Gtc)
    });
    let ack = engine.submit(resting.collect(), ExecutionMode::BestEffort);
    assert_eq!(ack.accepted_orders.len(), 100);
    assert_eq!(engine.open_order_count(), 100);
    assert_eq!(engine.account_snapshot().positions.len(), 50);
    engine
}

fn bench(c: &mut Criterion) {
    let engine = busy_engine();
    let bytes = engine.snapshot();
    println!("snapshot size: {} bytes", bytes.len());
    c.bench_function("snapshot_100_orders_50_positions", |b| {
        b.iter(|| black_box(&engine).snapshot())
    });
    c.bench_function("restore_100_orders_50_positions", |b| {
        b.iter(|| Engine::restore(black_box(&bytes)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
