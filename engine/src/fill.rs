//! Where fills are computed: the price rules of PROTOCOL.md "Fill model", as pure
//! functions of one order and one bar.

use model::{Candle, Price};

use super::order::{OpenOrder, OrderType, Side};

/// A fill price for one order in one bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillPrice {
    /// Price inside the bar's [low, high] before slippage.
    pub base: Price,
    /// Price actually paid or received.
    pub price: Price,
    /// Slippage applied, in basis points.
    pub slippage_bps: u32,
    /// Filled at the bar's open (exits attached on fill are live for the rest of the bar).
    pub at_open: bool,
}

fn slipped(base: Price, side: Side, bps: u32, open: Price) -> FillPrice {
    FillPrice {
        base,
        price: base.slipped(bps, side == Side::Buy),
        slippage_bps: bps,
        at_open: base == open,
    }
}

fn exact(base: Price, open: Price) -> FillPrice {
    FillPrice {
        base,
        price: base,
        slippage_bps: 0,
        at_open: base == open,
    }
}

/// Limit rule: a buy at `l` fills if low <= l, at min(open, l); a sell mirrored.
pub fn limit_fill(side: Side, l: Price, bar: &Candle) -> Option<Price> {
    match side {
        Side::Buy if bar.low <= l => Some(bar.open.min(l)),
        Side::Sell if bar.high >= l => Some(bar.open.max(l)),
        _ => None,
    }
}

/// True when a limit at `l` is already marketable at the bar's open.
pub fn limit_at_open(side: Side, l: Price, bar: &Candle) -> bool {
    match side {
        Side::Buy => bar.open <= l,
        Side::Sell => bar.open >= l,
    }
}

/// Stop rule: a buy stop at `s` triggers if high >= s, at max(open, s); a sell mirrored.
pub fn stop_trigger(side: Side, s: Price, bar: &Candle) -> Option<Price> {
    match side {
        Side::Buy if bar.high >= s => Some(bar.open.max(s)),
        Side::Sell if bar.low <= s => Some(bar.open.min(s)),
        _ => None,
    }
}

