//! A whole lock-step run: start, feed every event to a strategy, send its orders for
//! tick N and wait for their `batch_ack` before acknowledging tick N, collect results.

use std::collections::BTreeMap;

use protocol::{AccountSnapshotData, OrderRequest, OrderStatus, SessionParams, SimulationEndData};
use serde::Serialize;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::strategy::{Strategy, TickContext};
use crate::stream::SessionEvent;
use crate::trades::{Trade, TradeBook};

/// What a run produced: the `simulation_end` results and the round trips rebuilt from
/// the fills. Serialises as the `simulation_end` fields plus `trades` (and
/// `rejected_orders` when any order was refused).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    /// `simulation_end` data.
    #[serde(flatten)]
    pub end: SimulationEndData,
    /// Closed round trips, in closing order.
    pub trades: Vec<Trade>,
    /// Orders refused at submission (`batch_ack`) or when due (`order_update`
    /// `rejected`): order id -> reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected_orders: BTreeMap<String, String>,
    /// The last account snapshot received, if any.
    #[serde(skip)]
    pub last_account: Option<AccountSnapshotData>,
}

/// Progress of a run: ticks received so far and the number announced in
/// `session_created.estimated_ticks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Ticks received.
    pub done: u64,
    /// Ticks the run will have.
    pub total: u64,
}

impl Connection {
    /// Runs `strategy` over a new session in lock-step (flow control on, window 1): the
    /// orders for tick N are sent right before tick N is acknowledged (one write, one
    /// round trip per bar), so they fill from bar N+1 on, exactly as in-process. The
    /// server answers the batch before anything bar N+1 causes; a batch refused as a
    /// whole ends the run with that error.
    pub async fn run<S: Strategy + ?Sized>(
        &mut self,
        params: SessionParams,
        strategy: &mut S,
    ) -> Result<Results> {
        self.run_with_progress(params, strategy, |_| {}).await
    }

    /// [`Connection::run`], calling `progress` after every tick.
    pub async fn run_with_progress<S: Strategy + ?Sized>(
        &mut self,
        mut params: SessionParams,
        strategy: &mut S,
        mut progress: impl FnMut(Progress),
    ) -> Result<Results> {
        params.flow_control = true;
        params.max_pending_ticks = 1;
        let timeout = Some(self.timeout());
        let mut stream = self.start_simulation(params).await?;
        let (symbols, total) = match stream.session_created() {
            Some(c) => (c.symbols.clone(), c.estimated_ticks),
            None => (Vec::new(), 0),
        };
        let mut book = TradeBook::new();
        let mut account: Option<AccountSnapshotData> = None;
        let mut rejected = BTreeMap::new();
        let mut orders: Vec<OrderRequest> = Vec::new();
        let mut done = 0;
        loop {
            let Some(event) = stream.next_within(timeout).await? else {
                return Err(Error::Closed(None));
            };
            match event {
                SessionEvent::History(h) => strategy.on_start(&symbols, &h),
                SessionEvent::Fill(f) => {
                    book.apply(&f);
                    strategy.on_fill(&f);
                }
                SessionEvent::OrderUpdate(u) => {
                    if u.status == OrderStatus::Rejected {
                        rejected.insert(u.order_id.clone(), u.reason.clone());
                    }
                    strategy.on_order_update(&u);
                }
                SessionEvent::Account(a) => {
                    strategy.on_account(&a);
                    account = Some(a);
                }
                SessionEvent::Tick(tick) => {
                    let ctx = TickContext {
                        tick: &tick,
                        symbols: &symbols,
                        book: &book,
                        account: account.as_ref(),
                    };
                    strategy.on_tick(&ctx, &mut orders);
                    if !orders.is_empty() {
                        stream.send_orders(std::mem::take(&mut orders)).await?;
                    }
                    stream.ack(tick.sequence_id).await?;
                    done += 1;
                    progress(Progress { done, total });
                }
                SessionEvent::BatchAck(ack) => rejected.extend(ack.rejected_orders),
                SessionEvent::BatchFailed { error, .. } => return Err(Error::from_error(error)),
                SessionEvent::Notice(e) if !e.recoverable => return Err(Error::from_error(e)),
                SessionEvent::Warning(_) | SessionEvent::Notice(_) => {}
                SessionEvent::End(end) => {
                    return Ok(Results {
                        end,
                        trades: book.into_trades(),
                        rejected_orders: rejected,
                        last_account: account,
                    })
                }
            }
        }
    }
}
