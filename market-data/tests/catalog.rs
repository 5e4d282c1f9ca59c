//! Catalog scanning, source selection and resampling on the bundled samples.

mod common;

use std::fs;

use common::{d, invalid_root, sample_root, t};
use market_data::{
    generate, write_layout, Amount, Candle, Catalog, MarketDataError, PriceEncoding, SeriesSource,
    SyntheticSpec, Timeframe,
};

#[test]
fn sample_catalog_lists_symbols_timeframes_and_ranges() {
    let catalog = Catalog::open(sample_root()).unwrap();
    assert_eq!(
        catalog.symbols().collect::<Vec<_>>(),
        vec!["EURUSD", "GOOG"]
    );

    let goog = catalog.series("GOOG").unwrap();
    assert_eq!(
        goog.len(),
        1,
        "CSV duplicate of the daily Parquet is not listed twice"
    );
    assert_eq!(goog[0].timeframe, Timeframe::Daily);
    assert_eq!(
        (goog[0].first, goog[0].last),
        (t("2004-08-19"), t("2013-03-01"))
    );
    assert_eq!(goog[0].rows, Some(2148));
    assert!(
        matches!(&goog[0].source, SeriesSource::ParquetFile(p) if p.ends_with("candles/daily/GOOG.parquet"))
    );

    let eurusd = catalog.series("EURUSD").unwrap();
    assert_eq!(catalog.timeframes("EURUSD"), vec![Timeframe::H1]);
    assert_eq!(
        (eurusd[0].first, eurusd[0].last),
        (t("2017-04-19 09:00:00"), t("2018-02-07 15:00:00"))
    );
    assert!(matches!(&eurusd[0].source, SeriesSource::ParquetDays(files) if files.len() == 251));
    assert_eq!(
        catalog.servable_timeframes("EURUSD"),
        vec![
            Timeframe::H1,
            Timeframe::H2,
            Timeframe::H4,
            Timeframe::Daily
        ]
    );

    // Monthly BTCUSD matches no timeframe: listed as not servable, still loadable directly.
    let btc = catalog
        .unservable()
        .iter()
        .find(|u| u.symbol == "BTCUSD")
        .unwrap();
    assert!(
        btc.reason.contains("matches no timeframe"),
        "{}",
        btc.reason
    );
    assert!(matches!(
        catalog.resolve("BTCUSD", Timeframe::Daily),
        Err(MarketDataError::NotServable { .. })
    ));
}

#[test]
fn csv_only_symbols_get_their_inferred_timeframe() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("ohlcv")).unwrap();
    fs::copy(
        sample_root().join("ohlcv/EURUSD.csv"),
        dir.path().join("ohlcv/EURUSD.csv"),
    )
    .unwrap();
    fs::copy(
        sample_root().join("ohlcv/GOOG.csv"),
        dir.path().join("ohlcv/GOOG.csv"),
    )
    .unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(catalog.timeframes("EURUSD"), vec![Timeframe::H1]);
    assert_eq!(catalog.timeframes("GOOG"), vec![Timeframe::Daily]);
    let eurusd = &catalog.series("EURUSD").unwrap()[0];
    assert_eq!(
        (eurusd.first, eurusd.last),
        (t("2017-04-19 09:00:00"), t("2018-02-07 15:00:00"))
    );
    assert_eq!(
        catalog
            .load("GOOG", Timeframe::Daily)
            .unwrap()
            .candles
            .len(),
        2148
    );
}

#[test]
fn lookups_are_case_sensitive_and_errors_distinct() {
    let catalog = Catalog::open(sample_root()).unwrap();
    assert!(matches!(
        catalog.resolve("goog", Timeframe::Daily),
        Err(MarketDataError::UnknownSymbol(_))
    ));
    assert!(matches!(
        catalog.resolve("NOPE", Timeframe::Daily),
        Err(MarketDataError::UnknownSymbol(_))
    ));
    assert!(matches!(
        catalog.resolve("GOOG", Timeframe::H1),
        Err(MarketDataError::TimeframeTooFine {
            requested: Timeframe::H1,
            finest: Timeframe::Daily,
            ..
        })
    ));
    assert!(matches!(
        catalog.resolve("EURUSD", Timeframe::Min30),
        Err(MarketDataError::TimeframeTooFine { .. })
    ));
    assert_eq!(
        catalog.resolve("EURUSD", Timeframe::H4).unwrap().timeframe,
        Timeframe::H1
    );
}

