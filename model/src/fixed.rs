//! Exact fixed-point numbers for prices, cash and volumes.
//!
//! Why fixed-point integers and not a decimal library or `f64`: every price on the wire
//! has at most a handful of decimals, and the engine needs sums of fills and commissions
//! to be exact and identical on every machine. Scaled integers give exactness and
//! determinism at the cost of one integer add per operation, which is what lets the
//! engine process tens of millions of bars per second. Eight fractional digits cover
//! equities, FX (5 decimals) and crypto (satoshis).
//!
//! - [`Price`]: `i64` scaled by 10^8 (up to about 92 billion per unit).
//! - [`Amount`]: `i128` scaled by 10^8, for cash, notionals, PnL and volumes, where
//!   `quantity x price` must never overflow.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of fractional decimal digits kept by [`Price`] and [`Amount`].
pub const FRACTION_DIGITS: u32 = 8;
/// 10^[`FRACTION_DIGITS`]: the integer that represents 1.0.
pub const SCALE: i64 = 100_000_000;

/// Error parsing a decimal string or converting a float into a fixed-point number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedError {
    /// The text is not a plain decimal number.
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    /// More than [`FRACTION_DIGITS`] significant fractional digits.
    #[error("`{0}` has more than 8 decimal places")]
    TooPrecise(String),
    /// The value does not fit the representation.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
    /// NaN or infinite float.
    #[error("not a finite number")]
    NotFinite,
}

/// Parses `[-+]digits[.digits][e[-+]digits]` into an integer scaled by 10^8. Digits
/// beyond 8 decimals are an error unless `round`, which rounds half away from zero.
fn parse_scaled(text: &str, round: bool) -> Result<i128, FixedError> {
    let s = text.trim();
    let syntax = || FixedError::Syntax(text.to_string());
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = s[i + 1..].parse().map_err(|_| syntax())?;
            // Any representable value needs |exponent| well under 64; bounding it here
            // keeps the arithmetic below from overflowing or looping on hostile input.
            if e.abs() > 64 {
                return Err(FixedError::OutOfRange(text.to_string()));
            }
            (&s[..i], e)
        }
        None => (s, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = match digits.find('.') {
        Some(i) => (&digits[..i], &digits[i + 1..]),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(syntax());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(syntax());
    }
    // Collect all significant digits, then place the decimal point by exponent.
    let mut value: i128 = 0;
    let mut scale_exp: i64 = exp - frac_part.len() as i64 + FRACTION_DIGITS as i64;
    let all = int_part.bytes().chain(frac_part.bytes());
    let mut significant = false;
    for b in all {
        let d = (b - b'0') as i128;
        if d != 0 {
            significant = true;
        }
        if !significant {
            continue;
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(|| FixedError::OutOfRange(text.to_string()))?;
    }
    if value == 0 {
        return Ok(0);
    }
    if scale_exp < 0 && round {
        // 10^39 exceeds any i128, so longer tails round to zero.
        let divisor = 10i128
            .checked_pow(u32::try_from(scale_exp.unsigned_abs()).unwrap_or(u32::MAX))
            .unwrap_or(i128::MAX);
        let (q, r) = (value / divisor, value % divisor);
        value = if r >= divisor - r { q + 1 } else { q };
        scale_exp = 0;
    }
    while scale_exp < 0 {
        if value % 10 != 0 {
            return Err(FixedError::TooPrecise(text.to_string()));
        }
        value /= 10;
        scale_exp += 1;
    }
    for _ in 0..scale_exp {
        value = value
            .checked_mul(10)
            .ok_or_else(|| FixedError::OutOfRange(text.to_string()))?;
    }
    Ok(if negative { -value } else { value })
}

/// Formats a scaled integer with trailing zeros trimmed but at least `min_frac` decimals.
/// Every price on the wire goes through here, so it writes from a stack buffer
/// instead of allocating.
fn format_scaled(value: i128, min_frac: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let abs = value.unsigned_abs();
    let mut buf = [0u8; 41 + 1 + FRACTION_DIGITS as usize];
    let mut pos = 41;
    // 128-bit division is a software routine: use 64-bit arithmetic when the value fits,
    // which is every realistic price and cash amount.
    let (mut int, frac) = match u64::try_from(abs) {
        Ok(a) => (u128::from(a / SCALE as u64), a % SCALE as u64),
        Err(_) => (abs / SCALE as u128, (abs % SCALE as u128) as u64),
    };
    while u64::try_from(int).is_err() {
        pos -= 1;
        buf[pos] = b'0' + (int % 10) as u8;
        int /= 10;
    }
    let mut small = int as u64;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (small % 10) as u8;
        small /= 10;
        if small == 0 {
            break;
        }
    }
    if value < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    let mut end = 41;
    let mut digits = [b'0'; FRACTION_DIGITS as usize];
    let mut x = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    let mut len = digits.len();
    while len > min_frac && digits[len - 1] == b'0' {
        len -= 1;
    }
    if len > 0 {
        buf[end] = b'.';
        buf[end + 1..end + 1 + len].copy_from_slice(&digits[..len]);
        end += 1 + len;
    }
    // Only ASCII digits, '-' and '.' were written.
    f.write_str(std::str::from_utf8(&buf[pos..end]).map_err(|_| fmt::Error)?)
}

