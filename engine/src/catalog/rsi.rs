//! `rsi_mean_reversion`: buy oversold, sell overbought, on Cutler's RSI.

use model::{Candle, CutlerRsi};

use crate::order::{OrderRequest, Side};
use crate::strategy::{BarContext, Strategy};
use crate::Engine;

/// With no order working on the symbol: while flat, buys `quantity` at market when
/// Cutler's RSI over `period` moves is below `oversold`; while long, sells the whole
/// position at market when it is above `overbought`. Levels are compared exactly on
/// the sums of moves (an RSI at the level is neither). Rules in full: the
/// [catalog](super) documentation.
#[derive(Clone, Debug)]
pub struct RsiMeanReversion {
    rsi: CutlerRsi,
    oversold: u32,
    overbought: u32,
    quantity: i64,
    orders: u64,
}

impl RsiMeanReversion {
    /// Cutler's RSI over `period` close-to-close moves, entering below `oversold` and
    /// exiting above `overbought` (levels on the 0-100 scale), trading `quantity`
    /// units.
    pub fn new(period: usize, oversold: u32, overbought: u32, quantity: i64) -> Self {
        RsiMeanReversion {
            rsi: CutlerRsi::new(period),
            oversold,
            overbought,
            quantity,
            orders: 0,
        }
    }
}

impl Strategy for RsiMeanReversion {
    fn on_start(&mut self, warmup: &[Vec<Candle>], _engine: &Engine) {
        for (i, bars) in warmup.iter().enumerate() {
            for c in bars {
                self.rsi.update(i, c.close.raw());
            }
        }
    }

    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        for b in ctx.bars {
            let i = b.symbol as usize;
            let Some(rsi) = self.rsi.update(i, b.candle.close.raw()) else {
                continue;
            };
            if ctx.engine.working_orders_on(b.symbol) > 0 {
                continue;
            }
            let position = ctx.engine.position(b.symbol);
            let (side, quantity) = if position == 0 && rsi.is_below(self.oversold) {
                (Side::Buy, self.quantity)
            } else if position > 0 && rsi.is_above(self.overbought) {
                (Side::Sell, position)
            } else {
                continue;
            };
            let Some(symbol) = ctx.engine.config().symbols.get(i) else {
                continue;
            };
            self.orders += 1;
            orders.push(OrderRequest::market(
                format!("rsi-{}", self.orders),
                symbol.clone(),
                side,
                quantity,
            ));
        }
    }
}