#[test]
fn picks_the_coarsest_stored_timeframe_that_divides() {
    let dir = tempfile::tempdir().unwrap();
    let start = t("2021-03-01");
    for (tf, count) in [
        (Timeframe::Min1, 3 * 1440),
        (Timeframe::Min5, 3 * 288),
        (Timeframe::H1, 72),
    ] {
        let series = generate(&SyntheticSpec::new("SYN", tf, start, count));
        write_layout(
            dir.path(),
            "SYN",
            tf,
            &series.candles,
            PriceEncoding::Decimal128,
        )
        .unwrap();
    }
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(
        catalog.timeframes("SYN"),
        vec![Timeframe::Min1, Timeframe::Min5, Timeframe::H1]
    );
    let source = |tf| catalog.resolve("SYN", tf).unwrap().timeframe;
    assert_eq!(source(Timeframe::Min1), Timeframe::Min1);
    assert_eq!(source(Timeframe::Min15), Timeframe::Min5);
    assert_eq!(source(Timeframe::Min30), Timeframe::Min5);
    assert_eq!(source(Timeframe::H2), Timeframe::H1);
    assert_eq!(source(Timeframe::Daily), Timeframe::H1);
    let daily = catalog.load("SYN", Timeframe::Daily).unwrap();
    assert_eq!(daily.candles.len(), 3);
    assert_eq!(daily.timeframe, Timeframe::Daily);
}

#[test]
fn invalid_root_is_listed_but_fails_to_load() {
    let catalog = Catalog::open(invalid_root()).unwrap();
    assert_eq!(catalog.symbols().collect::<Vec<_>>(), vec!["BADHL"]);
}

fn bar(ts: &str, o: &str, h: &str, l: &str, c: &str, v: i64) -> Candle {
    Candle {
        ts: t(ts),
        open: d(o),
        high: d(h),
        low: d(l),
        close: d(c),
        volume: Amount::from_int(v),
    }
}

#[test]
fn eurusd_resampled_to_4h_by_hand() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let h4 = catalog.load("EURUSD", Timeframe::H4).unwrap().candles;
    assert_eq!(h4.len(), 1292);
    // 08:00 bucket is partial: the data starts at 09:00.
    assert_eq!(
        h4[0],
        bar(
            "2017-04-19 08:00:00",
            "1.0716",
            "1.07299",
            "1.07083",
            "1.07192",
            1413 + 1241 + 1025
        )
    );
    assert_eq!(
        h4[1],
        bar(
            "2017-04-19 12:00:00",
            "1.07195",
            "1.0728",
            "1.07002",
            "1.07064",
            1460 + 1554 + 2342 + 1867
        )
    );
    assert_eq!(
        h4[3],
        bar(
            "2017-04-19 20:00:00",
            "1.07159",
            "1.0717",
            "1.0708",
            "1.07149",
            391 + 879 + 776 + 342
        )
    );
    assert!(h4
        .windows(2)
        .all(|w| w[1].ts - w[0].ts >= 4 * 3600 && w[1].ts % (4 * 3600) == 0));
}

#[test]
fn eurusd_resampled_to_daily_by_hand() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let daily = catalog.load("EURUSD", Timeframe::Daily).unwrap().candles;
    assert_eq!(daily.len(), 251);
    assert_eq!(
        daily[0],
        bar(
            "2017-04-19",
            "1.0716",
            "1.07299",
            "1.07002",
            "1.07149",
            16_728
        )
    );
    // Sunday 2017-04-23 holds only the 21:00-23:00 bars of the week's open.
    assert_eq!(
        daily[3],
        bar(
            "2017-04-23",
            "1.0893",
            "1.09063",
            "1.08648",
            "1.08734",
            1758 + 2532 + 1166
        )
    );
}