/// `y` rounded half away from zero, exactly like `f64::round`, for `|y| < 9e18`.
///
/// Bulk Parquet loads convert millions of floats, and `f64::round` (a libm call on
/// baseline x86-64) plus the software `f64 -> i128` conversion dominated them. `y -
/// trunc(y)` is exact in this range, so comparing it with one half decides the rounding
/// exactly, without branches.
#[inline]
pub fn round_half_away(y: f64) -> i64 {
    let t = y as i64;
    let frac = y - t as f64;
    t + i64::from(frac >= 0.5) - i64::from(frac <= -0.5)
}

/// Largest magnitude of `x * 10^8` that [`round_half_away`] handles.
pub const FAST_LIMIT: f64 = 9.0e18;

#[inline]
fn float_to_scaled(x: f64) -> Result<i128, FixedError> {
    if !x.is_finite() {
        return Err(FixedError::NotFinite);
    }
    let y = x * SCALE as f64;
    if y.abs() < FAST_LIMIT {
        return Ok(i128::from(round_half_away(y)));
    }
    let scaled = y.round();
    if scaled.abs() >= 1.0e37 {
        return Err(FixedError::OutOfRange(x.to_string()));
    }
    Ok(scaled as i128)
}

/// A price: exact decimal with 8 fractional digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

impl Price {
    /// Zero.
    pub const ZERO: Price = Price(0);

    /// From the raw scaled integer (value x 10^8).
    pub const fn from_raw(raw: i64) -> Self {
        Price(raw)
    }

    /// The raw scaled integer (value x 10^8).
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// From a whole number of units.
    pub const fn from_int(units: i64) -> Self {
        Price(units * SCALE)
    }

    /// Nearest representable price to a float: floats in data files are the closest
    /// binary approximation of a short decimal, so rounding to 8 digits recovers it.
    #[inline]
    pub fn from_f64(x: f64) -> Result<Self, FixedError> {
        let v = float_to_scaled(x)?;
        i64::try_from(v)
            .map(Price)
            .map_err(|_| FixedError::OutOfRange(x.to_string()))
    }

    /// From an unscaled integer with `scale` fractional digits (Parquet decimal128).
    pub fn from_unscaled(unscaled: i128, scale: u32) -> Result<Self, FixedError> {
        let v = Amount::from_unscaled(unscaled, scale)?.raw();
        i64::try_from(v)
            .map(Price)
            .map_err(|_| FixedError::OutOfRange(unscaled.to_string()))
    }

    /// Lossy conversion for statistics and indicators.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// `quantity x price`, exact.
    pub fn times(self, quantity: i64) -> Amount {
        Amount(self.0 as i128 * quantity as i128)
    }

