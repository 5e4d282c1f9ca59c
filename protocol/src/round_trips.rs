//! Round trips: a trade opens when a symbol's position leaves flat and closes when it is
//! flat again (PROTOCOL.md: "a trade is a round trip from flat back to flat").
//!
//! The engine counts these for `total_trades` and reports them in the results; a client
//! rebuilds them from its `execution_report`s. Both use this one implementation, in
//! exact decimals, so the two lists agree trade for trade. It works on plain fills
//! (signed quantity, price, commission, time) and a position the caller stores.

use model::{Amount, Price, Timestamp};
use serde::{Deserialize, Serialize};

use crate::results::TradeData;

/// Direction of a round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeSide {
    /// Bought first, sold to close.
    Long,
    /// Sold first, bought back to close.
    Short,
}

impl TradeSide {
    /// `long` or `short`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeSide::Long => "long",
            TradeSide::Short => "short",
        }
    }
}

/// One fill as the bookkeeping sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Signed quantity: positive for a buy, negative for a sell.
    pub quantity: i64,
    /// Price paid or received.
    pub price: Price,
    /// Commission of this fill.
    pub commission: Amount,
    /// Simulated time of the fill.
    pub time: Timestamp,
}

/// A round trip still open. The field order is part of the engine's snapshot format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTrade {
    /// Time of the first fill.
    pub entry_time: Timestamp,
    /// +1 long, -1 short.
    pub direction: i64,
    /// Sum of entry fill quantities.
    pub entry_quantity: i64,
    /// Sum of entry fill notionals.
    pub entry_notional: Amount,
    /// Sum of exit fill quantities.
    pub exit_quantity: i64,
    /// Sum of exit fill notionals.
    pub exit_notional: Amount,
    /// Realized PnL of the trade so far, net of commissions.
    pub pnl: Amount,
    /// Commissions paid in the trade.
    pub commission: Amount,
    /// Largest absolute position during the trade.
    pub max_quantity: i64,
}

impl OpenTrade {
    fn new(entry_time: Timestamp, direction: i64) -> Self {
        OpenTrade {
            entry_time,
            direction,
            entry_quantity: 0,
            entry_notional: Amount::ZERO,
            exit_quantity: 0,
            exit_notional: Amount::ZERO,
            pnl: Amount::ZERO,
            commission: Amount::ZERO,
            max_quantity: 0,
        }
    }

    fn close(self, exit_time: Timestamp) -> RoundTrip {
        let base = self.entry_notional.to_f64();
        RoundTrip {
            direction: self.direction,
            quantity: self.max_quantity,
            entry_time: self.entry_time,
            exit_time,
            entry_price: self.entry_notional.per_unit(self.entry_quantity),
            exit_price: self.exit_notional.per_unit(self.exit_quantity),
            pnl: self.pnl,
            commission: self.commission,
            return_pct: if base > 0.0 {
                self.pnl.to_f64() / base * 100.0
            } else {
                0.0
            },
        }
    }
}

/// A finished round trip (flat -> position -> flat), without its symbol, which the
/// caller keeps as it likes. The field order is part of the engine's snapshot format.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundTrip {
    /// +1 long, -1 short.
    pub direction: i64,
    /// Largest absolute position held.
    pub quantity: i64,
    /// Time of the first fill.
    pub entry_time: Timestamp,
    /// Time of the fill that made the position flat.
    pub exit_time: Timestamp,
    /// Average entry price (rounded down to 8 decimals).
    pub entry_price: Price,
    /// Average exit price (rounded down to 8 decimals).
    pub exit_price: Price,
    /// PnL net of commissions.
    pub pnl: Amount,
    /// Commissions paid.
    pub commission: Amount,
    /// `pnl / entry notional`, in percent.
    pub return_pct: f64,
}

impl RoundTrip {
    /// Long or short.
    pub fn side(&self) -> TradeSide {
        if self.direction > 0 {
            TradeSide::Long
        } else {
            TradeSide::Short
        }
    }

    /// The round trip as results carry it, under `symbol`.
    pub fn to_trade_data(&self, symbol: String) -> TradeData {
        TradeData {
            symbol,
            side: self.side().as_str().to_string(),
            quantity: self.quantity,
            entry_time: self.entry_time,
            exit_time: self.exit_time,
            entry_price: self.entry_price,
            exit_price: self.exit_price,
            pnl: self.pnl,
            commission: self.commission,
            return_pct: self.return_pct,
        }
    }
}

/// What one fill did to a position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillEffect {
    /// The fill opened or increased the position (an entry); otherwise it reduced,
    /// closed or flipped it.
    pub opening: bool,
    /// PnL realized on the quantity closed, before commission.
    pub realized: Amount,
    /// The round trip this fill completed, if it brought the position to flat.
    pub closed: Option<RoundTrip>,
}

