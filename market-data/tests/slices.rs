//! Slices: merged timelines, warm-up, sessions and end-of-day marks.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::{sample_root, t};
use market_data::{
    generate, write_layout, Catalog, MarketDataError, MarketSession, PriceEncoding, Slice,
    SliceRequest, SyntheticSpec, Timeframe, Timestamp,
};

fn request(
    symbols: &[&str],
    timeframe: Timeframe,
    start: Timestamp,
    end: Timestamp,
    warmup: usize,
) -> SliceRequest {
    SliceRequest {
        provider: None,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeframe,
        start,
        end,
        warmup_bars: warmup,
    }
}

/// Steps strictly increase, bars within a step are in symbol order, and the bars are
/// exactly the source bars in range (none invented, none dropped).
fn assert_well_formed(slice: &Slice, catalog: &Catalog, start: Timestamp, end: Timestamp) {
    assert!(slice.steps.windows(2).all(|w| w[0].ts < w[1].ts));
    let mut expected = 0;
    for (i, symbol) in slice.symbols.iter().enumerate() {
        let source = catalog.load(symbol, slice.timeframe).unwrap();
        let mine: Vec<_> = slice
            .bars
            .iter()
            .filter(|b| b.symbol == i as u32)
            .map(|b| b.candle)
            .collect();
        assert_eq!(mine.as_slice(), source.range(start, end), "{symbol}");
        expected += mine.len();
    }
    assert_eq!(slice.bars.len(), expected);
    for (step, bars) in slice.iter() {
        assert!(!bars.is_empty());
        assert!(bars.windows(2).all(|w| w[0].symbol < w[1].symbol));
        assert!(bars.iter().all(|b| b.candle.ts == step.ts));
    }
}

#[test]
fn goog_and_eurusd_merge_in_time_order() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let (start, end) = (t("2013-02-01"), t("2017-05-01"));
    let slice = catalog
        .slice(&request(
            &["EURUSD", "GOOG"],
            Timeframe::Daily,
            start,
            end,
            0,
        ))
        .unwrap();
    assert_well_formed(&slice, &catalog, start, end);
    // GOOG's sample ends in 2013 and EURUSD's starts in 2017: no step has both, GOOG first.
    let members: Vec<Vec<u32>> = slice
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.symbol).collect())
        .collect();
    assert_eq!(members.iter().filter(|m| m.as_slice() == [1]).count(), 20);
    assert_eq!(members.iter().filter(|m| m.as_slice() == [0]).count(), 10);
    assert_eq!(members.len(), 30);
    assert!(members[..20].iter().all(|m| m.as_slice() == [1]));
    assert_eq!(slice.steps[20].ts, t("2017-04-19"));
}

/// A root with the EURUSD 1h day files and a synthetic equity ACME trading 13:00-21:00
/// UTC every day, including weekends, so the two interleave with gaps on both sides.
fn mixed_root(dir: &Path) {
    let src = sample_root().join("candles/1h/EURUSD");
    let dst = dir.join("candles/1h/EURUSD");
    fs::create_dir_all(&dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let mut acme = generate(&SyntheticSpec::new(
        "ACME",
        Timeframe::H1,
        t("2017-04-15"),
        24 * 20,
    ));
    acme.candles
        .retain(|c| (13..21).contains(&(c.ts.rem_euclid(86_400) / 3600)));
    write_layout(
        dir,
        "ACME",
        Timeframe::H1,
        &acme.candles,
        PriceEncoding::Float64,
    )
    .unwrap();
}

#[test]
fn interleaved_symbols_are_absent_where_they_have_no_bar() {
    let dir = tempfile::tempdir().unwrap();
    mixed_root(dir.path());
    let catalog = Catalog::open(dir.path()).unwrap();
    let (start, end) = (t("2017-04-20"), t("2017-04-25"));
    let slice = catalog
        .slice(&request(&["ACME", "EURUSD"], Timeframe::H1, start, end, 3))
        .unwrap();
    assert_well_formed(&slice, &catalog, start, end);
    let at = |ts: &str| {
        let step = slice.steps.iter().find(|s| s.ts == t(ts)).unwrap();
        slice
            .bars_of(step)
            .iter()
            .map(|b| b.symbol)
            .collect::<Vec<_>>()
    };
    assert_eq!(at("2017-04-20 14:00:00"), vec![0, 1]);
    assert_eq!(at("2017-04-20 03:00:00"), vec![1]); // ACME closed
    assert_eq!(at("2017-04-22 14:00:00"), vec![0]); // Saturday: no FX
    assert!(!slice.steps.iter().any(|s| s.ts == t("2017-04-22 03:00:00"))); // nobody: no step
                                                                            // Any step with an FX bar is regular; ACME-only steps follow New York hours.
    assert!(slice
        .iter()
        .filter(|(_, b)| b.iter().any(|b| b.symbol == 1))
        .all(|(s, _)| s.session == MarketSession::Regular));
    let saturday = slice
        .steps
        .iter()
        .find(|s| s.ts == t("2017-04-22 20:00:00"))
        .unwrap(); // 16:00 EDT
    assert_eq!(saturday.session, MarketSession::AfterHours);
    // Warm-up: 3 bars each, ending before start.
    assert_eq!(
        slice.warmup.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3]
    );
    assert_eq!(slice.warmup[1].last().unwrap().ts, t("2017-04-19 23:00:00"));
    assert_eq!(slice.warmup[0].last().unwrap().ts, t("2017-04-19 20:00:00"));
}

