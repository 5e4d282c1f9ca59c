//! Sample payloads shared by the integration tests, written by hand from PROTOCOL.md.
#![allow(dead_code)]

use serde_json::{json, Value};

/// Minimal valid `start_simulation` data.
pub fn start_params() -> Value {
    json!({
        "symbols": ["AAPL", "GOOG"],
        "start_date": "2023-01-03",
        "end_date": "2023-02-01T00:00:00Z",
        "initial_capital": "100000",
        "timeframe": "daily",
        "warmup_bars": 5
    })
}

/// `start_simulation` data with every optional field set.
pub fn full_start_params() -> Value {
    json!({
        "symbols": ["AAPL", "GOOG"],
        "start_date": "2023-01-03T00:00:00Z",
        "end_date": "2023-06-30T00:00:00Z",
        "initial_capital": "100000.00",
        "timeframe": "1h",
        "warmup_bars": 50,
        "adjusted": false,
        "data_provider": "sample",
        "commission_per_share": "0.005",
        "slippage_bps": 5,
        "metadata": {"strategy": "sma", "params": {"fast": 10, "slow": 30}},
        "flow_control": true,
        "max_pending_ticks": 4,
        "tick_interval_ms": 25,
        "allow_short": true,
        "account_snapshot_every": 10,
        "market_hours": "regular"
    })
}

/// One valid data payload per client message type.
pub fn client_samples() -> Vec<(&'static str, Value)> {
    vec![
        ("start_simulation", start_params()),
        ("create_session", start_params()),
        ("simulation_start", json!({"session_id": "s"})),
        ("tick_ack", json!({"session_id": "s", "sequence_id": 1})),
        ("order_batch", order_batch()),
        ("cancel_orders", json!({"session_id": "s", "order_ids": []})),
        ("pause_simulation", json!({"session_id": "s"})),
        ("resume_simulation", json!({"session_id": "s"})),
        ("get_simulation_state", json!({"session_id": "s"})),
        ("stop_simulation", json!({"session_id": "s"})),
        ("get_account", json!({"session_id": "s"})),
        ("list_sessions", json!({})),
        ("close_session", json!({"session_id": "s"})),
        (
            "resume_session",
            json!({"session_id": "s", "last_sequence_id": 1}),
        ),
        ("ping", json!({})),
    ]
}

/// A valid `order_batch` payload with every order shape.
pub fn order_batch() -> Value {
    json!({
        "session_id": "s1", "batch_id": "b1", "execution_mode": "atomic",
        "orders": [
            {"order_id": "o1", "symbol": "AAPL", "side": "buy", "type": "market", "quantity": 10},
            {"order_id": "o2", "symbol": "AAPL", "side": "sell", "type": "stop_limit",
             "quantity": 5, "price": "151.25", "stop_price": 150, "stop_loss": "160",
             "take_profit": 140.5, "time_in_force": "gtc"}
        ]
    })
}

/// A candle object.
pub fn candle(date: &str, o: &str, h: &str, l: &str, c: &str, v: &str) -> Value {
    json!({"date": date, "open": o, "high": h, "low": l, "close": c, "volume": v})
}

