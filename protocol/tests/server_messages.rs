//! Server messages: every type parsed from hand-written JSON (field names from
//! PROTOCOL.md) and serialised back to the same JSON; frames written with `to_frame`
//! and read back with `parse_server_frame`.

use model::{Amount, Candle, MarketSession, Price, Timeframe};
use protocol::{
    parse_server_frame, ErrorCode, ErrorData, ServerMessage, SimulationEndData, WireCandle,
};
use serde_json::{json, Value};

mod common;
use common::{candle, server_samples as samples};

/// Parses `{"type": t, "data": data}` and checks it serialises back to the same JSON,
/// and that a frame written from it reads back to the same message.
fn round_trip(t: &str, data: Value) -> ServerMessage {
    let tagged = json!({"type": t, "data": data});
    let msg: ServerMessage =
        serde_json::from_value(tagged.clone()).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(msg.type_name(), t);
    assert_eq!(serde_json::to_value(&msg).unwrap(), tagged, "{t}");

    let frame = msg.to_frame(Some("req-3"), 1_700_000_000);
    let v: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        v,
        json!({"type": t, "data": data, "request_id": "req-3",
               "timestamp": "2023-11-14T22:13:20Z"})
    );
    let parsed = parse_server_frame(&frame).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(parsed.request_id.as_deref(), Some("req-3"));
    assert_eq!(parsed.timestamp.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(
        serde_json::to_value(&parsed.message).unwrap(),
        tagged,
        "{t} via frame"
    );
    msg
}

#[test]
fn every_server_message_round_trips() {
    let samples = samples();
    assert_eq!(samples.len(), ServerMessage::TYPES.len());
    for (t, data) in samples {
        assert!(ServerMessage::TYPES.contains(&t), "{t}");
        round_trip(t, data);
    }
}

#[test]
fn tick_fields_are_typed() {
    let (_, data) = samples().into_iter().find(|(t, _)| *t == "tick").unwrap();
    let ServerMessage::Tick(tick) = round_trip("tick", data) else {
        panic!()
    };
    assert_eq!(tick.sim_time, 1_672_756_200);
    assert_eq!(tick.sequence_id, 1);
    assert_eq!(tick.timeframe, Timeframe::H1);
    assert_eq!(tick.market_session, MarketSession::Regular);
    let c = tick.candles["GOOG"].to_candle().unwrap();
    assert_eq!(c.ts, 1_672_756_200);
    assert_eq!(c.close, "89.7".parse::<Price>().unwrap());
}

#[test]
fn decimals_accept_numbers_and_strings() {
    // A server written in another language might send numbers; both parse the same.
    let as_numbers = json!({"type": "account_snapshot", "data": {
        "session_id": "s", "sim_time": null, "cash": 100000, "equity": 100000.5,
        "positions": [], "buying_power": "100000", "day_pnl": 0, "realized_pnl": -0.25,
        "open_orders": []
    }});
    let ServerMessage::AccountSnapshot(a) =
        parse_server_frame(&as_numbers.to_string()).unwrap().message
    else {
        panic!()
    };
    assert_eq!(a.cash, Amount::from_int(100_000));
    assert_eq!(a.equity, "100000.5".parse().unwrap());
    assert_eq!(a.realized_pnl, "-0.25".parse().unwrap());
    assert_eq!(a.sim_time, None);
    // ...and always go out as strings.
    let out = serde_json::to_value(ServerMessage::AccountSnapshot(a)).unwrap();
    assert_eq!(out["data"]["equity"], "100000.50");
    assert_eq!(out["data"]["day_pnl"], "0.00");
}

#[test]
fn wire_candle_from_engine_candle() {
    let c = Candle {
        ts: 1_672_704_000,
        open: "1.07219".parse().unwrap(),
        high: "1.0735".parse().unwrap(),
        low: "1.0701".parse().unwrap(),
        close: "1.0722".parse().unwrap(),
        volume: "397787.41249925".parse().unwrap(),
    };
    let w = WireCandle::from(&c);
    assert_eq!(
        serde_json::to_value(&w).unwrap(),
        candle(
            "2023-01-03T00:00:00Z",
            "1.07219",
            "1.0735",
            "1.0701",
            "1.0722",
            "397787.41249925"
        )
    );
    assert_eq!(w.to_candle().unwrap(), c);
}

#[test]
fn simulation_end_non_finite_ratios_become_null() {
    let (_, data) = samples()
        .into_iter()
        .find(|(t, _)| *t == "simulation_end")
        .unwrap();
    let mut end: SimulationEndData = serde_json::from_value(data).unwrap();
    end.sharpe_ratio = f64::NAN;
    end.calmar_ratio = f64::INFINITY;
    end.profit_factor = Some(1.8);
    let v = serde_json::to_value(ServerMessage::SimulationEnd(end)).unwrap();
    assert_eq!(v["data"]["sharpe_ratio"], Value::Null);
    assert_eq!(v["data"]["calmar_ratio"], Value::Null);
    assert_eq!(v["data"]["profit_factor"], 1.8);
    let back: ServerMessage = serde_json::from_value(v).unwrap();
    let ServerMessage::SimulationEnd(back) = back else {
        panic!()
    };
    assert!(back.sharpe_ratio.is_nan());
    assert_eq!(back.win_rate, 0.5833);
}

#[test]
fn optional_fields_have_their_documented_shape() {
    // queue_position appears only when queued.
    let (_, mut data) = samples()
        .into_iter()
        .find(|(t, _)| *t == "session_created")
        .unwrap();
    data["queue_position"] = json!(3);
    round_trip("session_created", data);
    // details may be null.
    let e = ErrorData::new(ErrorCode::UnknownType, "unknown message type `x`");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"error_code": "UNKNOWN_TYPE", "message": "unknown message type `x`",
               "error_type": "validation", "severity": "error", "recoverable": true,
               "details": null})
    );
    // An empty warm-up has null bounds.
    round_trip(
        "history_snapshot",
        json!({"session_id": "s", "timeframe": "1min", "candles": {"A": []},
               "start": null, "end": null, "count": 0}),
    );
}

#[test]
fn parse_server_frame_errors() {
    let e = parse_server_frame(r#"{"type": "brand_new_thing", "data": {}}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownType);
    let e =
        parse_server_frame(r#"{"type": "tick", "data": {"session_id": "s"}, "request_id": "r"}"#)
            .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert_eq!(e.field.as_deref(), Some("sim_time"), "{e}");
    assert_eq!(e.request_id.as_deref(), Some("r"));
    let e = parse_server_frame(
        r#"{"type": "pong", "data": {"server_time": "2023-01-03T00:00:00Z"}, "timestamp": 5}"#,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let e = parse_server_frame("[]").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidJson);
}
