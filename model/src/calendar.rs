//! Trading calendars inferred from the symbol: when a market trades, which session a bar
//! belongs to and which trading day it counts for.
//!
//! - FX (six letters, two ISO 4217 codes, e.g. `EURUSD`) and crypto (a known base such as
//!   `BTC` quoted in USD/USDT/USDC/EUR) trade 24 hours: every bar is regular and the
//!   trading day is the UTC date.
//! - Anything else is a US equity: pre-market 04:00-09:30, regular 09:30-16:00 and
//!   after-hours 16:00-20:00 America/New_York (DST-aware); the trading day is the New York
//!   date.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::America::New_York;

use crate::candle::Timestamp;
use crate::slice::MarketSession;
use crate::timeframe::Timeframe;

/// ISO 4217 codes (plus gold and silver, which trade like FX) recognised in FX pairs.
const CURRENCIES: &[&str] = &[
    "USD", "EUR", "JPY", "GBP", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "HKD", "SGD",
    "CNH", "CNY", "MXN", "ZAR", "TRY", "PLN", "HUF", "CZK", "ILS", "INR", "KRW", "RUB", "BRL",
    "THB", "TWD", "IDR", "MYR", "PHP", "SAR", "AED", "XAU", "XAG",
];

/// Crypto bases recognised in crypto pairs.
const CRYPTO_BASES: &[&str] = &[
    "BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "BCH", "DOT", "AVAX", "LINK", "MATIC", "BNB",
    "TRX", "XLM", "ATOM", "UNI", "ETC", "SHIB", "XMR", "ALGO", "NEAR", "APT", "ARB", "OP", "FIL",
    "AAVE", "PEPE", "TON", "SUI",
];

/// Quote currencies of crypto pairs.
const CRYPTO_QUOTES: &[&str] = &["USD", "USDT", "USDC", "EUR"];

/// Regular session open and close in minutes after New York midnight. Pre-market is
/// 04:00 to the open and after-hours the close to 20:00; overnight bars count as
/// after-hours until New York midnight and as pre-market after it.
const REGULAR_OPEN: i64 = 9 * 60 + 30;
const REGULAR_CLOSE: i64 = 16 * 60;
const EXTENDED_OPEN: i64 = 4 * 60;
const EXTENDED_CLOSE: i64 = 20 * 60;

/// A market's trading calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// US equities (NYSE/Nasdaq hours, America/New_York).
    UsEquity,
    /// Foreign exchange, 24 hours.
    Fx,
    /// Crypto, 24 hours.
    Crypto,
}

impl Calendar {
    /// The calendar of a symbol; separators in pairs (`EUR/USD`, `BTC-USD`) are ignored.
    pub fn for_symbol(symbol: &str) -> Calendar {
        let s: String = symbol
            .chars()
            .filter(|c| !matches!(c, '/' | '-' | '_'))
            .collect();
        let is_crypto = CRYPTO_QUOTES.iter().any(|q| {
            s.strip_suffix(q)
                .is_some_and(|base| CRYPTO_BASES.contains(&base))
        });
        if is_crypto {
            Calendar::Crypto
        } else if s.len() == 6
            && s.is_ascii()
            && CURRENCIES.contains(&&s[..3])
            && CURRENCIES.contains(&&s[3..])
        {
            Calendar::Fx
        } else {
            Calendar::UsEquity
        }
    }

    /// True for markets that trade around the clock.
    pub fn is_24h(self) -> bool {
        !matches!(self, Calendar::UsEquity)
    }

    /// The session of a bar opening at `ts`. Daily bars and 24-hour markets are always
    /// regular. An intraday equity bar that overlaps the regular session at all is
    /// regular (so a 1h bar 09:00-10:00 New York, which holds the opening auction, is),
    /// otherwise it is pre-market if it starts before the open (overnight bars after
    /// midnight included) and after-hours if it starts after the close.
    pub fn session(self, ts: Timestamp, timeframe: Timeframe) -> MarketSession {
        LocalClock::default().session(self, ts, timeframe)
    }

    /// The trading day of a bar opening at `ts`, as days since 1970-01-01: the New York
    /// date for equities, the UTC date for 24-hour markets.
    pub fn trading_day(self, ts: Timestamp) -> i64 {
        LocalClock::default().trading_day(self, ts)
    }
}

/// New York local time with the UTC offset cached per UTC hour: offsets only change on
/// whole UTC hours, and looking them up per bar dominates building large slices.
#[derive(Default)]
pub struct LocalClock {
    hour: Option<i64>,
    offset: i64,
}