    /// The price moved against the trader by `bps` basis points, rounded to the
    /// trader's disadvantage: up when `up` (a buy pays more), down otherwise.
    pub fn slipped(self, bps: u32, up: bool) -> Price {
        if bps == 0 {
            return self;
        }
        let num = self.0 as i128 * (10_000 + if up { bps as i128 } else { -(bps as i128) });
        let q = num.div_euclid(10_000);
        let r = num.rem_euclid(10_000);
        let v = if up && r != 0 { q + 1 } else { q };
        Price(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_scaled(self.0 as i128, 2, f)
    }
}

impl FromStr for Price {
    type Err = FixedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = parse_scaled(s, false)?;
        i64::try_from(v)
            .map(Price)
            .map_err(|_| FixedError::OutOfRange(s.to_string()))
    }
}

/// An amount of money or volume: exact decimal with 8 fractional digits in an `i128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// From the raw scaled integer (value x 10^8).
    pub const fn from_raw(raw: i128) -> Self {
        Amount(raw)
    }

    /// The raw scaled integer (value x 10^8).
    pub const fn raw(self) -> i128 {
        self.0
    }

    /// From a whole number of units.
    pub const fn from_int(units: i64) -> Self {
        Amount(units as i128 * SCALE as i128)
    }

    /// Nearest representable amount to a float.
    #[inline]
    pub fn from_f64(x: f64) -> Result<Self, FixedError> {
        float_to_scaled(x).map(Amount)
    }

    /// From an unscaled integer with `scale` fractional digits (Parquet decimal128);
    /// digits beyond 8 decimals must be zero.
    pub fn from_unscaled(unscaled: i128, scale: u32) -> Result<Self, FixedError> {
        let out = || FixedError::OutOfRange(unscaled.to_string());
        if scale <= FRACTION_DIGITS {
            let mul = 10i128.pow(FRACTION_DIGITS - scale);
            unscaled.checked_mul(mul).map(Amount).ok_or_else(out)
        } else {
            let div = 10i128
                .checked_pow(scale - FRACTION_DIGITS)
                .ok_or_else(out)?;
            if unscaled % div != 0 {
                return Err(FixedError::TooPrecise(unscaled.to_string()));
            }
            Ok(Amount(unscaled / div))
        }
    }

    /// Parses decimal text like `FromStr`, but rounds digits beyond 8 decimals (half away
    /// from zero) instead of rejecting them: for volumes written from floats
    /// (`397787.41249925003`), where the tail is a formatting artifact.
    pub fn parse_rounded(text: &str) -> Result<Self, FixedError> {
        parse_scaled(text, true).map(Amount)
    }

    /// Lossy conversion for statistics.
    #[inline]
    pub fn to_f64(self) -> f64 {
        // Most amounts fit in 64 bits, where the conversion is one instruction
        // instead of a 128-bit soft-float routine.
        match i64::try_from(self.0) {
            Ok(v) => v as f64 / SCALE as f64,
            Err(_) => self.0 as f64 / SCALE as f64,
        }
    }

    /// `self x num / den` rounded toward negative infinity; `den` must be non-zero.
    pub fn mul_div_floor(self, num: i64, den: i64) -> Amount {
        Amount((self.0 * num as i128).div_euclid(den as i128))
    }

    /// Absolute value.
    pub fn abs(self) -> Amount {
        Amount(self.0.abs())
    }

    /// True when negative.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// True when positive.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Per-unit value of `self / quantity`, rounded toward negative infinity.
    pub fn per_unit(self, quantity: i64) -> Price {
        if quantity == 0 {
            return Price::ZERO;
        }
        let v = self.0.div_euclid(quantity as i128);
        Price(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Amount {
    type Output = Amount;
    fn sub(self, rhs: Amount) -> Amount {
        Amount(self.0 - rhs.0)
    }
}

impl std::ops::AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        self.0 += rhs.0;
    }
}

impl std::ops::SubAssign for Amount {
    fn sub_assign(&mut self, rhs: Amount) {
        self.0 -= rhs.0;
    }
}

impl std::ops::Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, |a, b| a + b)
    }
}

impl From<Price> for Amount {
    fn from(p: Price) -> Amount {
        Amount(p.0 as i128)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_scaled(self.0, 2, f)
    }
}

impl FromStr for Amount {
    type Err = FixedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_scaled(s, false).map(Amount)
    }
}