/// Applies `fill` to one symbol's position: signed `quantity`, signed cost basis `cost`
/// (negative for shorts) and the round trip in progress. Cost leaves the position in
/// proportion to the quantity closed (rounded down); a fill that crosses flat closes
/// the trade and opens one the other way, and its whole commission belongs to the trade
/// it closes. A zero quantity changes nothing.
pub fn apply_fill(
    quantity: &mut i64,
    cost: &mut Amount,
    trade: &mut Option<OpenTrade>,
    fill: &Fill,
) -> FillEffect {
    let Fill {
        quantity: signed,
        price,
        commission,
        time,
    } = *fill;
    let mut effect = FillEffect {
        opening: false,
        realized: Amount::ZERO,
        closed: None,
    };
    if signed == 0 {
        return effect;
    }
    let notional = price.times(signed);
    if *quantity == 0 || quantity.signum() == signed.signum() {
        *cost += notional;
        *quantity += signed;
        let t = trade.get_or_insert_with(|| OpenTrade::new(time, signed.signum()));
        t.entry_quantity += signed.abs();
        t.entry_notional += notional.abs();
        t.pnl -= commission;
        t.commission += commission;
        t.max_quantity = t.max_quantity.max(quantity.abs());
        effect.opening = true;
        return effect;
    }
    let close_qty = signed.abs().min(quantity.abs());
    let closing = close_qty * signed.signum();
    let removed = cost.mul_div_floor(close_qty, quantity.abs());
    effect.realized = -price.times(closing) - removed;
    *cost -= removed;
    *quantity += closing;
    if let Some(t) = trade.as_mut() {
        t.exit_quantity += close_qty;
        t.exit_notional += price.times(close_qty);
        t.pnl += effect.realized - commission;
        t.commission += commission;
    }
    if *quantity == 0 {
        *cost = Amount::ZERO;
        effect.closed = trade.take().map(|t| t.close(time));
    }
    let rest = signed - closing;
    if rest != 0 {
        let opened = price.times(rest);
        *cost = opened;
        *quantity = rest;
        let mut t = OpenTrade::new(time, rest.signum());
        t.entry_quantity = rest.abs();
        t.entry_notional = opened.abs();
        t.max_quantity = rest.abs();
        *trade = Some(t);
    }
    effect
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One symbol's position, as a caller would store it.
    #[derive(Default)]
    struct Pos {
        quantity: i64,
        cost: Amount,
        trade: Option<OpenTrade>,
    }

    impl Pos {
        fn fill(&mut self, quantity: i64, price: &str, commission: &str, time: i64) -> FillEffect {
            let fill = Fill {
                quantity,
                price: price.parse().unwrap(),
                commission: commission.parse().unwrap(),
                time,
            };
            apply_fill(&mut self.quantity, &mut self.cost, &mut self.trade, &fill)
        }
    }

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn price(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn a_long_round_trip_scales_in_and_out() {
        let mut p = Pos::default();
        let e = p.fill(10, "100", "1", 1);
        assert!(e.opening && e.closed.is_none());
        assert_eq!(e.realized, Amount::ZERO);
        assert!(p.fill(10, "110", "1", 2).opening);
        assert_eq!((p.quantity, p.cost), (20, amount("2100")));
        let e = p.fill(-5, "120", "1", 3);
        assert!(!e.opening && e.closed.is_none());
        // A quarter of the 2100 cost leaves with the 5 sold.
        assert_eq!(e.realized, amount("75"));
        assert_eq!((p.quantity, p.cost), (15, amount("1575")));
        let e = p.fill(-15, "100", "0", 4);
        assert_eq!(e.realized, amount("-75"));
        let t = e.closed.unwrap();
        assert_eq!(t.side(), TradeSide::Long);
        assert_eq!((t.quantity, t.entry_time, t.exit_time), (20, 1, 4));
        assert_eq!((t.entry_price, t.exit_price), (price("105"), price("105")));
        // Bought 2100, sold 600 + 1500: flat before 3 of commission.
        assert_eq!((t.pnl, t.commission), (amount("-3"), amount("3")));
        assert!((t.return_pct - -3.0 / 2100.0 * 100.0).abs() < 1e-12);
        assert_eq!((p.quantity, p.cost, p.trade), (0, Amount::ZERO, None));
    }

    #[test]
    fn a_short_round_trip() {
        let mut p = Pos::default();
        assert!(p.fill(-10, "50", "0", 1).opening);
        assert_eq!((p.quantity, p.cost), (-10, amount("-500")));
        assert!(p.fill(-10, "40", "0", 2).opening);
        assert_eq!(p.trade.as_ref().unwrap().max_quantity, 20);
        let e = p.fill(20, "30", "0", 3);
        assert!(!e.opening);
        assert_eq!(e.realized, amount("300"));
        let t = e.closed.unwrap();
        assert_eq!(t.side(), TradeSide::Short);
        assert_eq!(t.direction, -1);
        assert_eq!((t.entry_price, t.exit_price), (price("45"), price("30")));
        assert_eq!((t.quantity, t.pnl), (20, amount("300")));
        assert!((t.return_pct - 300.0 / 900.0 * 100.0).abs() < 1e-12);
    }

    #[test]
    fn a_flip_closes_the_trade_and_opens_one_the_other_way() {
        let mut p = Pos::default();
        p.fill(10, "100", "0", 1);
        let e = p.fill(-15, "90", "2", 2);
        assert!(!e.opening);
        assert_eq!(e.realized, amount("-100"));
        // The flipping fill's whole commission is charged to the trade it closes.
        let t = e.closed.unwrap();
        assert_eq!((t.side(), t.quantity), (TradeSide::Long, 10));
        assert_eq!((t.pnl, t.commission), (amount("-102"), amount("2")));
        assert_eq!((t.exit_time, t.exit_price), (2, price("90")));
        // The rest opens a short at the fill price, with no commission yet.
        assert_eq!((p.quantity, p.cost), (-5, amount("-450")));
        let open = p.trade.clone().unwrap();
        assert_eq!((open.entry_time, open.direction), (2, -1));
        assert_eq!((open.entry_quantity, open.max_quantity), (5, 5));
        assert_eq!((open.pnl, open.commission), (Amount::ZERO, Amount::ZERO));
        let t = p.fill(5, "80", "0", 3).closed.unwrap();
        assert_eq!((t.side(), t.quantity), (TradeSide::Short, 5));
        assert_eq!((t.entry_price, t.exit_price), (price("90"), price("80")));
        assert_eq!(t.pnl, amount("50"));
    }

    #[test]
    fn commissions_accumulate_on_entries_and_exits() {
        let mut p = Pos::default();
        p.fill(3, "10", "0.35", 1);
        p.fill(1, "12", "0.35", 2);
        let e = p.fill(-2, "13", "0.5", 3);
        assert_eq!(e.realized, amount("5"));
        assert_eq!(p.trade.as_ref().unwrap().pnl, amount("3.8"));
        let t = p.fill(-2, "9", "0.5", 4).closed.unwrap();
        // 42 bought, 26 + 18 sold: 2 gross, 1.70 of commission.
        assert_eq!((t.pnl, t.commission), (amount("0.3"), amount("1.7")));
        assert_eq!((t.entry_price, t.exit_price), (price("10.5"), price("11")));
    }

    #[test]
    fn uneven_costs_round_down_and_stay_exact() {
        let mut p = Pos::default();
        p.fill(1, "10", "0", 1);
        p.fill(2, "10.01", "0", 2);
        // A third of the 30.02 cost leaves, rounded down at 8 decimals.
        let e = p.fill(-1, "11", "0", 3);
        assert_eq!(p.cost, amount("20.01333334"));
        assert_eq!(e.realized, amount("0.99333334"));
        let e = p.fill(-2, "11", "0", 4);
        assert_eq!(e.realized, amount("1.98666666"));
        let t = e.closed.unwrap();
        // The trade's PnL is exactly what was realized, and the average entry price is
        // rounded down.
        assert_eq!(t.pnl, amount("2.98"));
        assert_eq!(t.entry_price, price("10.00666666"));
    }

    #[test]
    fn a_zero_fill_changes_nothing() {
        let mut p = Pos::default();
        let e = p.fill(0, "10", "1", 1);
        assert!(!e.opening && e.closed.is_none());
        assert_eq!((p.quantity, p.cost, p.trade), (0, Amount::ZERO, None));
    }

    #[test]
    fn a_round_trip_becomes_trade_data() {
        let mut p = Pos::default();
        p.fill(-2, "10.5", "0", 86_400);
        let t = p.fill(2, "10", "0", 2 * 86_400).closed.unwrap();
        let d = t.to_trade_data("GOOG".into());
        assert_eq!((d.symbol.as_str(), d.side.as_str()), ("GOOG", "short"));
        assert_eq!(
            (d.quantity, d.entry_time, d.exit_time),
            (2, 86_400, 172_800)
        );
        assert_eq!((d.entry_price, d.exit_price), (price("10.5"), price("10")));
        assert_eq!((d.pnl, d.commission), (amount("1"), Amount::ZERO));
        assert_eq!(d.return_pct, t.return_pct);
    }
}
