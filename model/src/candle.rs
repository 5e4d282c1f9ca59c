//! One OHLCV bar.

use serde::{Deserialize, Serialize};

use crate::fixed::{Amount, Price};

/// Seconds since the Unix epoch, UTC. Bars are at least one minute long, so whole
/// seconds are exact; finer timestamps in data files are rejected by the loaders.
pub type Timestamp = i64;

/// One OHLCV bar with exact decimal prices. `ts` is the bar's open time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Bar open time, seconds since the Unix epoch (UTC).
    pub ts: Timestamp,
    /// First traded price.
    pub open: Price,
    /// Highest traded price.
    pub high: Price,
    /// Lowest traded price.
    pub low: Price,
    /// Last traded price.
    pub close: Price,
    /// Traded volume (units; may be fractional for FX and crypto).
    pub volume: Amount,
}

/// Why a bar is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CandleError {
    /// A price is zero or negative.
    #[error("non-positive price")]
    NonPositivePrice,
    /// high < low.
    #[error("high {high} is below low {low}")]
    HighBelowLow {
        /// The bar's high.
        high: Price,
        /// The bar's low.
        low: Price,
    },
    /// open or close outside [low, high].
    #[error("{field} {value} is outside [low {low}, high {high}]")]
    OutsideRange {
        /// `open` or `close`.
        field: &'static str,
        /// The offending value.
        value: Price,
        /// The bar's low.
        low: Price,
        /// The bar's high.
        high: Price,
    },
    /// Negative volume.
    #[error("negative volume {0}")]
    NegativeVolume(Amount),
}

impl Candle {
    /// Checks the OHLC invariants: positive prices, low <= open, close <= high.
    pub fn validate(&self) -> Result<(), CandleError> {
        let Candle {
            open,
            high,
            low,
            close,
            volume,
            ..
        } = *self;
        if open.raw() <= 0 || high.raw() <= 0 || low.raw() <= 0 || close.raw() <= 0 {
            return Err(CandleError::NonPositivePrice);
        }
        if high < low {
            return Err(CandleError::HighBelowLow { high, low });
        }
        for (field, value) in [("open", open), ("close", close)] {
            if value < low || value > high {
                return Err(CandleError::OutsideRange {
                    field,
                    value,
                    low,
                    high,
                });
            }
        }
        if volume.is_negative() {
            return Err(CandleError::NegativeVolume(volume));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(o: i64, h: i64, l: i64, cl: i64) -> Candle {
        Candle {
            ts: 0,
            open: Price::from_int(o),
            high: Price::from_int(h),
            low: Price::from_int(l),
            close: Price::from_int(cl),
            volume: Amount::from_int(1),
        }
    }

    #[test]
    fn validation() {
        assert!(c(10, 12, 9, 11).validate().is_ok());
        assert!(matches!(
            c(10, 8, 9, 9).validate(),
            Err(CandleError::HighBelowLow { .. })
        ));
        assert!(matches!(
            c(13, 12, 9, 11).validate(),
            Err(CandleError::OutsideRange { field: "open", .. })
        ));
        assert!(matches!(
            c(10, 12, 9, 8).validate(),
            Err(CandleError::OutsideRange { field: "close", .. })
        ));
        assert!(matches!(
            c(0, 12, 0, 11).validate(),
            Err(CandleError::NonPositivePrice)
        ));
    }
}
