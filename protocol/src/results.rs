//! REST bodies of `/api/sessions` (PROTOCOL.md section 6): a user's sessions, live or
//! finished, and the stored results of a finished one. Money is decimal strings, times
//! RFC 3339, as everywhere on the wire.

use model::{Amount, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};

use crate::session::{finite_or_null, EndReason, SimulationEndData, SimulationState};

/// `GET /api/sessions` 200 body: newest first, live sessions of the answering node
/// before finished ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionListResponse {
    /// One page of sessions.
    pub sessions: Vec<SessionEntry>,
    /// Sessions skipped (the request's `offset`).
    pub offset: u64,
    /// Most sessions this page could hold (the request's `limit`); fewer means the end.
    pub limit: u32,
}

/// A session as `/api/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The session.
    pub session_id: String,
    /// `ready`, `running` or `paused` while live; `completed` or `error` once finished.
    pub state: SimulationState,
    /// Symbols, in request order.
    pub symbols: Vec<String>,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// First bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub start_date: Timestamp,
    /// End of the range (exclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub end_date: Timestamp,
    /// Server wall-clock time of creation.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    /// Starting cash.
    pub initial_capital: Amount,
    /// When the run ended; absent while live.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    /// Why the run ended; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
    /// Equity after the last bar; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_equity: Option<Amount>,
    /// Total return in percent; absent while live or when undefined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_return_pct: Option<f64>,
    /// Closed round trips; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_trades: Option<u64>,
    /// Last tick produced; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<u64>,
    /// Bars in the run; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks_total: Option<u64>,
}

/// `GET /api/sessions/{id}` 200 body: the list entry plus the start request and, for a
/// finished session, its stored results; for a live one, its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// The fields of the list entry.
    #[serde(flatten)]
    pub session: SessionEntry,
    /// The `start_simulation` / `create_session` data as the server read it.
    pub params: serde_json::Value,
    /// Time of the last processed bar; live sessions only.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub sim_time: Option<Timestamp>,
    /// Share of the bars processed, 0 to 100; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_pct: Option<f64>,
    /// The `simulation_end` data; finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SimulationEndData>,
    /// Closed round trips in closing order; finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<Vec<TradeData>>,
    /// Sampled equity curve (at most 2048 points, first and last bar included);
    /// finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equity_curve: Option<Vec<EquityPoint>>,
    /// Equity with buy and hold and drawdown, monthly and yearly returns and per-trade
    /// returns as exact decimals; finished sessions stored since analytics exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<Analytics>,
}

/// A closed round trip: from flat back to flat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TradeData {
    /// Symbol.
    pub symbol: String,
    /// `long` or `short`.
    pub side: String,
    /// Largest absolute position held during the trade.
    pub quantity: i64,
    /// Time of the first fill.
    #[serde(with = "crate::time::rfc3339")]
    pub entry_time: Timestamp,
    /// Time of the closing fill.
    #[serde(with = "crate::time::rfc3339")]
    pub exit_time: Timestamp,
    /// Average entry price.
    pub entry_price: Price,
    /// Average exit price.
    pub exit_price: Price,
    /// Profit or loss net of commissions.
    pub pnl: Amount,
    /// Commissions paid.
    pub commission: Amount,
    /// PnL over entry notional, in percent.
    #[serde(with = "finite_or_null")]
    pub return_pct: f64,
}

/// One point of an equity curve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// Bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub time: Timestamp,
    /// Equity after that bar.
    pub equity: Amount,
}

/// Results analytics of a finished run, computed once by the engine from its exact
/// fixed-point amounts; see the README's "Results analytics" for every definition.
/// Percentages are [`Percent`] (four decimals, rounded half away from zero), money is
/// [`Amount`] (eight decimals at most, printed with at least two).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analytics {
    /// The equity curve with buy and hold and drawdown: the same points, in the same
    /// order, as the session's `equity_curve`.
    pub curve: Vec<AnalyticsPoint>,
    /// One entry per calendar month (UTC) that had bars, in time order.
    pub monthly_returns: Vec<PeriodReturn>,
    /// One entry per calendar year (UTC) that had bars, in time order.
    pub yearly_returns: Vec<PeriodReturn>,
    /// Each closed round trip's PnL net of commissions over its entry notional, in
    /// percent, in the order of `trades`.
    pub trade_returns_pct: Vec<Percent>,
}

/// One point of [`Analytics::curve`]. A point stands for the bars from its own bar up
/// to, not including, the next point's bar (the last point only for its own bar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsPoint {
    /// Time of the point's own bar.
    #[serde(with = "crate::time::rfc3339")]
    pub time: Timestamp,
    /// Equity after the point's own bar (exactly the `equity_curve` value).
    pub equity: Amount,
    /// Value after the point's own bar of the initial capital split equally across the
    /// symbols and bought at each symbol's first close of the run.
    pub buy_and_hold: Amount,
    /// Deepest drawdown below the running peak among the bars the point stands for, in
    /// percent (0 at a new peak).
    pub drawdown_pct: Percent,
}

