//! Results analytics in exact decimals: buy and hold and drawdown along the equity
//! curve, calendar-month and calendar-year returns, per-trade returns. Integer
//! arithmetic on the fixed-point amounts only, never `f64`; the result is the wire type
//! [`Analytics`].
//!
//! Definitions (`E_t` is equity after bar t, `E_0` the initial capital):
//! - Rounding: every division below rounds half away from zero, money to the 8
//!   decimals of [`Amount`], percentages to the 4 decimals of [`Percent`].
//! - Buy and hold: the initial capital is split equally across the session's symbols
//!   (in raw units of 10^-8; the first `E_0 mod n` symbols get one unit more, so the
//!   parts add up exactly). A symbol's part stays cash until its first bar of the run
//!   and is then worth `part x last close / first close` (rounded per symbol); the
//!   value is the sum of the parts at the latest closes. Its return at the last bar is
//!   `buy_and_hold_return_pct`, to rounding (a symbol without a bar counts 0% there).
//! - Drawdown of bar t: `(peak_t - E_t) / peak_t x 100`, where `peak_t` is the largest
//!   of `E_0` and every `E_s`, `s <= t`: every bar, not only the sampled ones. A curve
//!   point stands for the bars from its own bar up to, not including, the next point's
//!   bar; it keeps its own bar's equity and buy-and-hold value but the deepest drawdown
//!   of the bars it stands for, so thinning never hides the worst one and the largest
//!   `drawdown_pct` of the curve is `max_drawdown_pct` rounded to 4 decimals.
//! - Period returns: a calendar month or year (UTC, of bar times) ends at its last
//!   bar; `return_pct = (end_equity / previous end_equity - 1) x 100`, the previous end
//!   being the last listed period's (the initial capital for the first period). A
//!   period without bars is not listed; equity cannot change without a bar, so the
//!   returns still compound to the total return. Undefined (0) over a base that is not
//!   positive.
//! - Trade return: `pnl / entry notional x 100` (PnL net of commissions, entry notional
//!   the sum of the entry fills' |quantity x price|), 0 without an entry notional.
//!
//! Memory: the curve is bounded ([`EquityCurve`](crate::metrics::EquityCurve)), the
//! period list grows with the months of the run, nothing else grows with bars.

use std::cmp::Ordering;

use model::{Amount, Price, Timestamp};
use protocol::{Analytics, Percent, PeriodReturn};
use serde::{Deserialize, Serialize};

/// `a x b / c` rounded half away from zero, for `c != 0`; saturates at the `i128`
/// limits when the quotient does not fit. Exact wherever `|b|` and `|c|` are below
/// 2^64 (any price, and any amount of a realistic account).
pub fn mul_div_round(a: i128, b: i128, c: i128) -> i128 {
    if c == 0 {
        return 0;
    }
    let negative = (a < 0) != (b < 0) && a != 0 && b != 0;
    let negative = negative != (c < 0);
    let (a, b, c) = (a.unsigned_abs(), b.unsigned_abs(), c.unsigned_abs());
    let magnitude = (|| {
        let (q, r) = (a / c, a % c);
        let whole = q.checked_mul(b)?;
        let rb = r.checked_mul(b)?;
        let (q2, r2) = (rb / c, rb % c);
        let rounded = q2 + u128::from(r2 >= c - r2);
        whole.checked_add(rounded)
    })();
    match (magnitude.and_then(|m| i128::try_from(m).ok()), negative) {
        (Some(m), true) => -m,
        (Some(m), false) => m,
        (None, true) => i128::MIN,
        (None, false) => i128::MAX,
    }
}

/// `num / den x 100` as a [`Percent`] (4 decimals, half away from zero); zero when
/// `den` is not positive (a return over nothing is undefined).
pub fn percent_of(num: Amount, den: Amount) -> Percent {
    if !den.is_positive() {
        return Percent::ZERO;
    }
    Percent::from_raw(mul_div_round(num.raw(), 100 * Percent::SCALE, den.raw()))
}

