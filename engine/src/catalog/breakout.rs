//! `breakout`: a Donchian-channel breakout entered at market with bracket exits.

use model::fixed::SCALE;
use model::{Candle, DonchianHigh, Price};

use crate::order::{OrderRequest, Side};
use crate::strategy::{BarContext, Strategy};
use crate::Engine;

/// 100 percent in the fixed-point scale of a percentage.
const HUNDRED_PCT: i128 = 100 * SCALE as i128;

/// While flat and with no order working on the symbol, buys `quantity` at market when
/// a close is strictly above the highest high of the previous `lookback` bars, with a
/// stop-loss `stop_loss_pct` percent below that close (rounded down to 10^-8) and a
/// take-profit `take_profit_pct` percent above it (rounded up); only those exits close
/// the position. Rules in full: the [catalog](super) documentation.
#[derive(Clone, Debug)]
pub struct Breakout {
    band: DonchianHigh,
    stop_loss_pct: Price,
    take_profit_pct: Price,
    quantity: i64,
    orders: u64,
}

impl Breakout {
    /// A breakout of the previous `lookback` bars' highest high trading `quantity`
    /// units, exits at `stop_loss_pct` and `take_profit_pct` percent of the signal
    /// close (exact decimals, held in the fixed-point representation of [`Price`]).
    pub fn new(
        lookback: usize,
        stop_loss_pct: Price,
        take_profit_pct: Price,
        quantity: i64,
    ) -> Self {
        Breakout {
            band: DonchianHigh::new(lookback),
            stop_loss_pct,
            take_profit_pct,
            quantity,
            orders: 0,
        }
    }

    /// The bracket of an entry signalled at `close`: `close x (1 - stop_loss_pct/100)`
    /// rounded down and `close x (1 + take_profit_pct/100)` rounded up to 10^-8. `None`
    /// unless `0 < stop_loss < take_profit` and both fit a price.
    pub fn bracket(&self, close: Price) -> Option<(Price, Price)> {
        let c = i128::from(close.raw());
        let below = c * (HUNDRED_PCT - i128::from(self.stop_loss_pct.raw()));
        let above = c * (HUNDRED_PCT + i128::from(self.take_profit_pct.raw()));
        let stop_loss = i64::try_from(below.div_euclid(HUNDRED_PCT)).ok()?;
        // Ceiling division: the floor of the negation, negated.
        let take_profit = i64::try_from(-(-above).div_euclid(HUNDRED_PCT)).ok()?;
        (0 < stop_loss && stop_loss < take_profit)
            .then(|| (Price::from_raw(stop_loss), Price::from_raw(take_profit)))
    }
}

impl Strategy for Breakout {
    fn on_start(&mut self, warmup: &[Vec<Candle>], _engine: &Engine) {
        for (i, bars) in warmup.iter().enumerate() {
            for c in bars {
                self.band.update(i, c.high.raw());
            }
        }
    }

    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        for b in ctx.bars {
            let i = b.symbol as usize;
            // The band of the bars before this one; this bar's high joins it after.
            let Some(band) = self.band.update(i, b.candle.high.raw()) else {
                continue;
            };
            if b.candle.close.raw() <= band
                || ctx.engine.position(b.symbol) != 0
                || ctx.engine.working_orders_on(b.symbol) > 0
            {
                continue;
            }
            let Some((stop_loss, take_profit)) = self.bracket(b.candle.close) else {
                continue;
            };
            let Some(symbol) = ctx.engine.config().symbols.get(i) else {
                continue;
            };
            self.orders += 1;
            orders.push(
                OrderRequest::market(
                    format!("brk-{}", self.orders),
                    symbol.clone(),
                    Side::Buy,
                    self.quantity,
                )
                .with_bracket(Some(stop_loss), Some(take_profit)),
            );
        }
    }
}
