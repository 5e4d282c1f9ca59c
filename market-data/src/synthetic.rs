//! SYNTHETIC market data: a seeded geometric random walk for tests, benchmarks and demos.
//! These bars are not real prices and must never be presented as such.
//!
//! The generator is deterministic: a hand-written SplitMix64 feeds Box-Muller normals, so
//! the same spec and seed give identical bars on every run of the same build without a
//! `rand` dependency. (Across platforms, `exp`/`ln` of the system libm could in principle
//! differ in the last bit.)

use crate::candle::{Candle, Timestamp};
use crate::fixed::{Amount, Price, FRACTION_DIGITS, SCALE};
use crate::series::Series;
use crate::timeframe::Timeframe;

/// Parameters of a synthetic series.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Symbol to label the series with.
    pub symbol: String,
    /// Bar duration; bars are contiguous, with no nights, weekends or holidays.
    pub timeframe: Timeframe,
    /// Time of the first bar (rounded down to a bar boundary).
    pub start: Timestamp,
    /// Number of bars.
    pub count: usize,
    /// Open of the first bar.
    pub start_price: Price,
    /// Standard deviation of the log return per bar (0.001 = 0.1%).
    pub volatility: f64,
    /// Price decimals (tick = 10^-decimals), at most 8.
    pub decimals: u32,
    /// PRNG seed.
    pub seed: u64,
}

impl SyntheticSpec {
    /// A spec with start price 100.00, 0.1% volatility per bar, 2 decimals and seed 0.
    pub fn new(
        symbol: impl Into<String>,
        timeframe: Timeframe,
        start: Timestamp,
        count: usize,
    ) -> Self {
        SyntheticSpec {
            symbol: symbol.into(),
            timeframe,
            start,
            count,
            start_price: Price::from_int(100),
            volatility: 0.001,
            decimals: 2,
            seed: 0,
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and statistically fine for tests.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so `ln` is finite.
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal via Box-Muller (one of the pair is discarded for simplicity).
    pub fn next_normal(&mut self) -> f64 {
        let (u1, u2) = (self.next_unit(), self.next_unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Generates the series: each bar opens at the previous close, closes at
/// `open * exp(sigma * z - sigma^2 / 2)`, has high/low a random fraction of sigma beyond
/// the body (rounded outward to the tick) and a positive integer volume.
pub fn generate(spec: &SyntheticSpec) -> Series {
    let decimals = spec.decimals.min(FRACTION_DIGITS);
    let tick = SCALE / 10i64.pow(decimals);
    let sigma = spec.volatility.abs();
    let mut rng = SplitMix64::new(spec.seed);
    let start = spec.timeframe.bucket(spec.start);
    let mut open = round_to_tick(spec.start_price.raw(), tick).max(tick);
    let mut candles = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let z = rng.next_normal();
        let close_f = open as f64 * (sigma * z - sigma * sigma / 2.0).exp();
        let close = round_to_tick(close_f as i64, tick).max(tick);
        let (body_hi, body_lo) = (open.max(close), open.min(close));
        let up = body_hi as f64 * (1.0 + sigma * rng.next_normal().abs() / 2.0);
        let down = body_lo as f64 * (1.0 - sigma * rng.next_normal().abs() / 2.0);
        let high = ceil_to_tick(up as i64, tick).max(body_hi);
        let low = floor_to_tick(down as i64, tick).clamp(tick.min(body_lo), body_lo);
        let volume = (1000.0 * (0.5 * rng.next_normal()).exp()).round().max(1.0) as i64;
        candles.push(Candle {
            ts: start + i as i64 * spec.timeframe.seconds(),
            open: Price::from_raw(open),
            high: Price::from_raw(high),
            low: Price::from_raw(low),
            close: Price::from_raw(close),
            volume: Amount::from_int(volume),
        });
        open = close;
    }
    Series {
        symbol: spec.symbol.clone(),
        timeframe: spec.timeframe,
        candles,
    }
}

fn round_to_tick(raw: i64, tick: i64) -> i64 {
    (raw + tick / 2).div_euclid(tick) * tick
}

fn floor_to_tick(raw: i64, tick: i64) -> i64 {
    raw.div_euclid(tick) * tick
}

fn ceil_to_tick(raw: i64, tick: i64) -> i64 {
    -(-raw).div_euclid(tick) * tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bars() {
        let mut spec = SyntheticSpec::new("SYN", Timeframe::Min1, 1_000_000_030, 5_000);
        spec.seed = 7;
        let a = generate(&spec);
        assert_eq!(a, generate(&spec));
        spec.seed = 8;
        assert_ne!(a.candles, generate(&spec).candles);
    }

    #[test]
    fn bars_are_valid_and_chained() {
        let mut spec = SyntheticSpec::new("SYN", Timeframe::Min5, 1_000_000_030, 20_000);
        spec.volatility = 0.02;
        spec.start_price = "1.5".parse().unwrap();
        spec.decimals = 5;
        let s = generate(&spec);
        assert_eq!(s.candles.len(), 20_000);
        assert_eq!(s.candles[0].ts, Timeframe::Min5.bucket(1_000_000_030));
        assert_eq!(s.candles[0].open, spec.start_price);
        for w in s.candles.windows(2) {
            assert_eq!(w[1].open, w[0].close);
            assert_eq!(w[1].ts - w[0].ts, 300);
        }
        for c in &s.candles {
            c.validate().unwrap();
            assert!(c.volume.is_positive());
            assert_eq!(c.close.raw() % 1000, 0, "5 decimals");
        }
    }

    #[test]
    fn uniforms_stay_in_range() {
        let mut rng = SplitMix64::new(0);
        for _ in 0..10_000 {
            let u = rng.next_unit();
            assert!(u > 0.0 && u <= 1.0);
        }
        // Reference value of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
