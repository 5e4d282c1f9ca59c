//! Builds a [`Slice`] from per-symbol series: warm-up history plus one timeline merged
//! across symbols, with sessions and end-of-day marks.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, LocalClock};
use crate::candle::{Candle, Timestamp};
use crate::error::MarketDataError;
use crate::series::Series;
pub use crate::slice::MarketHours;
use crate::slice::{MarketSession, Slice, Step, SymbolBar};
use crate::timeframe::Timeframe;

/// What a session asks the market-data service for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SliceRequest {
    /// Provider (data root) name; `None` for the default provider.
    pub provider: Option<String>,
    /// Symbols, case-sensitive as in the catalog; the slice keeps this order.
    pub symbols: Vec<String>,
    /// Bar duration; resampled from a finer stored timeframe when needed.
    pub timeframe: Timeframe,
    /// First bar time included (inclusive), UTC seconds.
    pub start: Timestamp,
    /// End of the range (exclusive), UTC seconds.
    pub end: Timestamp,
    /// Bars per symbol to include before `start` as history.
    pub warmup_bars: usize,
}

impl SliceRequest {
    /// Checks what can be checked without data: symbols present and distinct, start < end.
    pub fn validate(&self) -> Result<(), MarketDataError> {
        if self.symbols.is_empty() {
            return Err(MarketDataError::EmptySymbols);
        }
        if self.start >= self.end {
            return Err(MarketDataError::InvalidRange {
                start: self.start,
                end: self.end,
            });
        }
        let mut seen = BTreeSet::new();
        for s in &self.symbols {
            if !seen.insert(s.as_str()) {
                return Err(MarketDataError::DuplicateSymbol(s.clone()));
            }
        }
        Ok(())
    }
}

/// Builds the slice for `request` from `series[i]`, the series of `request.symbols[i]` at
/// the requested timeframe. Each symbol needs at least one bar in `[start, end)`.
///
/// Steps are the distinct bar times of all symbols, merged in time order; a symbol
/// without a bar at a step is absent from it (nothing is forward-filled). A step's
/// session is regular if any of its bars is from a 24-hour market, else the US equity
/// session of its time. `is_eod` marks the last step of each trading day (every step for
/// daily bars); the trading day is the New York date when the slice holds a US equity,
/// else the UTC date.
pub fn build_slice<S: Borrow<Series>>(
    request: &SliceRequest,
    series: &[S],
) -> Result<Slice, MarketDataError> {
    request.validate()?;
    if series.len() != request.symbols.len() {
        return Err(MarketDataError::Worker(format!(
            "{} series given for {} symbols",
            series.len(),
            request.symbols.len()
        )));
    }
    let (start, end, timeframe) = (request.start, request.end, request.timeframe);
    let mut ranges: Vec<&[Candle]> = Vec::with_capacity(series.len());
    for (symbol, s) in request.symbols.iter().zip(series) {
        let range = s.borrow().range(start, end);
        if range.is_empty() {
            return Err(MarketDataError::NoData {
                symbol: symbol.clone(),
                timeframe,
                start,
                end,
            });
        }
        ranges.push(range);
    }
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    if u32::try_from(total).is_err() {
        return Err(MarketDataError::SliceTooLarge(total));
    }
    let calendars: Vec<Calendar> = request
        .symbols
        .iter()
        .map(|s| Calendar::for_symbol(s))
        .collect();
    let (steps, bars) = merge(&ranges, &calendars, timeframe);
    let mut slice = Slice {
        timeframe,
        symbols: request.symbols.clone(),
        warmup: series
            .iter()
            .map(|s| s.borrow().before(start, request.warmup_bars).to_vec())
            .collect(),
        steps,
        bars,
    };
    let day_calendar = if calendars.iter().any(|c| !c.is_24h()) {
        Calendar::UsEquity
    } else {
        Calendar::Fx
    };
    mark_end_of_day(&mut slice.steps, day_calendar, timeframe);
    Ok(slice)
}

