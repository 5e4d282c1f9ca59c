//! Engine and session outputs as wire messages (PROTOCOL.md sections 3 and 4).

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{
    AccountSnapshot, BatchResult, EndReason, Event, FillReason, FillStatus, OrderStatus,
    SimulationResults,
};
use model::{Slice, Timeframe};
use protocol::{
    AccountSnapshotData, BatchAckData, ExecutionReportData, HistorySnapshotData, OrderUpdateData,
    PositionData, ServerMessage, SessionErrorData, SimulationEndData, SimulationState,
    SimulationStateData, TickData, WireCandle,
};
use session_actor::actor::{SessionOutput, SessionState, StateView};

/// What a connection knows about a session it relays.
#[derive(Clone)]
pub struct SessionContext {
    /// Session id.
    pub session_id: String,
    /// The slice ticks refer to.
    pub slice: Arc<Slice>,
    /// Wall-clock start of the run, for `simulation_duration_sec`.
    pub started_at: std::time::Instant,
}

impl SessionContext {
    /// The context of a session attached now.
    pub fn new(session_id: String, slice: Arc<Slice>) -> Self {
        SessionContext {
            session_id,
            slice,
            started_at: std::time::Instant::now(),
        }
    }

    fn timeframe(&self) -> Timeframe {
        self.slice.timeframe
    }
}

/// The wire message of one session output.
pub fn output(ctx: &SessionContext, out: &SessionOutput) -> ServerMessage {
    let sid = || ctx.session_id.clone();
    match out {
        SessionOutput::History => {
            let mut candles = BTreeMap::new();
            let (mut start, mut end, mut count) = (None::<i64>, None::<i64>, 0u64);
            for (symbol, bars) in ctx.slice.symbols.iter().zip(&ctx.slice.warmup) {
                for c in bars {
                    start = Some(start.map_or(c.ts, |s| s.min(c.ts)));
                    end = Some(end.map_or(c.ts, |e| e.max(c.ts)));
                }
                count += bars.len() as u64;
                candles.insert(symbol.clone(), bars.iter().map(WireCandle::from).collect());
            }
            ServerMessage::HistorySnapshot(HistorySnapshotData {
                session_id: sid(),
                timeframe: ctx.timeframe(),
                candles,
                start,
                end,
                count,
            })
        }
        SessionOutput::Engine(Event::Tick(t)) => {
            let index = (t.sequence_id as usize).saturating_sub(1);
            let (candles, session) = match ctx.slice.steps.get(index) {
                Some(step) => {
                    let bars = ctx.slice.bars_of(step);
                    let candles: BTreeMap<String, WireCandle> = bars
                        .iter()
                        .map(|b| {
                            (
                                ctx.slice.symbols[b.symbol as usize].clone(),
                                WireCandle::from(&b.candle),
                            )
                        })
                        .collect();
                    (candles, step.session)
                }
                None => (BTreeMap::new(), model::MarketSession::Regular),
            };
            ServerMessage::Tick(TickData {
                session_id: sid(),
                sim_time: t.sim_time,
                sequence_id: t.sequence_id,
                timeframe: ctx.timeframe(),
                symbols_trading: candles.keys().cloned().collect(),
                candles,
                market_session: session,
                is_eod: t.is_eod,
            })
        }
        SessionOutput::Engine(Event::Execution(x)) => {
            ServerMessage::ExecutionReport(ExecutionReportData {
                session_id: sid(),
                execution_id: x.execution_id.clone(),
                order_id: x.order_id.clone(),
                symbol: x.symbol.clone(),
                side: x.side,
                executed_quantity: x.executed_quantity,
                executed_price: x.executed_price,
                commission: x.commission,
                slippage_bps: x.slippage_bps,
                timestamp: x.timestamp,
                order_status: match x.order_status {
                    FillStatus::Filled => protocol::FillStatus::Filled,
                    FillStatus::PartiallyFilled => protocol::FillStatus::PartiallyFilled,
                },
                leaves_quantity: x.leaves_quantity,
                reason: match x.reason {
                    FillReason::Entry => protocol::FillReason::Entry,
                    FillReason::Exit => protocol::FillReason::Exit,
                    FillReason::StopLoss => protocol::FillReason::StopLoss,
                    FillReason::TakeProfit => protocol::FillReason::TakeProfit,
                },
            })
        }
        SessionOutput::Engine(Event::OrderUpdate(u)) => {
            ServerMessage::OrderUpdate(OrderUpdateData {
                session_id: sid(),
                order_id: u.order_id.clone(),
                status: match u.status {
                    OrderStatus::Open => protocol::OrderStatus::Open,
                    OrderStatus::Cancelled => protocol::OrderStatus::Cancelled,
                    OrderStatus::Rejected => protocol::OrderStatus::Rejected,
                    OrderStatus::Expired => protocol::OrderStatus::Expired,
                },
                reason: u.reason.clone(),
            })
        }
        SessionOutput::Engine(Event::Account(a)) => account(&ctx.session_id, a),
        SessionOutput::End(results) => end(ctx, results),
        SessionOutput::Failed { code, message } => ServerMessage::SessionError(SessionErrorData {
            session_id: Some(sid()),
            error_code: *code,
            message: message.clone(),
        }),
        SessionOutput::BatchAck(a) => batch_ack(&a.batch_id, &a.result),
    }
}

