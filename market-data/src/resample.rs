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
        out.push(merge(bucket, to.bucket(bucket[0].ts)));
    }
    Some(out)
}

/// At most `max_points` bars for a chart: consecutive runs of `ceil(n / max_points)` bars
/// merged like [`resample`] merges a bucket (open of the first, highest high, lowest
/// low, close of the last, summed volume), each stamped with its first bar's time; the
/// last run may be shorter. `bars` unchanged when they fit. Returns the bars and how
/// many input bars each one covers (1 when unchanged). `max_points` of 0 counts as 1.
pub fn downsample(bars: &[Candle], max_points: usize) -> (Vec<Candle>, usize) {
    let max_points = max_points.max(1);
    if bars.len() <= max_points {
        return (bars.to_vec(), 1);
    }
    let per = bars.len().div_ceil(max_points);
    let out = bars.chunks(per).map(|run| merge(run, run[0].ts)).collect();
    (out, per)
}

/// One bar from a non-empty run of time-ordered bars, stamped `ts`.
fn merge(run: &[Candle], ts: i64) -> Candle {
    let mut bar = Candle { ts, ..run[0] };
    for c in &run[1..] {
        bar.high = bar.high.max(c.high);
        bar.low = bar.low.min(c.low);
        bar.close = c.close;
        bar.volume += c.volume;
    }
    bar
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
    fn downsampling_keeps_each_runs_ohlc_and_volume() {
        let bars: Vec<Candle> = (0..10)
            .map(|i| bar(i * 60, 10 + i, 20 + i, 5 + i, 11 + i, 1 + i))
            .collect();
        assert_eq!(downsample(&bars, 10), (bars.clone(), 1));
        assert_eq!(downsample(&bars, 50), (bars.clone(), 1));
        // 10 bars into at most 4: runs of 3, 3, 3 and 1.
        let (out, per) = downsample(&bars, 4);
        assert_eq!(per, 3);
        assert_eq!(
            out,
            vec![
                bar(0, 10, 22, 5, 13, 1 + 2 + 3),
                bar(180, 13, 25, 8, 16, 4 + 5 + 6),
                bar(360, 16, 28, 11, 19, 7 + 8 + 9),
                bar(540, 19, 29, 14, 20, 10),
            ]
        );
        let total = |b: &[Candle]| b.iter().fold(Amount::ZERO, |t, c| t + c.volume);
        assert_eq!(total(&out), total(&bars));
        assert_eq!(downsample(&bars, 0).0.len(), 1);
        assert_eq!(downsample(&[], 5), (Vec::new(), 1));
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