/// Serialises as a decimal string (the wire form); deserialises from a string or a
/// JSON number, as PROTOCOL.md allows both in requests.
macro_rules! serde_decimal {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if !d.is_human_readable() {
                    return Deserialize::deserialize(d).map(Self);
                }
                // A visitor rather than an untagged enum, which buffers every value
                // before trying each form: decimals were the largest part of parsing
                // a tick or an account snapshot.
                struct DecimalVisitor;
                impl<'de> serde::de::Visitor<'de> for DecimalVisitor {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a decimal string or number")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$t, E> {
                        s.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<$t, E> {
                        (i as i128 * SCALE as i128)
                            .try_into()
                            .map(<$t>::from_raw)
                            .map_err(|_| E::custom("number out of range"))
                    }
                    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<$t, E> {
                        match i64::try_from(u) {
                            Ok(i) => self.visit_i64(i),
                            Err(_) => self.visit_f64(u as f64),
                        }
                    }
                    // Shortest round-trip text of the float is the decimal the client wrote.
                    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<$t, E> {
                        x.to_string().parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(DecimalVisitor)
            }
        }
    };
}

serde_decimal!(Price);
serde_decimal!(Amount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let p: Price = "1.07219".parse().unwrap();
        assert_eq!(p.raw(), 107_219_000);
        assert_eq!(p.to_string(), "1.07219");
        assert_eq!("100".parse::<Price>().unwrap().to_string(), "100.00");
        assert_eq!("-0.5".parse::<Amount>().unwrap().to_string(), "-0.50");
        assert_eq!("1e2".parse::<Price>().unwrap(), Price::from_int(100));
        assert_eq!("2.5E-3".parse::<Price>().unwrap().raw(), 250_000);
        assert_eq!(".5".parse::<Price>().unwrap().raw(), 50_000_000);
        assert_eq!("1.100000000".parse::<Price>().unwrap().raw(), 110_000_000);
    }

    #[test]
    fn hostile_exponents_fail_fast() {
        for text in [
            "1e2147483647",
            "1e-2147483648",
            "0e-2000000000",
            "1e99999999999999999999",
            "5e65",
        ] {
            let started = std::time::Instant::now();
            assert!(text.parse::<Amount>().is_err(), "{text}");
            assert!(Amount::parse_rounded(text).is_err(), "{text}");
            assert!(
                started.elapsed() < std::time::Duration::from_millis(50),
                "{text}"
            );
        }
        assert_eq!("0e-64".parse::<Amount>().unwrap(), Amount::ZERO);
        let zeros = format!("0.{}", "0".repeat(100_000));
        assert_eq!(zeros.parse::<Amount>().unwrap(), Amount::ZERO);
        assert_eq!(
            "1e20".parse::<Amount>().unwrap(),
            Amount::from_raw(10i128.pow(28))
        );
    }

    #[test]
    fn formatting_matches_the_plain_definition() {
        let reference = |v: i128| {
            let sign = if v < 0 { "-" } else { "" };
            let (int, frac) = (
                v.unsigned_abs() / SCALE as u128,
                v.unsigned_abs() % SCALE as u128,
            );
            let mut f = format!("{frac:08}");
            while f.len() > 2 && f.ends_with('0') {
                f.pop();
            }
            format!("{sign}{int}.{f}")
        };
        let mut v: i128 = 1;
        for _ in 0..400 {
            for x in [v, -v, v.saturating_add(1), v - 1, v.saturating_mul(7) / 3] {
                assert_eq!(Amount::from_raw(x).to_string(), reference(x), "{x}");
            }
            v = v.saturating_mul(3) / 2 + 1;
        }
        for x in [0, i128::MAX, i128::MIN + 1, i128::MIN] {
            assert_eq!(Amount::from_raw(x).to_string(), reference(x), "{x}");
        }
        assert_eq!(
            Price::from_raw(i64::MIN).to_string(),
            reference(i64::MIN as i128)
        );
    }

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "-", "abc", "1.2.3", "1..", "1e", "0x10", "1 2", "."] {
            assert!(bad.parse::<Price>().is_err(), "{bad}");
        }
        assert!(matches!(
            "0.000000001".parse::<Price>(),
            Err(FixedError::TooPrecise(_))
        ));
        assert!(matches!(
            "1e30".parse::<Price>(),
            Err(FixedError::OutOfRange(_))
        ));
        assert!(Price::from_f64(f64::NAN).is_err());
    }

    #[test]
    fn rounded_parsing() {
        let a = |s: &str| Amount::parse_rounded(s).unwrap().to_string();
        assert_eq!(a("397787.41249925003"), "397787.41249925");
        assert_eq!(a("0.000000005"), "0.00000001");
        assert_eq!(a("-0.000000015"), "-0.00000002");
        assert_eq!(a("0.0000000049"), "0.00");
        assert_eq!(a("1.5"), "1.50");
        assert_eq!(a("1e-60"), "0.00");
        assert!(Amount::parse_rounded("x").is_err());
    }

    #[test]
    fn fast_float_rounding_matches_round() {
        let mut z = 0x2545_f491_4f6c_dd1du64;
        let check = |x: f64| {
            let expected = (x * SCALE as f64).round() as i128;
            assert_eq!(float_to_scaled(x).unwrap(), expected, "{x:e}");
        };
        for x in [
            0.5e-8,
            -0.5e-8,
            1.5e-8,
            2.5e-8,
            f64::from_bits(0.5f64.to_bits() - 1) * 1e-8,
            1e10,
            -1e10,
            8.9e10,
            0.0,
            -0.0,
        ] {
            check(x);
        }
        for _ in 0..100_000 {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            let x = f64::from_bits(z);
            if x.is_finite() && x.abs() < 1e29 {
                check(x);
            }
            check((z % 10_000_000_000) as f64 / 1e9 - 5.0);
        }
    }

    #[test]
    fn floats_recover_their_decimal() {
        assert_eq!(Price::from_f64(1.0716).unwrap().to_string(), "1.0716");
        assert_eq!(
            Amount::from_f64(2012.25343589).unwrap().to_string(),
            "2012.25343589"
        );
    }

    #[test]
    fn unscaled_decimals() {
        assert_eq!(
            Price::from_unscaled(10034, 2).unwrap().to_string(),
            "100.34"
        );
        assert_eq!(
            Amount::from_unscaled(12_000_000_000, 10)
                .unwrap()
                .to_string(),
            "1.20"
        );
        assert!(Amount::from_unscaled(12_345_678_901, 10).is_err());
    }

    #[test]
    fn slippage_rounds_against_the_trader() {
        let p: Price = "1.07219".parse().unwrap();
        assert_eq!(p.slipped(5, true).to_string(), "1.0727261"); // 1.072726095 rounded up
        assert_eq!(p.slipped(5, false).to_string(), "1.0716539"); // 1.071653905 rounded down
        assert_eq!(
            Price::from_int(100).slipped(10, true),
            "100.1".parse().unwrap()
        );
        assert_eq!(
            Price::from_int(100).slipped(10, false),
            "99.9".parse().unwrap()
        );
    }

    #[test]
    fn serde_accepts_numbers_and_strings() {
        let p: Price = serde_json::from_str("\"12.5\"").unwrap();
        assert_eq!(p, "12.5".parse().unwrap());
        let p: Price = serde_json::from_str("12.5").unwrap();
        assert_eq!(p.raw(), 1_250_000_000);
        let p: Price = serde_json::from_str("7").unwrap();
        assert_eq!(p, Price::from_int(7));
        assert_eq!(
            serde_json::to_string(&Amount::from_int(100000)).unwrap(),
            "\"100000.00\""
        );
        let p: Price = serde_json::from_str("-3").unwrap();
        assert_eq!(p, Price::from_int(-3));
        // The same through a `serde_json::Value` (the checked parse route).
        let p: Price = serde_json::from_value(serde_json::json!(12.5)).unwrap();
        assert_eq!(p.raw(), 1_250_000_000);
        // Too large for the fixed point, as an integer and beyond i64 as a float.
        assert!(serde_json::from_str::<Price>("9223372036854775807").is_err());
        assert!(serde_json::from_str::<Price>("18446744073709551615").is_err());
        for wrong in ["true", "null", "[1]", "{}"] {
            let e = serde_json::from_str::<Price>(wrong)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("expected a decimal string or number"),
                "{wrong}: {e}"
            );
        }
    }
}
