//! Cash, positions with average cost, realized and unrealized PnL.

use market_data::{Amount, Price, Timestamp};
use serde::{Deserialize, Serialize};

/// One symbol's position. `cost` is the signed cost basis (negative for shorts), so
/// `avg_cost = cost / quantity` and `unrealized = quantity x last - cost`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Signed quantity: positive long, negative short.
    pub quantity: i64,
    /// Signed cost basis of the open quantity.
    pub cost: Amount,
    /// Last close seen for the symbol (mark price).
    pub last: Price,
    /// The round trip in progress, if any.
    pub trade: Option<OpenTrade>,
}

impl Position {
    /// Average cost per unit (zero when flat).
    pub fn avg_cost(&self) -> Price {
        self.cost.per_unit(self.quantity)
    }

    /// Market value at the last close.
    pub fn market_value(&self) -> Amount {
        self.last.times(self.quantity)
    }

    /// Unrealized PnL at the last close.
    pub fn unrealized(&self) -> Amount {
        self.market_value() - self.cost
    }
}

/// A round trip from flat back to flat, still open.
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

/// A finished round trip (flat -> position -> flat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    /// Symbol index.
    pub symbol: u32,
    /// `long` or `short` as +1 / -1.
    pub direction: i64,
    /// Largest absolute position held.
    pub quantity: i64,
    /// Time of the first fill.
    pub entry_time: Timestamp,
    /// Time of the fill that made the position flat.
    pub exit_time: Timestamp,
    /// Average entry price.
    pub entry_price: Price,
    /// Average exit price.
    pub exit_price: Price,
    /// PnL net of commissions.
    pub pnl: Amount,
    /// Commissions paid.
    pub commission: Amount,
    /// `pnl / entry notional`, in percent.
    pub return_pct: f64,
}

/// Result of applying one fill to a position.
#[derive(Clone, Debug, PartialEq)]
pub struct FillEffect {
    /// The fill increased or opened the position (`entry`), else it reduced it (`exit`).
    pub opening: bool,
    /// Round trip completed by this fill, if it brought the position to flat.
    pub closed: Option<ClosedTrade>,
}

/// The account: cash plus positions indexed by symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    /// Cash balance.
    pub cash: Amount,
    /// Realized PnL net of commissions since the start.
    pub realized: Amount,
    /// Commissions paid since the start.
    pub commission: Amount,
    /// One entry per session symbol.
    pub positions: Vec<Position>,
}

impl Portfolio {
    /// A flat account with `cash` and `symbols` empty positions.
    pub fn new(cash: Amount, symbols: usize) -> Self {
        Portfolio {
            cash,
            realized: Amount::ZERO,
            commission: Amount::ZERO,
            positions: vec![Position::default(); symbols],
        }
    }

    /// Cash plus the market value of every position at its last close.
    pub fn equity(&self) -> Amount {
        let mut e = self.cash;
        for p in &self.positions {
            if p.quantity != 0 {
                e += p.market_value();
            }
        }
        e
    }

    /// Sum of |market value| of short positions.
    pub fn short_liability(&self) -> Amount {
        self.positions
            .iter()
            .filter(|p| p.quantity < 0)
            .map(|p| -p.market_value())
            .sum()
    }

    /// True when any position is open.
    pub fn has_exposure(&self) -> bool {
        self.positions.iter().any(|p| p.quantity != 0)
    }