/// Compares `a x b` with `c x d` exactly, for any `i128` values.
#[inline]
fn cmp_products(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    // Every realistic amount fits 64 bits, where the products cannot overflow and cost
    // one widening multiplication each: this runs on every bar below a peak.
    if let (Ok(a), Ok(b), Ok(c), Ok(d)) = (
        i64::try_from(a),
        i64::try_from(b),
        i64::try_from(c),
        i64::try_from(d),
    ) {
        return (i128::from(a) * i128::from(b)).cmp(&(i128::from(c) * i128::from(d)));
    }
    cmp_products_wide(a, b, c, d)
}

/// [`cmp_products`] beyond 64-bit factors.
#[cold]
fn cmp_products_wide(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    if let (Some(x), Some(y)) = (a.checked_mul(b), c.checked_mul(d)) {
        return x.cmp(&y);
    }
    let sign = |x: i128, y: i128| {
        if x == 0 || y == 0 {
            0
        } else if (x < 0) == (y < 0) {
            1
        } else {
            -1
        }
    };
    let (sx, sy) = (sign(a, b), sign(c, d));
    if sx != sy || sx == 0 {
        return sx.cmp(&sy);
    }
    let x = wide_mul(a.unsigned_abs(), b.unsigned_abs());
    let y = wide_mul(c.unsigned_abs(), d.unsigned_abs());
    if sx > 0 {
        x.cmp(&y)
    } else {
        y.cmp(&x)
    }
}

/// The 256-bit product of two `u128` as (high, low) halves.
fn wide_mul(a: u128, b: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & LOW);
    let (b1, b0) = (b >> 64, b & LOW);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let mid = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    let low = (p00 & LOW) | (mid << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (high, low)
}

/// A bar's equity with the running peak at that bar: its drawdown, kept as the exact
/// pair so that comparing two drawdowns needs no division.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drawdown {
    /// Largest equity so far, the initial capital included (always positive).
    pub peak: Amount,
    /// Equity after the bar.
    pub equity: Amount,
}

impl Drawdown {
    /// True when `self` lies deeper below its peak than `other` does below its own:
    /// `equity / peak` is smaller.
    #[inline]
    pub fn is_deeper_than(&self, other: &Drawdown) -> bool {
        if self.equity >= self.peak {
            return false;
        }
        // Bars between two new highs share their peak: the lower equity is deeper.
        if self.peak == other.peak {
            return self.equity < other.equity;
        }
        cmp_products(
            self.equity.raw(),
            other.peak.raw(),
            other.equity.raw(),
            self.peak.raw(),
        ) == Ordering::Less
    }

    /// The deeper of `self` and `other` (`self` on a tie).
    #[inline]
    pub fn deepest(self, other: Drawdown) -> Drawdown {
        if other.is_deeper_than(&self) {
            other
        } else {
            self
        }
    }

    /// `(peak - equity) / peak x 100`, 4 decimals; 0 for a peak that is not positive.
    pub fn pct(&self) -> Percent {
        percent_of(self.peak - self.equity, self.peak)
    }
}

/// Buy-and-hold value: `initial` split equally across the symbols, each part bought at
/// the symbol's first close and marked at its last close, or kept as cash while the
/// symbol has no bar (or no positive first close).
pub fn buy_and_hold(initial: Amount, first: &[Option<Price>], last: &[Option<Price>]) -> Amount {
    let n = first.len().min(last.len());
    if n == 0 {
        return initial;
    }
    let n_units = n as i128;
    let (share, extra) = (initial.raw() / n_units, initial.raw() % n_units);
    let mut total: i128 = 0;
    for (i, (f, l)) in first.iter().zip(last).enumerate() {
        let part = share + i128::from((i as i128) < extra);
        let value = match (f, l) {
            (Some(f), Some(l)) if f.raw() > 0 => {
                mul_div_round(part, i128::from(l.raw()), i128::from(f.raw()))
            }
            _ => part,
        };
        total = total.saturating_add(value);
    }
    Amount::from_raw(total)
}

/// One calendar month of the run that has ended, with the equity after its last bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct MonthEnd {
    /// Months since year 0: `year x 12 + month - 1`.
    month: i64,
    /// Equity after the month's last bar.
    equity: Amount,
}

