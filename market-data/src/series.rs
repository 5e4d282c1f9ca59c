//! One symbol's bars at one timeframe, as loaded (and possibly resampled) from a catalog.

use crate::candle::{Candle, Timestamp};
use crate::timeframe::Timeframe;

/// A symbol's validated, strictly time-ordered bars at one timeframe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// The symbol, as named in the catalog.
    pub symbol: String,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Bars, strictly increasing in time.
    pub candles: Vec<Candle>,
}

impl Series {
    /// Approximate memory held, for the cache's byte budget: the bars plus the struct
    /// and symbol (allocator overhead is not counted).
    pub fn bytes(&self) -> usize {
        self.candles.capacity() * size_of::<Candle>() + size_of::<Series>() + self.symbol.len()
    }

    /// Index of the first bar at or after `ts`.
    pub fn index_at(&self, ts: Timestamp) -> usize {
        self.candles.partition_point(|c| c.ts < ts)
    }

    /// Bars in `[start, end)`.
    pub fn range(&self, start: Timestamp, end: Timestamp) -> &[Candle] {
        let from = self.index_at(start);
        let to = self.index_at(end).max(from);
        &self.candles[from..to]
    }

    /// Up to `count` bars before `start`, oldest first.
    pub fn before(&self, start: Timestamp, count: usize) -> &[Candle] {
        let to = self.index_at(start);
        &self.candles[to.saturating_sub(count)..to]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Amount, Price};

    #[test]
    fn ranges_and_history() {
        let bar = |ts| Candle {
            ts,
            open: Price::from_int(1),
            high: Price::from_int(1),
            low: Price::from_int(1),
            close: Price::from_int(1),
            volume: Amount::ZERO,
        };
        let s = Series {
            symbol: "X".into(),
            timeframe: Timeframe::Min1,
            candles: (0..10).map(|i| bar(i * 60)).collect(),
        };
        assert_eq!(s.range(60, 180).len(), 2);
        assert_eq!(s.range(61, 180)[0].ts, 120);
        assert_eq!(s.range(600, 0).len(), 0);
        assert_eq!(s.before(120, 5).len(), 2);
        assert_eq!(
            s.before(600, 3).iter().map(|c| c.ts).collect::<Vec<_>>(),
            vec![420, 480, 540]
        );
        assert!(s.bytes() >= 10 * size_of::<Candle>());
    }
}
