//! Round trips rebuilt from `execution_report`s: a trade opens when a symbol's position
//! leaves flat and closes when it is flat again (PROTOCOL.md: "a trade is a round trip
//! from flat back to flat"). The bookkeeping is the engine's own
//! ([`protocol::round_trips`]), in exact decimals, so the trades match the ones the
//! server counts in `total_trades`.

use std::collections::BTreeMap;

use model::{Amount, Price, Timestamp};
use protocol::round_trips::{self, Fill, OpenTrade, RoundTrip};
use protocol::{format_wire_time, ExecutionReportData, Side};
use serde::{Serialize, Serializer};

pub use protocol::round_trips::TradeSide;

fn wire_time<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_wire_time(*ts))
}

/// A closed round trip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trade {
    /// Symbol.
    pub symbol: String,
    /// Long or short.
    pub side: TradeSide,
    /// Largest absolute position held during the trade.
    pub quantity: i64,
    /// Simulated time of the first fill.
    #[serde(serialize_with = "wire_time")]
    pub entry_time: Timestamp,
    /// Simulated time of the fill that made the position flat.
    #[serde(serialize_with = "wire_time")]
    pub exit_time: Timestamp,
    /// Average entry price (rounded down to 8 decimals).
    pub entry_price: Price,
    /// Average exit price (rounded down to 8 decimals).
    pub exit_price: Price,
    /// Profit and loss net of commissions.
    pub pnl: Amount,
    /// Commissions paid in the trade.
    pub commission: Amount,
    /// PnL over the entry notional, in percent.
    pub return_pct: f64,
}

impl Trade {
    fn new(symbol: &str, t: RoundTrip) -> Self {
        Trade {
            symbol: symbol.to_string(),
            side: t.side(),
            quantity: t.quantity,
            entry_time: t.entry_time,
            exit_time: t.exit_time,
            entry_price: t.entry_price,
            exit_price: t.exit_price,
            pnl: t.pnl,
            commission: t.commission,
            return_pct: t.return_pct,
        }
    }
}

/// One symbol's signed position, its cost basis and the round trip in progress.
#[derive(Clone, Debug, Default)]
struct Book {
    quantity: i64,
    cost: Amount,
    trade: Option<OpenTrade>,
}

/// Positions and closed round trips, fed with fills in the order they arrive.
#[derive(Clone, Debug, Default)]
pub struct TradeBook {
    books: BTreeMap<String, Book>,
    closed: Vec<Trade>,
}

impl TradeBook {
    /// An empty book (every position flat).
    pub fn new() -> Self {
        Self::default()
    }

    /// Signed position in `symbol` (negative when short).
    pub fn position(&self, symbol: &str) -> i64 {
        self.books.get(symbol).map_or(0, |b| b.quantity)
    }

    /// Every non-flat position.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i64)> {
        self.books
            .iter()
            .filter(|(_, b)| b.quantity != 0)
            .map(|(s, b)| (s.as_str(), b.quantity))
    }

    /// Closed round trips, in closing order.
    pub fn trades(&self) -> &[Trade] {
        &self.closed
    }

    /// Takes the closed round trips out of the book.
    pub fn into_trades(self) -> Vec<Trade> {
        self.closed
    }

    /// Applies one fill; returns the round trip it closed, if any.
    pub fn apply(&mut self, fill: &ExecutionReportData) -> Option<&Trade> {
        let quantity = match fill.side {
            Side::Buy => fill.executed_quantity,
            Side::Sell => -fill.executed_quantity,
        };
        if quantity == 0 {
            return None;
        }
        let book = self.books.entry(fill.symbol.clone()).or_default();
        let effect = round_trips::apply_fill(
            &mut book.quantity,
            &mut book.cost,
            &mut book.trade,
            &Fill {
                quantity,
                price: fill.executed_price,
                commission: fill.commission,
                time: fill.timestamp,
            },
        );
        let closed = effect.closed?;
        self.closed.push(Trade::new(&fill.symbol, closed));
        self.closed.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{FillReason, FillStatus};

    fn fill(side: Side, qty: i64, price: &str, commission: i64, ts: i64) -> ExecutionReportData {
        ExecutionReportData {
            session_id: "s".into(),
            execution_id: format!("x{ts}"),
            order_id: format!("o{ts}"),
            symbol: "AAA".into(),
            side,
            executed_quantity: qty,
            executed_price: price.parse().unwrap(),
            commission: Amount::from_int(commission),
            slippage_bps: 0,
            timestamp: ts,
            order_status: FillStatus::Filled,
            leaves_quantity: 0,
            reason: FillReason::Entry,
        }
    }

    #[test]
    fn a_long_round_trip_with_scaling_in_and_out() {
        let mut b = TradeBook::new();
        assert!(b.apply(&fill(Side::Buy, 10, "100", 1, 1)).is_none());
        assert!(b.apply(&fill(Side::Buy, 10, "110", 1, 2)).is_none());
        assert!(b.apply(&fill(Side::Sell, 5, "120", 1, 3)).is_none());
        assert_eq!(b.position("AAA"), 15);
        let t = b.apply(&fill(Side::Sell, 15, "100", 0, 4)).unwrap().clone();
        assert_eq!(t.side, TradeSide::Long);
        assert_eq!((t.quantity, t.entry_time, t.exit_time), (20, 1, 4));
        assert_eq!(t.entry_price, "105".parse().unwrap());
        assert_eq!(t.exit_price, "105".parse().unwrap());
        // Bought 2100, sold 600 + 1500: flat before 3 of commission.
        assert_eq!(t.pnl, Amount::from_int(-3));
        assert_eq!(t.commission, Amount::from_int(3));
        assert_eq!(b.position("AAA"), 0);
    }

    #[test]
    fn a_flip_closes_one_trade_and_opens_the_other_way() {
        let mut b = TradeBook::new();
        b.apply(&fill(Side::Buy, 10, "100", 0, 1));
        let t = b.apply(&fill(Side::Sell, 15, "90", 2, 2)).unwrap().clone();
        assert_eq!(t.pnl, Amount::from_int(-102));
        assert_eq!(b.position("AAA"), -5);
        let t = b.apply(&fill(Side::Buy, 5, "80", 0, 3)).unwrap().clone();
        assert_eq!(t.side, TradeSide::Short);
        assert_eq!(t.pnl, Amount::from_int(50));
        assert!((t.return_pct - 50.0 / 450.0 * 100.0).abs() < 1e-9);
        assert_eq!(b.trades().len(), 2);
    }

    #[test]
    fn trades_serialise_with_wire_times_and_decimal_strings() {
        let mut b = TradeBook::new();
        b.apply(&fill(Side::Buy, 1, "10.5", 0, 86_400));
        b.apply(&fill(Side::Sell, 1, "11", 0, 2 * 86_400));
        let v = serde_json::to_value(&b.trades()[0]).unwrap();
        assert_eq!(v["entry_time"], "1970-01-02T00:00:00Z");
        assert_eq!(v["entry_price"], "10.50");
        assert_eq!(v["pnl"], "0.50");
        assert_eq!(v["side"], "long");
    }
}