/// What the analytics need besides the curve and the trades, accumulated bar by bar:
/// the running peak and the ends of calendar months. Part of the engine's snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodAccumulator {
    /// Largest equity so far, starting at the initial capital.
    peak: Amount,
    /// Equity after the latest bar.
    last_equity: Amount,
    /// The month of the latest bar (`year x 12 + month - 1`), if any bar.
    month: Option<i64>,
    /// Start of the month after `month`: bars before it belong to `month` (bars come in
    /// increasing time); the smallest time before the first bar.
    month_end: Timestamp,
    /// Months that have ended, in time order.
    closed: Vec<MonthEnd>,
}

impl PeriodAccumulator {
    /// Before the first bar of a run starting with `initial` capital.
    pub fn new(initial: Amount) -> Self {
        PeriodAccumulator {
            peak: initial,
            last_equity: initial,
            month: None,
            month_end: Timestamp::MIN,
            closed: Vec::new(),
        }
    }

    /// Records equity after the bar at `ts` and returns that bar's drawdown.
    #[inline]
    pub fn observe(&mut self, ts: Timestamp, equity: Amount) -> Drawdown {
        if ts >= self.month_end {
            self.enter_month(ts);
        }
        self.last_equity = equity;
        if equity > self.peak {
            self.peak = equity;
        }
        Drawdown {
            peak: self.peak,
            equity,
        }
    }

    /// The latest bar's drawdown (none before the first bar).
    pub fn drawdown(&self) -> Drawdown {
        Drawdown {
            peak: self.peak,
            equity: self.last_equity,
        }
    }

    /// A bar of another month: the current month, if any, has ended.
    #[cold]
    fn enter_month(&mut self, ts: Timestamp) {
        if let Some(month) = self.month {
            self.closed.push(MonthEnd {
                month,
                equity: self.last_equity,
            });
        }
        let (y, m, _) = civil_from_days(ts.div_euclid(86_400));
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        self.month = Some(y * 12 + m - 1);
        self.month_end = days_from_civil(ny, nm, 1).saturating_mul(86_400);
    }

    /// False for a deserialized accumulator that would misbehave.
    pub fn is_valid(&self) -> bool {
        self.peak.is_positive()
            && self.closed.windows(2).all(|w| w[0].month < w[1].month)
            && match self.month {
                Some(m) => self.closed.last().is_none_or(|c| c.month < m),
                None => self.closed.is_empty(),
            }
    }

    /// Monthly and yearly returns of the bars so far, starting from `initial`.
    pub fn returns(&self, initial: Amount) -> (Vec<PeriodReturn>, Vec<PeriodReturn>) {
        let months: Vec<MonthEnd> = self
            .closed
            .iter()
            .copied()
            .chain(self.month.map(|month| MonthEnd {
                month,
                equity: self.last_equity,
            }))
            .collect();
        let mut monthly = Vec::with_capacity(months.len());
        let mut yearly: Vec<PeriodReturn> = Vec::new();
        let mut prev_month_end = initial;
        let mut prev_year_end = initial;
        for (i, m) in months.iter().enumerate() {
            let (year, month) = (m.month.div_euclid(12), m.month.rem_euclid(12) + 1);
            monthly.push(PeriodReturn {
                period: format!("{year:04}-{month:02}"),
                return_pct: percent_of(m.equity - prev_month_end, prev_month_end),
                end_equity: m.equity,
            });
            prev_month_end = m.equity;
            let year_ends = months
                .get(i + 1)
                .is_none_or(|next| next.month.div_euclid(12) != year);
            if year_ends {
                yearly.push(PeriodReturn {
                    period: format!("{year:04}"),
                    return_pct: percent_of(m.equity - prev_year_end, prev_year_end),
                    end_equity: m.equity,
                });
                prev_year_end = m.equity;
            }
        }
        (monthly, yearly)
    }
}