/// `slice` without the bars outside `hours` (warm-up included). Daily bars and 24-hour
/// markets are never removed. Steps left without bars disappear; sessions and
/// end-of-day marks are recomputed, so `day` orders still expire on the last bar a
/// session actually sees.
pub fn filter_market_hours(slice: &Slice, hours: MarketHours) -> Slice {
    if hours == MarketHours::All || slice.timeframe == Timeframe::Daily {
        return slice.clone();
    }
    let tf = slice.timeframe;
    let calendars: Vec<Calendar> = slice
        .symbols
        .iter()
        .map(|s| Calendar::for_symbol(s))
        .collect();
    let mut clock = LocalClock::default();
    let mut keep = |symbol: usize, ts: Timestamp| {
        let calendar = calendars[symbol];
        match hours {
            MarketHours::All => true,
            MarketHours::Regular => clock.session(calendar, ts, tf) == MarketSession::Regular,
            MarketHours::Extended => clock.in_extended_hours(calendar, ts, tf),
        }
    };
    let warmup = slice
        .warmup
        .iter()
        .enumerate()
        .map(|(i, bars)| bars.iter().filter(|c| keep(i, c.ts)).copied().collect())
        .collect();
    let mut steps = Vec::with_capacity(slice.steps.len());
    let mut bars = Vec::with_capacity(slice.bars.len());
    for step in &slice.steps {
        let start = bars.len();
        bars.extend(
            slice
                .bars_of(step)
                .iter()
                .filter(|b| keep(b.symbol as usize, step.ts))
                .copied(),
        );
        let len = bars.len() - start;
        if len > 0 {
            steps.push(Step {
                start: start as u32,
                len: len as u32,
                ..*step
            });
        }
    }
    let day_calendar = if calendars.iter().any(|c| !c.is_24h()) {
        Calendar::UsEquity
    } else {
        Calendar::Fx
    };
    mark_end_of_day(&mut steps, day_calendar, tf);
    Slice {
        timeframe: tf,
        symbols: slice.symbols.clone(),
        warmup,
        steps,
        bars,
    }
}

/// k-way merge of time-ordered ranges into steps; within a step bars are in symbol order.
fn merge(
    ranges: &[&[Candle]],
    calendars: &[Calendar],
    timeframe: Timeframe,
) -> (Vec<Step>, Vec<SymbolBar>) {
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    let mut bars = Vec::with_capacity(total);
    let mut steps = Vec::with_capacity(ranges.iter().map(|r| r.len()).max().unwrap_or(0));
    let mut next = vec![0usize; ranges.len()];
    // (time, symbol index): equal times pop in symbol order.
    let mut heap: BinaryHeap<Reverse<(Timestamp, usize)>> = ranges
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.first().map(|c| Reverse((c.ts, i))))
        .collect();
    let mut clock = LocalClock::default();
    while let Some(&Reverse((ts, _))) = heap.peek() {
        let first = bars.len();
        let mut any_24h = false;
        while let Some(&Reverse((t, i))) = heap.peek() {
            if t != ts {
                break;
            }
            heap.pop();
            bars.push(SymbolBar {
                symbol: i as u32,
                candle: ranges[i][next[i]],
            });
            any_24h |= calendars[i].is_24h();
            next[i] += 1;
            if let Some(c) = ranges[i].get(next[i]) {
                heap.push(Reverse((c.ts, i)));
            }
        }
        let session = if any_24h {
            MarketSession::Regular
        } else {
            clock.session(Calendar::UsEquity, ts, timeframe)
        };
        // Casts are safe: the caller checked that the bar count fits u32.
        steps.push(Step {
            ts,
            start: first as u32,
            len: (bars.len() - first) as u32,
            is_eod: false,
            session,
        });
    }
    (steps, bars)
}

