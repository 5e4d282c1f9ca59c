//! Aggregates bars of a finer timeframe into a coarser one.

use crate::candle::Candle;
use crate::timeframe::Timeframe;

/// Aggregates time-ordered `bars` of timeframe `from` into `to` bars: open of the first,
/// highest high, lowest low, close of the last, summed volume. Buckets are aligned with
/// [`Timeframe::bucket`] (UTC) and stamped with the bucket start. Partial buckets (at the
/// edges or around gaps) are kept: they hold real trades. Returns `None` when `to`
/// cannot be built from `from` (finer, or not a multiple).
///
/// Daily buckets are UTC days, like stored daily bars; for US equities this puts
/// after-hours bars past 19:00 New York (winter) into the next UTC day.
pub fn resample(bars: &[Candle], from: Timeframe, to: Timeframe) -> Option<Vec<Candle>> {
    if !to.can_resample_from(from) {
        return None;
    }
    if to == from {
        return Some(bars.to_vec());
    }
    let ratio = (to.seconds() / from.seconds()) as usize;
    let mut out = Vec::with_capacity(bars.len() / ratio + 2);
    for bucket in bars.chunk_by(|a, b| to.bucket(a.ts) == to.bucket(b.ts)) {
        let first = bucket[0];
        let mut bar = Candle {
            ts: to.bucket(first.ts),
            ..first
        };
        for c in &bucket[1..] {
            bar.high = bar.high.max(c.high);
            bar.low = bar.low.min(c.low);
            bar.close = c.close;
            bar.volume += c.volume;
        }
        out.push(bar);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Amount, Price};

    fn bar(ts: i64, o: i64, h: i64, l: i64, c: i64, v: i64) -> Candle {
        Candle {
            ts,
            open: Price::from_int(o),
            high: Price::from_int(h),
            low: Price::from_int(l),
            close: Price::from_int(c),
            volume: Amount::from_int(v),
        }
    }

    #[test]
    fn aggregates_aligned_buckets() {
        // 5min bars from 00:05 to 00:25: buckets [00:00,00:15) partial and [00:15,00:30).
        let bars = [
            bar(300, 10, 12, 9, 11, 1),
            bar(600, 11, 15, 10, 14, 2),
            bar(900, 14, 14, 8, 9, 3),
            bar(1500, 9, 10, 7, 8, 4),
        ];
        let out = resample(&bars, Timeframe::Min5, Timeframe::Min15).unwrap();
        assert_eq!(
            out,
            vec![bar(0, 10, 15, 9, 14, 3), bar(900, 14, 14, 7, 8, 7)]
        );
        for b in &out {
            assert!(b.validate().is_ok());
        }
    }

    #[test]
    fn refuses_finer_targets() {
        assert!(resample(&[], Timeframe::H1, Timeframe::Min5).is_none());
        assert_eq!(
            resample(&[bar(0, 1, 1, 1, 1, 1)], Timeframe::H1, Timeframe::H1)
                .unwrap()
                .len(),
            1
        );
        assert!(resample(&[], Timeframe::H1, Timeframe::Daily)
            .unwrap()
            .is_empty());
    }
}