/// (year, month, day) of a count of days since 1970-01-01, proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The analytics of a run from its parts (see the module docs).
pub(crate) fn build(
    curve: Vec<protocol::AnalyticsPoint>,
    periods: &PeriodAccumulator,
    initial: Amount,
    trades: impl Iterator<Item = (Amount, Amount)>,
) -> Analytics {
    let (monthly_returns, yearly_returns) = periods.returns(initial);
    Analytics {
        curve,
        monthly_returns,
        yearly_returns,
        trade_returns_pct: trades
            .map(|(pnl, entry_notional)| percent_of(pnl, entry_notional))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    /// Unix time of a UTC date at noon.
    fn day(y: i64, m: i64, d: i64) -> Timestamp {
        days_from_civil(y, m, d) * 86_400 + 43_200
    }

    #[test]
    fn rounding_is_half_away_from_zero_both_signs() {
        assert_eq!(mul_div_round(5, 1, 2), 3);
        assert_eq!(mul_div_round(-5, 1, 2), -3);
        assert_eq!(mul_div_round(5, -1, 2), -3);
        assert_eq!(mul_div_round(-5, -1, -2), -3);
        assert_eq!(mul_div_round(7, 1, 3), 2);
        assert_eq!(mul_div_round(-7, 1, 3), -2);
        assert_eq!(mul_div_round(-8, 1, 3), -3);
        assert_eq!(mul_div_round(0, 7, 3), 0);
        assert_eq!(mul_div_round(i128::MAX, 3, 1), i128::MAX);
        assert_eq!(mul_div_round(i128::MIN + 1, 3, 1), i128::MIN);
        // Exact where a x b overflows but the quotient fits.
        let big = i128::MAX / 3;
        assert_eq!(mul_div_round(big, 9, 9), big);
        // -1/3 % = -0.3333...; -2/3 % = -0.6666... -> -0.6667; -1/8 % = -0.125 ->
        // exactly -0.1250; -1/80000 % = -0.0000125 -> -0.0000; -1/20000 % -> -0.0050.
        assert_eq!(percent_of(a("-1"), a("3")).to_string(), "-33.3333");
        assert_eq!(percent_of(a("-2"), a("3")).to_string(), "-66.6667");
        assert_eq!(percent_of(a("-1"), a("8")).to_string(), "-12.5000");
        assert_eq!(
            percent_of(a("-0.00000125"), a("0.1")).to_string(),
            "-0.0013"
        );
        assert_eq!(
            percent_of(a("-0.00000124"), a("0.1")).to_string(),
            "-0.0012"
        );
        assert_eq!(percent_of(a("-0.0000005"), a("1")).to_string(), "-0.0001");
        assert_eq!(percent_of(a("-0.00000049"), a("1")).to_string(), "0.0000");
        assert_eq!(percent_of(a("1"), Amount::ZERO), Percent::ZERO);
        assert_eq!(percent_of(a("1"), a("-5")), Percent::ZERO);
    }

    #[test]
    fn wide_comparisons_are_exact() {
        let big = i128::MAX / 2;
        assert_eq!(cmp_products(big, 4, big - 1, 4), Ordering::Greater);
        assert_eq!(cmp_products(-big, 4, -(big - 1), 4), Ordering::Less);
        assert_eq!(cmp_products(-big, 4, 1, 1), Ordering::Less);
        assert_eq!(cmp_products(big, 6, big / 2 * 2, 6), Ordering::Greater);
        assert_eq!(cmp_products(big, 6, 3, big * 2), Ordering::Equal);
        assert_eq!(wide_mul(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        let dd = |peak: &str, equity: &str| Drawdown {
            peak: a(peak),
            equity: a(equity),
        };
        // 10% below 100 is deeper than 9.9% below 1000; a bar at its peak never is.
        assert!(dd("100", "90").is_deeper_than(&dd("1000", "901")));
        assert!(!dd("1000", "901").is_deeper_than(&dd("100", "90")));
        assert!(!dd("100", "90").is_deeper_than(&dd("1000", "900")), "a tie");
        assert!(!dd("100", "100").is_deeper_than(&dd("100", "100")));
        assert!(dd("100", "-5").is_deeper_than(&dd("100", "0")));
        assert_eq!(dd("100", "-5").pct().to_string(), "105.0000");
        // Peaks near the i128 limits compare exactly too.
        let huge = Amount::from_raw(i128::MAX / 4);
        let d1 = Drawdown {
            peak: huge,
            equity: Amount::from_raw(huge.raw() - 2),
        };
        let d2 = Drawdown {
            peak: huge,
            equity: Amount::from_raw(huge.raw() - 1),
        };
        assert!(d1.is_deeper_than(&d2) && !d2.is_deeper_than(&d1));
    }

    #[test]
    fn buy_and_hold_splits_exactly_and_keeps_cash_until_the_first_bar() {
        // 100 over two symbols: 50 each. A bought at 10 and now 12: 60; B no bar: 50.
        let first = [Some(p("10")), None];
        let last = [Some(p("12")), None];
        assert_eq!(buy_and_hold(a("100"), &first, &last), a("110"));
        // B's first bar at 4, now 3: 37.5. Total 97.5.
        let first = [Some(p("10")), Some(p("4"))];
        let last = [Some(p("12")), Some(p("3"))];
        assert_eq!(buy_and_hold(a("100"), &first, &last), a("97.5"));
        // 1 raw unit over three: 1 + 0 + 0 units, exactly the capital while flat.
        let first = [Some(p("3")), Some(p("3")), Some(p("3"))];
        assert_eq!(
            buy_and_hold(Amount::from_raw(1), &first, &first),
            Amount::from_raw(1)
        );
        // 100 over three: 33.33333334 + 33.33333333 + 33.33333333; the first at 3 -> 2
        // is worth 22.222222226666... -> 22.22222223 (half away from zero per symbol).
        let first = [Some(p("3")), None, None];
        let last = [Some(p("2")), None, None];
        assert_eq!(
            buy_and_hold(a("100"), &first, &last),
            a("22.22222223") + a("33.33333333") + a("33.33333333")
        );
    }

    #[test]
    fn calendar_conversions_agree() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 18_262, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(18_262), (2020, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn months_and_years_from_bar_times() {
        // Starts mid-January 2010; no bar in March; crosses into 2011.
        let mut acc = PeriodAccumulator::new(a("1000"));
        let bars = [
            (day(2010, 1, 15), "1010"),
            (day(2010, 1, 31) + 43_199, "1100"), // 23:59:59 UTC, still January
            (day(2010, 2, 1) - 43_200, "990"),   // 00:00:00 UTC 1 February
            (day(2010, 2, 26), "880"),
            (day(2010, 4, 1), "968"),
            (day(2010, 12, 31), "1210"),
            (day(2011, 1, 3), "1089"),
        ];
        for (ts, e) in bars {
            acc.observe(ts, a(e));
        }
        assert!(acc.is_valid());
        let (monthly, yearly) = acc.returns(a("1000"));
        let rows = |v: &[PeriodReturn]| {
            v.iter()
                .map(|r| {
                    (
                        r.period.clone(),
                        r.return_pct.to_string(),
                        r.end_equity.to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let row = |p: &str, r: &str, e: &str| (p.to_string(), r.to_string(), e.to_string());
        assert_eq!(
            rows(&monthly),
            [
                row("2010-01", "10.0000", "1100.00"),
                row("2010-02", "-20.0000", "880.00"),
                // March had no bar; April over February's end.
                row("2010-04", "10.0000", "968.00"),
                row("2010-12", "25.0000", "1210.00"),
                row("2011-01", "-10.0000", "1089.00"),
            ]
        );
        assert_eq!(
            rows(&yearly),
            [
                row("2010", "21.0000", "1210.00"),
                row("2011", "-10.0000", "1089.00"),
            ]
        );
        // Nothing before the first bar.
        assert_eq!(
            PeriodAccumulator::new(a("1")).returns(a("1")),
            (vec![], vec![])
        );
    }

    #[test]
    fn the_peak_counts_the_initial_capital_and_every_bar() {
        let mut acc = PeriodAccumulator::new(a("100"));
        let d = acc.observe(day(2020, 1, 1), a("95"));
        assert_eq!((d.peak, d.pct().to_string()), (a("100"), "5.0000".into()));
        acc.observe(day(2020, 1, 2), a("120"));
        let d = acc.observe(day(2020, 1, 3), a("90"));
        assert_eq!(d.pct().to_string(), "25.0000");
        let d = acc.observe(day(2020, 1, 4), a("-30"));
        assert_eq!(d.pct().to_string(), "125.0000");
    }
}