fn mark_end_of_day(steps: &mut [Step], calendar: Calendar, timeframe: Timeframe) {
    if timeframe == Timeframe::Daily {
        steps.iter_mut().for_each(|s| s.is_eod = true);
        return;
    }
    let mut clock = LocalClock::default();
    let days: Vec<i64> = steps
        .iter()
        .map(|s| clock.trading_day(calendar, s.ts))
        .collect();
    for (i, step) in steps.iter_mut().enumerate() {
        step.is_eod = days.get(i + 1).is_none_or(|next| *next != days[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Amount, Price};

    fn series(symbol: &str, timeframe: Timeframe, times: &[Timestamp]) -> Series {
        let candles = times
            .iter()
            .map(|&ts| Candle {
                ts,
                open: Price::from_int(1),
                high: Price::from_int(1),
                low: Price::from_int(1),
                close: Price::from_int(1),
                volume: Amount::from_int(1),
            })
            .collect();
        Series {
            symbol: symbol.into(),
            timeframe,
            candles,
        }
    }

    fn request(
        symbols: &[&str],
        timeframe: Timeframe,
        start: i64,
        end: i64,
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

    #[test]
    fn merges_in_time_order_without_inventing_bars() {
        let a = series("AAA", Timeframe::Min1, &[0, 60, 180, 240]);
        let b = series("EURUSD", Timeframe::Min1, &[60, 120, 240, 300]);
        let slice = build_slice(
            &request(&["AAA", "EURUSD"], Timeframe::Min1, 60, 300, 1),
            &[&a, &b],
        )
        .unwrap();
        let times: Vec<_> = slice.steps.iter().map(|s| s.ts).collect();
        assert_eq!(times, vec![60, 120, 180, 240]);
        let members: Vec<Vec<u32>> = slice
            .iter()
            .map(|(_, bars)| bars.iter().map(|b| b.symbol).collect())
            .collect();
        assert_eq!(members, vec![vec![0, 1], vec![1], vec![0], vec![0, 1]]);
        assert_eq!(slice.warmup[0].len(), 1);
        assert!(slice.warmup[1].is_empty());
        assert_eq!(slice.bars.len(), 6);
    }

    #[test]
    fn request_errors_are_distinct() {
        let a = series("AAA", Timeframe::Min1, &[0, 60]);
        assert!(matches!(
            build_slice(&request(&[], Timeframe::Min1, 0, 60, 0), &[&a; 0]),
            Err(MarketDataError::EmptySymbols)
        ));
        assert!(matches!(
            build_slice(&request(&["AAA"], Timeframe::Min1, 60, 60, 0), &[&a]),
            Err(MarketDataError::InvalidRange { .. })
        ));
        assert!(matches!(
            build_slice(&request(&["AAA"], Timeframe::Min1, 120, 600, 0), &[&a]),
            Err(MarketDataError::NoData { .. })
        ));
        assert!(matches!(
            build_slice(
                &request(&["AAA", "AAA"], Timeframe::Min1, 0, 60, 0),
                &[&a, &a]
            ),
            Err(MarketDataError::DuplicateSymbol(_))
        ));
    }

    #[test]
    fn daily_steps_are_all_end_of_day() {
        let a = series("AAA", Timeframe::Daily, &[0, 86_400, 2 * 86_400]);
        let slice = build_slice(
            &request(&["AAA"], Timeframe::Daily, 0, 10 * 86_400, 0),
            &[a],
        )
        .unwrap();
        assert!(slice
            .steps
            .iter()
            .all(|s| s.is_eod && s.session == MarketSession::Regular));
    }

    #[test]
    fn utc_days_for_24h_markets() {
        let times: Vec<i64> = (0..48).map(|h| h * 3600).collect();
        let fx = series("EURUSD", Timeframe::H1, &times);
        let slice =
            build_slice(&request(&["EURUSD"], Timeframe::H1, 0, 48 * 3600, 0), &[fx]).unwrap();
        let eod: Vec<i64> = slice
            .steps
            .iter()
            .filter(|s| s.is_eod)
            .map(|s| s.ts / 3600)
            .collect();
        assert_eq!(eod, vec![23, 47]);
    }
}
