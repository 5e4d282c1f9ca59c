//! `/api/sessions` bodies (PROTOCOL.md section 6): exact JSON both ways.

use protocol::{
    EndReason, EquityPoint, SessionDetail, SessionEntry, SessionListResponse, SimulationState,
    TradeData,
};
use serde_json::json;

fn finished_entry() -> serde_json::Value {
    json!({
        "session_id": "sess_1", "state": "completed", "symbols": ["GOOG"],
        "timeframe": "daily", "start_date": "2004-01-01T00:00:00Z",
        "end_date": "2014-01-01T00:00:00Z", "created_at": "2024-03-01T12:00:00Z",
        "initial_capital": "100000.00", "finished_at": "2024-03-01T12:00:03Z",
        "reason": "completed", "final_equity": "194777.00", "total_return_pct": 94.777,
        "total_trades": 12
    })
}

#[test]
fn list_entries_omit_what_does_not_apply() {
    let body = json!({"sessions": [finished_entry(), {
        "session_id": "sess_2", "state": "running", "symbols": ["GOOG", "AAPL"],
        "timeframe": "1h", "start_date": "2020-01-01T00:00:00Z",
        "end_date": "2020-02-01T00:00:00Z", "created_at": "2024-03-01T12:05:00Z",
        "initial_capital": "5000.00", "sequence_id": 17, "ticks_total": 300
    }], "offset": 0, "limit": 50});
    let list: SessionListResponse = serde_json::from_value(body.clone()).unwrap();
    let done = &list.sessions[0];
    assert_eq!(done.state, SimulationState::Completed);
    assert_eq!(done.reason, Some(EndReason::Completed));
    assert_eq!(done.final_equity, Some("194777.00".parse().unwrap()));
    assert_eq!(done.finished_at, Some(1_709_294_403));
    let live = &list.sessions[1];
    assert_eq!(
        (live.finished_at, live.reason, live.total_trades),
        (None, None, None)
    );
    assert_eq!((live.sequence_id, live.ticks_total), (Some(17), Some(300)));
    assert_eq!(serde_json::to_value(&list).unwrap(), body);
}

#[test]
fn detail_of_a_finished_session() {
    let mut body = finished_entry();
    let extra = json!({
        "params": {"symbols": ["GOOG"], "metadata": {"run": 7}},
        "metrics": {
            "session_id": "sess_1", "final_equity": "194777.00", "total_trades": 12,
            "sharpe_ratio": 0.71, "total_return_pct": 94.777, "win_rate": 0.5,
            "max_drawdown_pct": 23.1, "simulation_duration_sec": 2, "reason": "completed",
            "sortino_ratio": 1.1, "calmar_ratio": null, "profit_factor": 2.5,
            "cagr_pct": 6.9, "volatility_ann_pct": 20.5, "exposure_pct": 60.0,
            "buy_and_hold_return_pct": 1100.5, "best_trade_pct": 40.0,
            "worst_trade_pct": -8.0, "avg_trade_pct": 7.0,
            "max_drawdown_duration_bars": 400, "total_commission": "0.00",
            "ticks_processed": 2148
        },
        "trades": [{
            "symbol": "GOOG", "side": "long", "quantity": 100,
            "entry_time": "2004-11-02T00:00:00Z", "exit_time": "2004-12-20T00:00:00Z",
            "entry_price": "98.50", "exit_price": "120.25", "pnl": "2175.00",
            "commission": "0.00", "return_pct": 22.08
        }],
        "equity_curve": [
            {"time": "2004-08-19T00:00:00Z", "equity": "100000.00"},
            {"time": "2013-12-31T00:00:00Z", "equity": "194777.00"}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let detail: SessionDetail = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(detail.session.session_id, "sess_1");
    let metrics = detail.metrics.as_ref().unwrap();
    assert_eq!(metrics.ticks_processed, 2148);
    assert!(metrics.calmar_ratio.is_nan());
    assert_eq!(
        detail.trades.as_ref().unwrap()[0],
        TradeData {
            symbol: "GOOG".into(),
            side: "long".into(),
            quantity: 100,
            entry_time: 1_099_353_600,
            exit_time: 1_103_500_800,
            entry_price: "98.50".parse().unwrap(),
            exit_price: "120.25".parse().unwrap(),
            pnl: "2175.00".parse().unwrap(),
            commission: "0.00".parse().unwrap(),
            return_pct: 22.08,
        }
    );
    assert_eq!(
        detail.equity_curve.as_ref().unwrap()[1],
        EquityPoint {
            time: 1_388_448_000,
            equity: "194777.00".parse().unwrap()
        }
    );
    assert_eq!((detail.sim_time, detail.progress_pct), (None, None));
    assert_eq!(serde_json::to_value(&detail).unwrap(), body);
}

#[test]
fn detail_of_a_live_session() {
    let detail = SessionDetail {
        session: SessionEntry {
            session_id: "sess_live".into(),
            state: SimulationState::Paused,
            symbols: vec!["EURUSD".into()],
            timeframe: model::Timeframe::Min5,
            start_date: 1_577_836_800,
            end_date: 1_580_515_200,
            created_at: 1_709_294_400,
            initial_capital: "1000".parse().unwrap(),
            finished_at: None,
            reason: None,
            final_equity: None,
            total_return_pct: None,
            total_trades: None,
            sequence_id: Some(0),
            ticks_total: Some(8928),
        },
        params: json!({}),
        sim_time: None,
        progress_pct: Some(0.0),
        metrics: None,
        trades: None,
        equity_curve: None,
        analytics: None,
    };
    let value = serde_json::to_value(&detail).unwrap();
    assert_eq!(
        value,
        json!({
            "session_id": "sess_live", "state": "paused", "symbols": ["EURUSD"],
            "timeframe": "5min", "start_date": "2020-01-01T00:00:00Z",
            "end_date": "2020-02-01T00:00:00Z", "created_at": "2024-03-01T12:00:00Z",
            "initial_capital": "1000.00", "sequence_id": 0, "ticks_total": 8928,
            "params": {}, "progress_pct": 0.0
        })
    );
    let back: SessionDetail = serde_json::from_value(value).unwrap();
    assert_eq!(back, detail);
}