/// Evaluates `order` against `bar`. A stop_limit whose stop trades but which cannot fill
/// in the same bar is marked `triggered` and rests as a limit from the next bar.
pub fn evaluate(order: &mut OpenOrder, bar: &Candle, slippage_bps: u32) -> Option<FillPrice> {
    let side = order.side;
    match order.kind {
        OrderType::Market => Some(slipped(bar.open, side, slippage_bps, bar.open)),
        OrderType::Limit => limit_fill(side, order.limit?, bar).map(|p| exact(p, bar.open)),
        OrderType::Stop => {
            stop_trigger(side, order.stop?, bar).map(|p| slipped(p, side, slippage_bps, bar.open))
        }
        OrderType::StopLimit => {
            let limit = order.limit?;
            if order.triggered {
                return limit_fill(side, limit, bar).map(|p| exact(p, bar.open));
            }
            let stop = order.stop?;
            let trigger = stop_trigger(side, stop, bar)?;
            order.triggered = true;
            // In the triggering bar the limit is only reachable when it is at or beyond
            // the stop (buy: limit >= stop), and only if the bar actually traded there.
            let reachable = match side {
                Side::Buy => limit >= stop && bar.low <= limit,
                Side::Sell => limit <= stop && bar.high >= limit,
            };
            if !reachable {
                return None;
            }
            let p = match side {
                Side::Buy => trigger.min(limit),
                Side::Sell => trigger.max(limit),
            };
            Some(exact(p, bar.open))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{Role, TimeInForce};

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    fn bar(o: &str, h: &str, l: &str, c: &str) -> Candle {
        Candle {
            ts: 0,
            open: p(o),
            high: p(h),
            low: p(l),
            close: p(c),
            volume: model::Amount::from_int(1000),
        }
    }

    fn order(side: Side, kind: OrderType, limit: Option<&str>, stop: Option<&str>) -> OpenOrder {
        OpenOrder {
            seq: 1,
            id: "o".into(),
            symbol: 0,
            side,
            kind,
            quantity: 10,
            filled: 0,
            limit: limit.map(p),
            stop: stop.map(p),
            triggered: false,
            tif: TimeInForce::Gtc,
            active_from: 0,
            role: Role::Client {
                stop_loss: None,
                take_profit: None,
                exits: (None, None),
            },
        }
    }

    #[test]
    fn market_fills_at_open_with_slippage() {
        let b = bar("100", "110", "90", "105");
        let f = evaluate(&mut order(Side::Buy, OrderType::Market, None, None), &b, 10).unwrap();
        assert_eq!((f.base, f.price, f.at_open), (p("100"), p("100.1"), true));
        let f = evaluate(
            &mut order(Side::Sell, OrderType::Market, None, None),
            &b,
            10,
        )
        .unwrap();
        assert_eq!(f.price, p("99.9"));
    }

    #[test]
    fn limit_at_the_exact_low_fills() {
        let b = bar("100", "110", "90", "105");
        let f = evaluate(
            &mut order(Side::Buy, OrderType::Limit, Some("90"), None),
            &b,
            10,
        )
        .unwrap();
        assert_eq!((f.price, f.slippage_bps, f.at_open), (p("90"), 0, false));
        assert!(evaluate(
            &mut order(Side::Buy, OrderType::Limit, Some("89.99"), None),
            &b,
            0
        )
        .is_none());
        // A limit above the open fills at the open (price improvement).
        let f = evaluate(
            &mut order(Side::Buy, OrderType::Limit, Some("101"), None),
            &b,
            0,
        )
        .unwrap();
        assert_eq!(f.price, p("100"));
        let f = evaluate(
            &mut order(Side::Sell, OrderType::Limit, Some("110"), None),
            &b,
            0,
        )
        .unwrap();
        assert_eq!(f.price, p("110"));
        assert!(evaluate(
            &mut order(Side::Sell, OrderType::Limit, Some("110.01"), None),
            &b,
            0
        )
        .is_none());
    }

    #[test]
    fn stop_gapped_through_fills_at_open() {
        // Sell stop at 95, bar gaps down to open 92: fills at the open, not at the stop.
        let b = bar("92", "96", "88", "90");
        let f = evaluate(
            &mut order(Side::Sell, OrderType::Stop, None, Some("95")),
            &b,
            0,
        )
        .unwrap();
        assert_eq!(f.price, p("92"));
        // Buy stop at 105 inside the bar fills at the stop plus slippage.
        let b = bar("100", "110", "99", "108");
        let f = evaluate(
            &mut order(Side::Buy, OrderType::Stop, None, Some("105")),
            &b,
            100,
        )
        .unwrap();
        assert_eq!((f.base, f.price), (p("105"), p("106.05")));
        assert!(evaluate(
            &mut order(Side::Buy, OrderType::Stop, None, Some("110.5")),
            &b,
            0
        )
        .is_none());
    }

    #[test]
    fn stop_limit_fills_in_trigger_bar_or_rests() {
        let b = bar("100", "110", "99", "108");
        // limit >= stop: fills at min(max(open, stop), limit).
        let mut o = order(Side::Buy, OrderType::StopLimit, Some("106"), Some("105"));
        assert_eq!(evaluate(&mut o, &b, 0).unwrap().price, p("105"));
        // limit < stop: triggers, does not fill, rests as a limit.
        let mut o = order(Side::Buy, OrderType::StopLimit, Some("104"), Some("105"));
        assert!(evaluate(&mut o, &b, 0).is_none());
        assert!(o.triggered);
        let next = bar("106", "107", "103", "104");
        assert_eq!(evaluate(&mut o, &next, 0).unwrap().price, p("104"));
        // Gap above the limit: triggered but the limit never traded in this bar.
        let gap = bar("120", "125", "118", "121");
        let mut o = order(Side::Buy, OrderType::StopLimit, Some("115"), Some("105"));
        assert!(evaluate(&mut o, &gap, 0).is_none());
        assert!(o.triggered);
        // Sell mirrored.
        let b = bar("100", "101", "90", "92");
        let mut o = order(Side::Sell, OrderType::StopLimit, Some("94"), Some("95"));
        assert_eq!(evaluate(&mut o, &b, 0).unwrap().price, p("95"));
    }
}