impl LocalClock {
    /// Seconds since the epoch shifted to New York wall-clock time.
    fn new_york(&mut self, ts: Timestamp) -> i64 {
        let hour = ts.div_euclid(3600);
        if self.hour != Some(hour) {
            self.offset = DateTime::from_timestamp(ts, 0)
                .map(|dt| {
                    i64::from(
                        New_York
                            .offset_from_utc_datetime(&dt.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                })
                // Beyond chrono's range: standard time is as good a guess as any.
                .unwrap_or(-5 * 3600);
            self.hour = Some(hour);
        }
        ts + self.offset
    }

    /// See [`Calendar::session`].
    pub fn session(
        &mut self,
        calendar: Calendar,
        ts: Timestamp,
        timeframe: Timeframe,
    ) -> MarketSession {
        if calendar.is_24h() || timeframe == Timeframe::Daily {
            return MarketSession::Regular;
        }
        let minute = self.new_york(ts).rem_euclid(86_400) / 60;
        let end = minute + timeframe.seconds() / 60;
        if minute < REGULAR_CLOSE && end > REGULAR_OPEN {
            MarketSession::Regular
        } else if minute < REGULAR_OPEN {
            MarketSession::PreMarket
        } else {
            MarketSession::AfterHours
        }
    }

    /// True when an intraday equity bar opening at `ts` overlaps the extended session
    /// (04:00-20:00 New York); daily bars and 24-hour markets always do.
    pub fn in_extended_hours(
        &mut self,
        calendar: Calendar,
        ts: Timestamp,
        timeframe: Timeframe,
    ) -> bool {
        if calendar.is_24h() || timeframe == Timeframe::Daily {
            return true;
        }
        let minute = self.new_york(ts).rem_euclid(86_400) / 60;
        minute < EXTENDED_CLOSE && minute + timeframe.seconds() / 60 > EXTENDED_OPEN
    }

    /// See [`Calendar::trading_day`].
    pub fn trading_day(&mut self, calendar: Calendar, ts: Timestamp) -> i64 {
        let local = if calendar.is_24h() {
            ts
        } else {
            self.new_york(ts)
        };
        local.div_euclid(86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::parse_timestamp;

    fn t(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn classifies_symbols() {
        assert_eq!(Calendar::for_symbol("EURUSD"), Calendar::Fx);
        assert_eq!(Calendar::for_symbol("EUR/USD"), Calendar::Fx);
        assert_eq!(Calendar::for_symbol("USDJPY"), Calendar::Fx);
        assert_eq!(Calendar::for_symbol("BTCUSD"), Calendar::Crypto);
        assert_eq!(Calendar::for_symbol("ETHUSDT"), Calendar::Crypto);
        assert_eq!(Calendar::for_symbol("SOL-EUR"), Calendar::Crypto);
        assert_eq!(Calendar::for_symbol("GOOG"), Calendar::UsEquity);
        assert_eq!(Calendar::for_symbol("BRK.B"), Calendar::UsEquity);
        // Six letters that are not two currency codes.
        assert_eq!(Calendar::for_symbol("GOOGLE"), Calendar::UsEquity);
        assert_eq!(Calendar::for_symbol("BTCJPY"), Calendar::UsEquity);
    }

    #[test]
    fn equity_sessions_follow_new_york_dst() {
        let eq = Calendar::UsEquity;
        // 2017-03-10 is EST (UTC-5), 2017-03-13 EDT (UTC-4).
        assert_eq!(
            eq.session(t("2017-03-10T14:30:00Z"), Timeframe::Min30),
            MarketSession::Regular
        ); // 09:30 EST
        assert_eq!(
            eq.session(t("2017-03-10T14:00:00Z"), Timeframe::Min30),
            MarketSession::PreMarket
        ); // 09:00 EST
        assert_eq!(
            eq.session(t("2017-03-13T13:30:00Z"), Timeframe::Min30),
            MarketSession::Regular
        ); // 09:30 EDT
        assert_eq!(
            eq.session(t("2017-03-13T20:00:00Z"), Timeframe::Min30),
            MarketSession::AfterHours
        ); // 16:00 EDT
        assert_eq!(
            eq.session(t("2017-03-10T20:30:00Z"), Timeframe::Min30),
            MarketSession::Regular
        ); // 15:30 EST
        assert_eq!(
            eq.session(t("2017-03-10T09:00:00Z"), Timeframe::Min30),
            MarketSession::PreMarket
        ); // 04:00 EST
           // 1h bar 09:00-10:00 EDT overlaps the open.
        assert_eq!(
            eq.session(t("2017-03-13T13:00:00Z"), Timeframe::H1),
            MarketSession::Regular
        );
        assert_eq!(
            eq.session(t("2017-03-13T02:00:00Z"), Timeframe::H1),
            MarketSession::AfterHours
        ); // 22:00 EDT
        assert_eq!(
            eq.session(t("2017-03-13T06:00:00Z"), Timeframe::H1),
            MarketSession::PreMarket
        ); // 02:00 EDT
        assert_eq!(
            eq.session(t("2017-03-13T20:00:00Z"), Timeframe::Daily),
            MarketSession::Regular
        );
        assert_eq!(
            Calendar::Fx.session(t("2017-03-13T02:00:00Z"), Timeframe::H1),
            MarketSession::Regular
        );
    }

    #[test]
    fn trading_days() {
        // 01:00 UTC on the 14th is still the 13th in New York.
        let ts = t("2017-03-14T01:00:00Z");
        assert_eq!(
            Calendar::UsEquity.trading_day(ts),
            Calendar::Fx.trading_day(ts) - 1
        );
        assert_eq!(Calendar::Crypto.trading_day(ts), ts / 86_400);
    }
}
