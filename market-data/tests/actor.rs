//! The market-data actor in a real actix System: de-duplicated loads, shared series,
//! byte-bounded eviction and errors.

mod common;

use std::sync::Arc;

use actix::{Actor, Addr};
use common::{invalid_root, sample_root, t};
use market_data::{
    generate, write_parquet, Catalog, GetCatalog, GetSeries, GetSlice, GetStats, ListProviders,
    MarketDataActor, MarketDataConfig, MarketDataError, PriceEncoding, SliceRequest, SyntheticSpec,
    Timeframe,
};

fn start(cache_bytes: usize) -> Addr<MarketDataActor> {
    let sample = Catalog::open(sample_root()).unwrap();
    let invalid = Catalog::open(invalid_root()).unwrap();
    MarketDataActor::new("sample", sample, MarketDataConfig { cache_bytes })
        .with_provider("invalid", invalid)
        .start()
}

fn get(symbol: &str, timeframe: Timeframe) -> GetSeries {
    GetSeries {
        provider: None,
        symbol: symbol.into(),
        timeframe,
    }
}

fn slice_request(symbols: &[&str], timeframe: Timeframe, start: &str, end: &str) -> SliceRequest {
    SliceRequest {
        provider: None,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeframe,
        start: t(start),
        end: t(end),
        warmup_bars: 5,
    }
}

#[actix::test]
async fn concurrent_requests_load_once_and_share_the_series() {
    let addr = start(64 << 20);
    // All eight are queued before the first load (251 files) can finish.
    let requests: Vec<_> = (0..8)
        .map(|_| addr.send(get("EURUSD", Timeframe::H1)))
        .collect();
    let mut series = Vec::new();
    for r in requests {
        series.push(r.await.unwrap().unwrap());
    }
    assert_eq!(series[0].candles.len(), 5000);
    assert!(series.iter().all(|s| Arc::ptr_eq(s, &series[0])));
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!(stats.loads, 1);
    assert_eq!(
        (stats.joined, stats.hits),
        (7, 0),
        "later requesters waited for the first load"
    );
    assert_eq!(stats.cache.entries, 1);

    // A slice over the same series reuses it: no new load.
    let slice = addr
        .send(GetSlice(slice_request(
            &["EURUSD"],
            Timeframe::H1,
            "2017-05-01",
            "2017-05-03",
        )))
        .await
        .unwrap();
    assert_eq!(slice.unwrap().warmup[0].len(), 5);
    let again = addr
        .send(get("EURUSD", Timeframe::H1))
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&again, &series[0]));
    assert_eq!(addr.send(GetStats).await.unwrap().loads, 1);
}

#[actix::test]
async fn identical_slices_are_shared_while_held() {
    let addr = start(64 << 20);
    let request = || slice_request(&["GOOG"], Timeframe::Daily, "2010-01-01", "2010-06-01");
    // Queued together: one build, the others wait for it.
    let pending: Vec<_> = (0..4).map(|_| addr.send(GetSlice(request()))).collect();
    let mut slices = Vec::new();
    for p in pending {
        slices.push(p.await.unwrap().unwrap());
    }
    assert!(slices.iter().all(|s| Arc::ptr_eq(s, &slices[0])));
    // Naming the default provider explicitly is the same request.
    let named = SliceRequest {
        provider: Some("sample".into()),
        ..request()
    };
    let again = addr.send(GetSlice(named)).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&again, &slices[0]));
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!((stats.slices_built, stats.slices_shared), (1, 4));

    // A different range is a different slice.
    let other = addr
        .send(GetSlice(slice_request(
            &["GOOG"],
            Timeframe::Daily,
            "2010-01-01",
            "2010-03-01",
        )))
        .await
        .unwrap()
        .unwrap();
    assert!(!Arc::ptr_eq(&other, &slices[0]));

    // Once nobody holds it, the next request builds a fresh one with the same content.
    let first = (*slices[0]).clone();
    drop((slices, again));
    let rebuilt = addr.send(GetSlice(request())).await.unwrap().unwrap();
    assert_eq!(*rebuilt, first);
    assert_eq!(addr.send(GetStats).await.unwrap().slices_built, 3);
}

#[actix::test]
async fn resampled_timeframes_are_cached_separately() {
    let addr = start(64 << 20);
    // Nothing cached: 4h comes from the files.
    let h4 = addr
        .send(get("EURUSD", Timeframe::H4))
        .await
        .unwrap()
        .unwrap();
    let h1 = addr
        .send(get("EURUSD", Timeframe::H1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((h1.candles.len(), h4.candles.len()), (5000, 1292));
    // The stored 1h series is cached now: daily is resampled from it, not from files.
    let daily = addr
        .send(get("EURUSD", Timeframe::Daily))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(daily.candles.len(), 251);
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!((stats.loads, stats.derived, stats.cache.entries), (2, 1, 3));
    assert_eq!(stats.cache.bytes, h1.bytes() + h4.bytes() + daily.bytes());
    let from_files = Catalog::open(sample_root())
        .unwrap()
        .load("EURUSD", Timeframe::Daily)
        .unwrap();
    assert_eq!(daily.candles, from_files.candles);
}

#[actix::test]
async fn small_budget_evicts_least_recently_used() {
    let sample = Catalog::open(sample_root()).unwrap();
    let eurusd = sample.load("EURUSD", Timeframe::H1).unwrap().bytes();
    let goog = sample.load("GOOG", Timeframe::Daily).unwrap().bytes();
    // Room for either series, not both.
    let addr = start(eurusd.max(goog) + eurusd.min(goog) / 2);

    let first = addr
        .send(get("EURUSD", Timeframe::H1))
        .await
        .unwrap()
        .unwrap();
    addr.send(get("GOOG", Timeframe::Daily))
        .await
        .unwrap()
        .unwrap();
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.loads, stats.cache.entries, stats.cache.evictions),
        (2, 1, 1)
    );
    assert_eq!(stats.cache.bytes, goog);

    // Evicted: loaded again, into a new allocation; the old Arc is still valid for its holder.
    let second = addr
        .send(get("EURUSD", Timeframe::H1))
        .await
        .unwrap()
        .unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(first.candles, second.candles);
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!((stats.loads, stats.cache.evictions), (3, 2));
    assert!(stats.cache.bytes <= eurusd.max(goog) + eurusd.min(goog) / 2);
}