#[test]
fn warmup_counts_bars_before_start() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let goog = catalog.load("GOOG", Timeframe::Daily).unwrap();
    let start = t("2005-01-03");
    let slice = catalog
        .slice(&request(
            &["GOOG"],
            Timeframe::Daily,
            start,
            t("2005-02-01"),
            10,
        ))
        .unwrap();
    assert_eq!(slice.warmup[0].len(), 10);
    let i = goog.index_at(start);
    assert_eq!(slice.warmup[0], goog.candles[i - 10..i]);
    assert_eq!(slice.steps[0].ts, start);
    // Asking for more history than exists gives what exists.
    let slice = catalog
        .slice(&request(
            &["GOOG"],
            Timeframe::Daily,
            t("2004-08-25"),
            t("2004-09-01"),
            100,
        ))
        .unwrap();
    assert_eq!(slice.warmup[0].len(), 4);
    // Daily steps are all end-of-day and regular.
    assert!(slice
        .steps
        .iter()
        .all(|s| s.is_eod && s.session == MarketSession::Regular));
}

#[test]
fn slice_errors_are_distinct() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let (a, b) = (t("2005-01-03"), t("2005-02-01"));
    let err = |symbols: &[&str], tf, start, end| {
        catalog
            .slice(&request(symbols, tf, start, end, 0))
            .unwrap_err()
    };
    assert!(matches!(
        err(&[], Timeframe::Daily, a, b),
        MarketDataError::EmptySymbols
    ));
    assert!(matches!(
        err(&["GOOG"], Timeframe::Daily, b, a),
        MarketDataError::InvalidRange { .. }
    ));
    assert!(matches!(
        err(&["GOOG"], Timeframe::Daily, a, a),
        MarketDataError::InvalidRange { .. }
    ));
    assert!(matches!(
        err(&["NOPE"], Timeframe::Daily, a, b),
        MarketDataError::UnknownSymbol(_)
    ));
    assert!(matches!(
        err(&["GOOG", "EURUSD"], Timeframe::Daily, a, b),
        MarketDataError::NoData { .. }
    ));
    assert!(matches!(
        err(&["GOOG"], Timeframe::H1, a, b),
        MarketDataError::TimeframeTooFine { .. }
    ));
}

#[test]
fn sessions_and_end_of_day_across_the_dst_change() {
    // 30-minute equity bars around the US switch to daylight time on 2017-03-12.
    let dir = tempfile::tempdir().unwrap();
    let acme = generate(&SyntheticSpec::new(
        "ACME",
        Timeframe::Min30,
        t("2017-03-09"),
        48 * 7,
    ));
    write_layout(
        dir.path(),
        "ACME",
        Timeframe::Min30,
        &acme.candles,
        PriceEncoding::Decimal128,
    )
    .unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    // New York midnight 2017-03-10 (EST) to New York midnight 2017-03-14 (EDT).
    let (start, end) = (t("2017-03-10T05:00:00Z"), t("2017-03-14T04:00:00Z"));
    let slice = catalog
        .slice(&request(&["ACME"], Timeframe::Min30, start, end, 0))
        .unwrap();

    let eod: Vec<_> = slice
        .steps
        .iter()
        .filter(|s| s.is_eod)
        .map(|s| s.ts)
        .collect();
    assert_eq!(
        eod,
        vec![
            t("2017-03-11T04:30:00Z"),
            t("2017-03-12T04:30:00Z"),
            t("2017-03-13T03:30:00Z"),
            t("2017-03-14T03:30:00Z")
        ]
    );
    // Steps per New York day: the DST day has 23 hours.
    let mut per_day = Vec::new();
    let mut count = 0;
    for s in &slice.steps {
        count += 1;
        if s.is_eod {
            per_day.push(count);
            count = 0;
        }
    }
    assert_eq!(per_day, vec![48, 48, 46, 48]);

    let session = |ts: &str| slice.steps.iter().find(|s| s.ts == t(ts)).unwrap().session;
    // Friday 2017-03-10, EST (UTC-5).
    assert_eq!(session("2017-03-10T14:00:00Z"), MarketSession::PreMarket); // 09:00
    assert_eq!(session("2017-03-10T14:30:00Z"), MarketSession::Regular); // 09:30
    assert_eq!(session("2017-03-10T20:30:00Z"), MarketSession::Regular); // 15:30
    assert_eq!(session("2017-03-10T21:00:00Z"), MarketSession::AfterHours); // 16:00
                                                                            // Monday 2017-03-13, EDT (UTC-4): the same wall-clock times are an hour earlier in UTC.
    assert_eq!(session("2017-03-13T13:00:00Z"), MarketSession::PreMarket); // 09:00
    assert_eq!(session("2017-03-13T13:30:00Z"), MarketSession::Regular); // 09:30
    assert_eq!(session("2017-03-13T14:00:00Z"), MarketSession::Regular);
    assert_eq!(session("2017-03-13T19:30:00Z"), MarketSession::Regular); // 15:30
    assert_eq!(session("2017-03-13T20:00:00Z"), MarketSession::AfterHours); // 16:00
    let regular: BTreeSet<_> = slice
        .steps
        .iter()
        .filter(|s| s.session == MarketSession::Regular)
        .map(|s| s.ts / 86_400)
        .collect();
    assert_eq!(
        regular.len(),
        4,
        "13 regular half-hours on each of the four days"
    );
    assert_eq!(
        slice
            .steps
            .iter()
            .filter(|s| s.session == MarketSession::Regular)
            .count(),
        4 * 13
    );
}

