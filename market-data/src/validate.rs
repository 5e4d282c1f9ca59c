//! Checks every loader applies to every bar: OHLC invariants and strictly increasing time.

use crate::candle::{Candle, Timestamp};
use crate::error::LoadErrorKind;

/// Validates `bars`, whose first element is data row `first_row` (1-based), continuing
/// from the previous bar's time `prev` (from an earlier chunk or file). On success `prev`
/// is advanced; on failure the offending row is returned with the reason.
pub(crate) fn check_bars(
    bars: &[Candle],
    first_row: u64,
    prev: &mut Option<Timestamp>,
) -> Result<(), (u64, LoadErrorKind)> {
    for (i, bar) in bars.iter().enumerate() {
        let row = first_row + i as u64;
        bar.validate().map_err(|e| (row, e.into()))?;
        if let Some(previous) = *prev {
            if bar.ts <= previous {
                return Err((
                    row,
                    LoadErrorKind::NotIncreasing {
                        previous,
                        ts: bar.ts,
                    },
                ));
            }
        }
        *prev = Some(bar.ts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Amount, Price};

    fn bar(ts: Timestamp, high: i64) -> Candle {
        Candle {
            ts,
            open: Price::from_int(10),
            high: Price::from_int(high),
            low: Price::from_int(9),
            close: Price::from_int(10),
            volume: Amount::from_int(1),
        }
    }

    #[test]
    fn reports_first_bad_row() {
        let mut prev = None;
        assert!(check_bars(&[bar(1, 11), bar(2, 11)], 1, &mut prev).is_ok());
        assert_eq!(prev, Some(2));
        let err = check_bars(&[bar(3, 11), bar(4, 8)], 3, &mut prev).unwrap_err();
        assert_eq!(err.0, 4);
        assert!(matches!(err.1, LoadErrorKind::InvalidBar(_)));
        let err = check_bars(&[bar(2, 11)], 1, &mut Some(2)).unwrap_err();
        assert!(matches!(
            err,
            (1, LoadErrorKind::NotIncreasing { previous: 2, ts: 2 })
        ));
    }
}