#[actix::test]
async fn errors_reach_the_caller_and_failed_loads_are_retried() {
    let addr = start(64 << 20);
    fn err<T: std::fmt::Debug>(r: Result<T, MarketDataError>) -> MarketDataError {
        r.unwrap_err()
    }

    let bad = GetSeries {
        provider: Some("invalid".into()),
        symbol: "BADHL".into(),
        timeframe: Timeframe::Daily,
    };
    let e = err(addr.send(bad.clone()).await.unwrap());
    assert_eq!(
        e.to_string(),
        "candles/daily/BADHL.parquet row 4: high 1.00 is below low 103.57"
    );
    err(addr.send(bad).await.unwrap());
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!(
        (stats.loads, stats.cache.entries),
        (2, 0),
        "failures are not cached"
    );

    let unknown_provider = GetSeries {
        provider: Some("nope".into()),
        ..get("GOOG", Timeframe::Daily)
    };
    assert!(matches!(
        err(addr.send(unknown_provider).await.unwrap()),
        MarketDataError::UnknownProvider(_)
    ));
    assert!(matches!(
        err(addr.send(get("NOPE", Timeframe::Daily)).await.unwrap()),
        MarketDataError::UnknownSymbol(_)
    ));

    let slice = |r: SliceRequest| addr.send(GetSlice(r));
    let e = err(slice(slice_request(
        &[],
        Timeframe::Daily,
        "2005-01-01",
        "2005-02-01",
    ))
    .await
    .unwrap());
    assert!(matches!(e, MarketDataError::EmptySymbols));
    let e = err(slice(slice_request(
        &["GOOG"],
        Timeframe::Daily,
        "2005-02-01",
        "2005-01-01",
    ))
    .await
    .unwrap());
    assert!(matches!(e, MarketDataError::InvalidRange { .. }));
    let e = err(slice(slice_request(
        &["GOOG"],
        Timeframe::Daily,
        "1999-01-01",
        "2000-01-01",
    ))
    .await
    .unwrap());
    assert!(matches!(e, MarketDataError::NoData { .. }));
    // An unknown symbol fails the request before any other symbol is loaded.
    let loads = addr.send(GetStats).await.unwrap().loads;
    let e = err(slice(slice_request(
        &["EURUSD", "NOPE"],
        Timeframe::H1,
        "2017-05-01",
        "2017-05-03",
    ))
    .await
    .unwrap());
    assert!(matches!(e, MarketDataError::UnknownSymbol(_)));
    assert_eq!(addr.send(GetStats).await.unwrap().loads, loads);
}

#[actix::test]
async fn lists_providers_and_catalogs() {
    let addr = start(1 << 20);
    assert_eq!(
        addr.send(ListProviders).await.unwrap(),
        vec!["sample", "invalid"]
    );
    let catalog = addr
        .send(GetCatalog { provider: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        catalog.symbols().collect::<Vec<_>>(),
        vec!["EURUSD", "GOOG"]
    );
    let invalid = addr
        .send(GetCatalog {
            provider: Some("invalid".into()),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invalid.symbols().collect::<Vec<_>>(), vec!["BADHL"]);
}

#[actix::test]
async fn loading_does_not_block_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let big = generate(&SyntheticSpec::new(
        "BIG",
        Timeframe::Min1,
        t("2020-01-01"),
        400_000,
    ));
    std::fs::create_dir_all(dir.path().join("candles/1min")).unwrap();
    write_parquet(
        &dir.path().join("candles/1min/BIG.parquet"),
        &big.candles,
        PriceEncoding::Float64,
    )
    .unwrap();
    let addr = MarketDataActor::new(
        "big",
        Catalog::open(dir.path()).unwrap(),
        MarketDataConfig::default(),
    )
    .start();

    let load = addr.send(get("BIG", Timeframe::Min1));
    // Answered while the 400k-bar load is still running on the blocking pool.
    addr.send(GetCatalog { provider: None })
        .await
        .unwrap()
        .unwrap();
    let stats = addr.send(GetStats).await.unwrap();
    assert_eq!((stats.loads, stats.cache.entries), (1, 0));
    assert_eq!(load.await.unwrap().unwrap().candles, big.candles);
}