    /// Applies a fill of `signed_qty` (buy > 0) at `price` with `commission`.
    pub fn apply_fill(
        &mut self,
        symbol: u32,
        signed_qty: i64,
        price: Price,
        commission: Amount,
        ts: Timestamp,
    ) -> FillEffect {
        let notional = price.times(signed_qty);
        self.cash -= notional + commission;
        self.commission += commission;
        self.realized -= commission;
        let pos = &mut self.positions[symbol as usize];
        let opening = pos.quantity == 0 || pos.quantity.signum() == signed_qty.signum();
        let mut closed = None;
        if opening {
            pos.cost += notional;
            pos.quantity += signed_qty;
            let t = pos.trade.get_or_insert_with(|| OpenTrade {
                entry_time: ts,
                direction: signed_qty.signum(),
                entry_quantity: 0,
                entry_notional: Amount::ZERO,
                exit_quantity: 0,
                exit_notional: Amount::ZERO,
                pnl: Amount::ZERO,
                commission: Amount::ZERO,
                max_quantity: 0,
            });
            t.entry_quantity += signed_qty.abs();
            t.entry_notional += notional.abs();
            t.pnl -= commission;
            t.commission += commission;
            t.max_quantity = t.max_quantity.max(pos.quantity.abs());
        } else {
            let close_qty = signed_qty.abs().min(pos.quantity.abs());
            let closing = close_qty * signed_qty.signum();
            // Cost leaves the position in proportion to the quantity closed.
            let removed = pos.cost.mul_div_floor(close_qty, pos.quantity.abs());
            let realized = -price.times(closing) - removed;
            self.realized += realized;
            pos.cost -= removed;
            pos.quantity += closing;
            // Commission of a flipping fill is charged to the trade it closes.
            if let Some(t) = pos.trade.as_mut() {
                t.exit_quantity += close_qty;
                t.exit_notional += price.times(close_qty);
                t.pnl += realized - commission;
                t.commission += commission;
            }
            if pos.quantity == 0 {
                pos.cost = Amount::ZERO;
                if let Some(t) = pos.trade.take() {
                    closed = Some(close_trade(symbol, t, ts));
                }
            }
            let rest = signed_qty - closing;
            if rest != 0 {
                let notional_rest = price.times(rest);
                pos.cost = notional_rest;
                pos.quantity = rest;
                pos.trade = Some(OpenTrade {
                    entry_time: ts,
                    direction: rest.signum(),
                    entry_quantity: rest.abs(),
                    entry_notional: notional_rest.abs(),
                    exit_quantity: 0,
                    exit_notional: Amount::ZERO,
                    pnl: Amount::ZERO,
                    commission: Amount::ZERO,
                    max_quantity: rest.abs(),
                });
            }
        }
        FillEffect { opening, closed }
    }
}

fn close_trade(symbol: u32, t: OpenTrade, exit_time: Timestamp) -> ClosedTrade {
    let entry_price = t.entry_notional.per_unit(t.entry_quantity);
    let exit_price = t.exit_notional.per_unit(t.exit_quantity);
    let base = t.entry_notional.to_f64();
    let return_pct = if base > 0.0 {
        t.pnl.to_f64() / base * 100.0
    } else {
        0.0
    };
    ClosedTrade {
        symbol,
        direction: t.direction,
        quantity: t.max_quantity,
        entry_time: t.entry_time,
        exit_time,
        entry_price,
        exit_price,
        pnl: t.pnl,
        commission: t.commission,
        return_pct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn long_round_trip_realizes_pnl() {
        let mut pf = Portfolio::new(Amount::from_int(10_000), 1);
        pf.apply_fill(0, 10, p("100"), Amount::from_int(1), 1);
        pf.apply_fill(0, 10, p("110"), Amount::from_int(1), 2);
        assert_eq!(pf.positions[0].avg_cost(), p("105"));
        let eff = pf.apply_fill(0, -5, p("120"), Amount::from_int(1), 3);
        assert!(!eff.opening && eff.closed.is_none());
        assert_eq!(pf.realized, Amount::from_int(75 - 3));
        let eff = pf.apply_fill(0, -15, p("100"), Amount::ZERO, 4);
        let t = eff.closed.unwrap();
        assert_eq!(
            (t.entry_price, t.exit_price, t.quantity),
            (p("105"), p("105"), 20)
        );
        assert_eq!(t.pnl, Amount::from_int(75 - 75 - 3));
        assert_eq!(pf.cash, Amount::from_int(10_000 - 3));
        assert_eq!(pf.positions[0].cost, Amount::ZERO);
    }

    #[test]
    fn flip_closes_and_opens() {
        let mut pf = Portfolio::new(Amount::from_int(10_000), 1);
        pf.apply_fill(0, 10, p("100"), Amount::ZERO, 1);
        let eff = pf.apply_fill(0, -15, p("90"), Amount::ZERO, 2);
        assert_eq!(eff.closed.unwrap().pnl, Amount::from_int(-100));
        let pos = &pf.positions[0];
        assert_eq!((pos.quantity, pos.avg_cost()), (-5, p("90")));
        pf.positions[0].last = p("80");
        assert_eq!(pf.positions[0].unrealized(), Amount::from_int(50));
        assert_eq!(pf.equity(), Amount::from_int(10_000 - 100 + 50));
        assert_eq!(pf.short_liability(), Amount::from_int(400));
    }
}