#[test]
fn fx_days_end_at_utc_midnight() {
    let catalog = Catalog::open(sample_root()).unwrap();
    let slice = catalog
        .slice(&request(
            &["EURUSD"],
            Timeframe::H1,
            t("2017-04-19"),
            t("2017-04-25"),
            0,
        ))
        .unwrap();
    assert!(slice
        .steps
        .iter()
        .all(|s| s.session == MarketSession::Regular));
    let eod: Vec<_> = slice
        .steps
        .iter()
        .filter(|s| s.is_eod)
        .map(|s| s.ts)
        .collect();
    // FX closes Friday 21:00 UTC and reopens Sunday 21:00: no Saturday at all.
    let expected: Vec<_> = [
        "2017-04-19 23",
        "2017-04-20 23",
        "2017-04-21 20",
        "2017-04-23 23",
        "2017-04-24 23",
    ]
    .iter()
    .map(|h| t(&format!("{h}:00:00")))
    .collect();
    assert_eq!(eod, expected);
}

mod market_hours {
    use market_data::{
        build_slice, filter_market_hours, generate, MarketHours, MarketSession, SliceRequest,
        SyntheticSpec, Timeframe,
    };

    const MON: i64 = 1_704_672_000; // 2024-01-08T00:00:00Z, New York is UTC-5

    fn slice(symbols: &[&str]) -> market_data::Slice {
        let series: Vec<_> = symbols
            .iter()
            .map(|s| generate(&SyntheticSpec::new(*s, Timeframe::H1, MON - 86_400, 4 * 24)))
            .collect();
        let request = SliceRequest {
            provider: None,
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            timeframe: Timeframe::H1,
            start: MON,
            end: MON + 3 * 86_400,
            warmup_bars: 24,
        };
        build_slice(&request, &series).unwrap()
    }

    #[test]
    fn regular_hours_keep_bars_overlapping_the_session_and_end_days_on_them() {
        let all = slice(&["AAPL"]);
        assert_eq!(all.steps.len(), 72);
        let regular = filter_market_hours(&all, MarketHours::Regular);
        // 1h bars opening 09:00..15:00 New York overlap 09:30-16:00: 7 a day.
        assert_eq!(regular.steps.len(), 21);
        assert!(regular
            .steps
            .iter()
            .all(|s| s.session == MarketSession::Regular));
        let eods: Vec<i64> = regular
            .steps
            .iter()
            .filter(|s| s.is_eod)
            .map(|s| s.ts)
            .collect();
        // The 15:00 New York bar (20:00 UTC) ends each day.
        assert_eq!(
            eods,
            vec![
                MON + 20 * 3600,
                MON + 86_400 + 20 * 3600,
                MON + 2 * 86_400 + 20 * 3600
            ]
        );
        assert!(regular.warmup[0].len() == 7 && regular.warmup[0].iter().all(|c| c.ts < MON));
        // Bars are the same candles, just fewer.
        let first = regular.bars_of(&regular.steps[0])[0];
        assert_eq!(first.candle.ts, MON + 14 * 3600);
        assert!(all.bars.contains(&first));
    }

    #[test]
    fn extended_hours_and_24h_markets() {
        let all = slice(&["AAPL", "EURUSD"]);
        let extended = filter_market_hours(&all, MarketHours::Extended);
        // EURUSD keeps all 72 hours; AAPL keeps bars opening 04:00..19:00 (16 a day).
        let aapl = extended.bars.iter().filter(|b| b.symbol == 0).count();
        let fx = extended.bars.iter().filter(|b| b.symbol == 1).count();
        assert_eq!((aapl, fx, extended.steps.len()), (48, 72, 72));
        let regular = filter_market_hours(&all, MarketHours::Regular);
        assert_eq!(regular.bars.iter().filter(|b| b.symbol == 1).count(), 72);
        assert_eq!(filter_market_hours(&all, MarketHours::All), all);
    }
}
