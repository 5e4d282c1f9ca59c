//! Cash, positions with average cost, realized and unrealized PnL. Round trips are
//! kept by [`protocol::round_trips`], which clients use to rebuild the same trades.

use model::{Amount, Price, Timestamp};
use protocol::round_trips::{self, Fill, OpenTrade, RoundTrip};
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

/// A finished round trip (flat -> position -> flat) and its symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    /// Symbol index.
    pub symbol: u32,
    /// The round trip.
    pub trade: RoundTrip,
    /// Sum of the entry fills' |quantity x price|: the base of the trade's exact return.
    pub entry_notional: Amount,
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
        self.cash -= price.times(signed_qty) + commission;
        self.commission += commission;
        let pos = &mut self.positions[symbol as usize];
        // A fill that closes the trade is an exit: it leaves the entry notional as is.
        let entry_notional = pos
            .trade
            .as_ref()
            .map_or(Amount::ZERO, |t| t.entry_notional);
        let fill = Fill {
            quantity: signed_qty,
            price,
            commission,
            time: ts,
        };
        let effect =
            round_trips::apply_fill(&mut pos.quantity, &mut pos.cost, &mut pos.trade, &fill);
        self.realized += effect.realized - commission;
        FillEffect {
            opening: effect.opening,
            closed: effect.closed.map(|trade| ClosedTrade {
                symbol,
                trade,
                entry_notional,
            }),
        }
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
        let t = eff.closed.unwrap().trade;
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
        assert_eq!(eff.closed.unwrap().trade.pnl, Amount::from_int(-100));
        let pos = &pf.positions[0];
        assert_eq!((pos.quantity, pos.avg_cost()), (-5, p("90")));
        pf.positions[0].last = p("80");
        assert_eq!(pf.positions[0].unrealized(), Amount::from_int(50));
        assert_eq!(pf.equity(), Amount::from_int(10_000 - 100 + 50));
        assert_eq!(pf.short_liability(), Amount::from_int(400));
    }
}