/// One valid data payload per server message type.
pub fn server_samples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "connection_ready",
            json!({
                "user_id": "u-1", "plan": "professional",
                "connection_expires_at": "2023-11-15T00:13:20Z",
                "idle_timeout_sec": 300, "max_simulation_duration_sec": 3600,
                "concurrent_connections_limit": 5,
                "server_time": "2023-11-14T22:13:20Z",
                "supported_features": ["flow_control", "resume_session", "cancel_orders"]
            }),
        ),
        (
            "connection_warning",
            json!({
                "warning_type": "approaching_timeout", "message": "idle for 240 s",
                "expires_at": "2023-11-14T22:14:20Z", "action_required": "send any message",
                "seconds_remaining": 60
            }),
        ),
        (
            "connection_closing",
            json!({
                "reason": "idle_timeout", "message": "idle too long", "close_code": 4000,
                "reconnect_allowed": true, "session_state": "paused"
            }),
        ),
        ("pong", json!({"server_time": "2023-11-14T22:13:20Z"})),
        (
            "health",
            json!({"status": "degraded", "server_time": "2023-11-14T22:13:20Z",
                   "server_version": "0.1.0", "message": "redis unreachable"}),
        ),
        (
            "session_created",
            json!({
                "session_id": "s-1", "status": "created", "symbols": ["AAPL", "GOOG"],
                "start_date": "2023-01-03T00:00:00Z", "end_date": "2023-06-30T00:00:00Z",
                "initial_capital": "100000.00", "state": "ready",
                "created_at": "2023-11-14T22:13:20Z", "data_provider": "sample",
                "commission_per_share": "0.005", "slippage_bps": 5, "estimated_ticks": 123
            }),
        ),
        (
            "history_snapshot",
            json!({
                "session_id": "s-1", "timeframe": "daily",
                "candles": {
                    "AAPL": [
                        candle("2022-12-29T00:00:00Z", "127.99", "130.48", "127.73", "129.61", "75703700.00"),
                        candle("2022-12-30T00:00:00Z", "128.41", "129.95", "127.43", "129.93", "77034200.00")
                    ],
                    "GOOG": []
                },
                "start": "2022-12-29T00:00:00Z", "end": "2022-12-30T00:00:00Z", "count": 2
            }),
        ),
        (
            "tick",
            json!({
                "session_id": "s-1", "sim_time": "2023-01-03T14:30:00Z", "sequence_id": 1,
                "timeframe": "1h",
                "candles": {"GOOG": candle("2023-01-03T14:30:00Z", "89.83", "91.55", "89.02", "89.70", "20738500.00")},
                "symbols_trading": ["GOOG"], "market_session": "regular", "is_eod": false
            }),
        ),
        (
            "simulation_started",
            json!({"session_id": "s-1", "started_at": "2023-11-14T22:13:20Z",
                   "flow_control_enabled": true, "estimated_duration_sec": null,
                   "tick_interval_ms": 0}),
        ),
        (
            "execution_report",
            json!({
                "session_id": "s-1", "execution_id": "E1", "order_id": "o-1",
                "symbol": "GOOG", "side": "buy", "executed_quantity": 10,
                "executed_price": "89.92", "commission": "1.00", "slippage_bps": 10,
                "timestamp": "2023-01-03T15:30:00Z", "order_status": "partially_filled",
                "leaves_quantity": 5, "reason": "entry"
            }),
        ),
        (
            "order_update",
            json!({"session_id": "s-1", "order_id": "o-2", "status": "expired",
                   "reason": "DAY_EXPIRED"}),
        ),
        (
            "account_snapshot",
            json!({
                "session_id": "s-1", "sim_time": "2023-01-03T15:30:00Z",
                "cash": "99099.80", "equity": "100001.30",
                "positions": [{"symbol": "GOOG", "quantity": 10, "avg_cost": "89.92",
                               "market_value": "901.50", "unrealized_pnl": "2.30"}],
                "buying_power": "99099.80", "day_pnl": "1.30", "realized_pnl": "-1.00",
                "open_orders": ["o-1", "o-3"]
            }),
        ),
        (
            "batch_ack",
            json!({
                "batch_id": "b-1", "accepted_orders": ["o-1", "o-3"],
                "rejected_orders": {"o-2": "INSUFFICIENT_BUYING_POWER"},
                "estimated_fills": {"o-1": "89.83", "o-3": "1.07219"}
            }),
        ),
        (
            "orders_cancelled",
            json!({"cancelled": ["o-1"], "not_found": ["o-9"]}),
        ),
        ("simulation_paused", json!({"session_id": "s-1"})),
        ("simulation_resumed", json!({"session_id": "s-1"})),
        (
            "simulation_state",
            json!({"session_id": "s-1", "state": "running", "sequence_id": 42,
                   "sim_time": "2023-01-05T15:30:00Z", "progress_pct": 12.5,
                   "ticks_total": 336}),
        ),
        (
            "simulation_end",
            json!({
                "session_id": "s-1", "final_equity": "103250.50", "total_trades": 12,
                "sharpe_ratio": 1.42, "total_return_pct": 3.2505, "win_rate": 0.5833,
                "max_drawdown_pct": 2.1, "simulation_duration_sec": 3,
                "reason": "completed", "sortino_ratio": 2.05, "calmar_ratio": 3.1,
                "profit_factor": null, "cagr_pct": 6.6, "volatility_ann_pct": 8.75,
                "exposure_pct": 64.0, "buy_and_hold_return_pct": 5.5,
                "best_trade_pct": 2.5, "worst_trade_pct": -1.25, "avg_trade_pct": 0.27,
                "max_drawdown_duration_bars": 37, "total_commission": "12.00",
                "ticks_processed": 336
            }),
        ),
        (
            "sessions",
            json!({"sessions": [{
                "session_id": "s-1", "state": "paused", "symbols": ["AAPL"],
                "timeframe": "5min", "start_date": "2023-01-03T00:00:00Z",
                "end_date": "2023-01-04T00:00:00Z", "created_at": "2023-11-14T22:13:20Z",
                "sequence_id": 10, "ticks_total": 192
            }]}),
        ),
        ("session_closed", json!({"session_id": "s-1"})),
        (
            "session_resumed",
            json!({"session_id": "s-1", "epoch": 2, "resumed_from_sequence": 17,
                   "state": "running"}),
        ),
        (
            "session_error",
            json!({"session_id": null, "error_code": "DATA_FETCH_FAILED",
                   "message": "unknown symbol ZZZZ"}),
        ),
        (
            "error",
            json!({"error_code": "RATE_LIMITED", "message": "too many messages",
                   "error_type": "rate_limit", "severity": "warning", "recoverable": true,
                   "details": {"retry_after_ms": 250}}),
        ),
    ]
}