/// The text frame of one session output; a reply echoes its request's `request_id`.
pub fn output_frame(ctx: &SessionContext, out: &SessionOutput, now: i64) -> String {
    let request_id = match out {
        SessionOutput::BatchAck(a) => a.request_id.as_deref(),
        _ => None,
    };
    output(ctx, out).to_frame(request_id, now)
}

/// `account_snapshot`.
pub fn account(session_id: &str, a: &AccountSnapshot) -> ServerMessage {
    ServerMessage::AccountSnapshot(AccountSnapshotData {
        session_id: session_id.to_string(),
        sim_time: a.sim_time,
        cash: a.cash,
        equity: a.equity,
        positions: a
            .positions
            .iter()
            .map(|p| PositionData {
                symbol: p.symbol.clone(),
                quantity: p.quantity,
                avg_cost: p.avg_cost,
                market_value: p.market_value,
                unrealized_pnl: p.unrealized_pnl,
            })
            .collect(),
        buying_power: a.buying_power,
        day_pnl: a.day_pnl,
        realized_pnl: a.realized_pnl,
        open_orders: a.open_orders.clone(),
    })
}

/// `simulation_end` with every metric.
pub fn end(ctx: &SessionContext, r: &SimulationResults) -> ServerMessage {
    ServerMessage::SimulationEnd(end_data(
        &ctx.session_id,
        r,
        ctx.started_at.elapsed().as_secs(),
    ))
}

/// The `simulation_end` data, also stored as a finished session's metrics.
pub fn end_data(session_id: &str, r: &SimulationResults, duration_sec: u64) -> SimulationEndData {
    let m = &r.metrics;
    SimulationEndData {
        session_id: session_id.to_string(),
        final_equity: m.final_equity,
        total_trades: m.total_trades,
        sharpe_ratio: m.sharpe_ratio,
        total_return_pct: m.total_return_pct,
        win_rate: m.win_rate,
        max_drawdown_pct: m.max_drawdown_pct,
        simulation_duration_sec: duration_sec,
        reason: match r.reason {
            EndReason::Completed => protocol::EndReason::Completed,
            EndReason::Stopped => protocol::EndReason::Stopped,
            EndReason::MaxDuration => protocol::EndReason::MaxDuration,
            EndReason::Error => protocol::EndReason::Error,
        },
        sortino_ratio: m.sortino_ratio,
        calmar_ratio: m.calmar_ratio,
        profit_factor: m.profit_factor,
        cagr_pct: m.cagr_pct,
        volatility_ann_pct: m.volatility_ann_pct,
        exposure_pct: m.exposure_pct,
        buy_and_hold_return_pct: m.buy_and_hold_return_pct,
        best_trade_pct: m.best_trade_pct,
        worst_trade_pct: m.worst_trade_pct,
        avg_trade_pct: m.avg_trade_pct,
        max_drawdown_duration_bars: m.max_drawdown_duration_bars,
        total_commission: m.total_commission,
        ticks_processed: m.ticks_processed,
    }
}

/// `batch_ack`.
pub fn batch_ack(batch_id: &str, r: &BatchResult) -> ServerMessage {
    ServerMessage::BatchAck(BatchAckData {
        batch_id: batch_id.to_string(),
        accepted_orders: r.accepted_orders.clone(),
        rejected_orders: r
            .rejected_orders
            .iter()
            .map(|(id, reason)| (id.clone(), reason.wire_reason()))
            .collect(),
        estimated_fills: r
            .estimated_fills
            .iter()
            .map(|(id, price)| (id.clone(), *price))
            .collect(),
    })
}

/// The wire state of a session.
pub fn state(s: SessionState) -> SimulationState {
    match s {
        SessionState::Ready => SimulationState::Ready,
        SessionState::Running => SimulationState::Running,
        SessionState::Paused => SimulationState::Paused,
        SessionState::Completed => SimulationState::Completed,
        SessionState::Error => SimulationState::Error,
    }
}

/// `simulation_state`.
pub fn state_view(v: &StateView) -> ServerMessage {
    ServerMessage::SimulationState(SimulationStateData {
        session_id: v.session_id.clone(),
        state: state(v.state),
        sequence_id: v.sequence_id,
        sim_time: v.sim_time,
        progress_pct: v.progress_pct,
        ticks_total: v.ticks_total,
    })
}

/// A time as REST answers and operators' listings give it: RFC 3339 in UTC, to the
/// second.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