/// Return over one calendar period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodReturn {
    /// `YYYY-MM` for a month, `YYYY` for a year (UTC).
    pub period: String,
    /// Equity at the period's last bar over the previous listed period's end equity
    /// (the initial capital for the first), minus 1, in percent.
    pub return_pct: Percent,
    /// Equity after the period's last bar.
    pub end_equity: Amount,
}

/// A percentage as an exact decimal with four places, held as ten-thousandths of a
/// percent; on the wire a string with exactly four decimals (`"-1.2345"`, `"0.0000"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(i128);

impl Percent {
    /// Decimal places kept.
    pub const PLACES: u32 = 4;
    /// Ten-thousandths in one percent.
    pub const SCALE: i128 = 10_000;
    /// Zero percent.
    pub const ZERO: Percent = Percent(0);

    /// From ten-thousandths of a percent.
    pub const fn from_raw(raw: i128) -> Self {
        Percent(raw)
    }

    /// Ten-thousandths of a percent.
    pub const fn raw(self) -> i128 {
        self.0
    }

    /// The nearest `f64`, for comparisons with float metrics.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        let scale = Self::SCALE.unsigned_abs();
        write!(f, "{sign}{}.{:04}", abs / scale, abs % scale)
    }
}

/// Text that is not a [`Percent`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a percentage with at most 4 decimal places")]
pub struct PercentError(pub String);

impl std::str::FromStr for Percent {
    type Err = PercentError;

    /// `-?digits(.digits)?` with at most four decimals.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PercentError(s.to_string());
        let (negative, unsigned) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > Self::PLACES as usize
            || (unsigned.contains('.') && fraction.is_empty())
        {
            return Err(bad());
        }
        let mut raw: i128 = 0;
        let padded = fraction.bytes().chain(std::iter::repeat(b'0')).take(4);
        for b in whole.bytes().chain(padded) {
            raw = raw
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(b - b'0')))
                .ok_or_else(bad)?;
        }
        Ok(Percent(if negative { -raw } else { raw }))
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            i128::deserialize(d).map(Percent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_print_four_places_and_parse_back() {
        for (raw, text) in [
            (0, "0.0000"),
            (12_345, "1.2345"),
            (-12_345, "-1.2345"),
            (-5, "-0.0005"),
            (1_000_000, "100.0000"),
        ] {
            assert_eq!(Percent::from_raw(raw).to_string(), text);
            assert_eq!(text.parse::<Percent>(), Ok(Percent::from_raw(raw)));
        }
        assert_eq!("12.5".parse::<Percent>(), Ok(Percent::from_raw(125_000)));
        assert_eq!("-3".parse::<Percent>(), Ok(Percent::from_raw(-30_000)));
        for bad in [
            "", "-", "1.", ".5", "1.23456", "1e3", "+1", "1,5", " 1", "--1",
        ] {
            assert!(bad.parse::<Percent>().is_err(), "{bad}");
        }
    }

    #[test]
    fn analytics_wire_shape() {
        let a = Analytics {
            curve: vec![AnalyticsPoint {
                time: 1_262_563_200,
                equity: "101234.5".parse().unwrap(),
                buy_and_hold: "100987.12".parse().unwrap(),
                drawdown_pct: Percent::from_raw(12_345),
            }],
            monthly_returns: vec![PeriodReturn {
                period: "2010-01".into(),
                return_pct: Percent::from_raw(-12_345),
                end_equity: "98765.43".parse().unwrap(),
            }],
            yearly_returns: vec![PeriodReturn {
                period: "2010".into(),
                return_pct: Percent::from_raw(120_000),
                end_equity: "112000".parse().unwrap(),
            }],
            trade_returns_pct: vec![Percent::from_raw(12_345), Percent::from_raw(-5_000)],
        };
        let value = serde_json::to_value(&a).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "curve": [{"time": "2010-01-04T00:00:00Z", "equity": "101234.50",
                           "buy_and_hold": "100987.12", "drawdown_pct": "1.2345"}],
                "monthly_returns": [{"period": "2010-01", "return_pct": "-1.2345",
                                     "end_equity": "98765.43"}],
                "yearly_returns": [{"period": "2010", "return_pct": "12.0000",
                                    "end_equity": "112000.00"}],
                "trade_returns_pct": ["1.2345", "-0.5000"]
            })
        );
        assert_eq!(serde_json::from_value::<Analytics>(value).unwrap(), a);
        let bad = serde_json::json!({"curve": [], "monthly_returns": [], "yearly_returns": [],
                                     "trade_returns_pct": [1.5]});
        assert!(serde_json::from_value::<Analytics>(bad).is_err());
    }
}
