//! Client messages: every type parsed from hand-written JSON (field names from
//! PROTOCOL.md) and serialised back to the same JSON, documented defaults, dates and
//! decimals in both forms.

use model::{Amount, Price, Timeframe};
use protocol::{
    parse_client_frame, ClientMessage, ExecutionMode, MarketHours, OrderRequest, OrderType,
    ProcessingStatus, SessionParams, Side, TimeInForce,
};
use serde_json::{json, Value};

mod common;

fn frame(t: &str, data: Value) -> String {
    json!({"type": t, "data": data, "request_id": "req-1"}).to_string()
}

fn parse(t: &str, data: Value) -> ClientMessage {
    let (msg, rid) = parse_client_frame(&frame(t, data)).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(rid.as_deref(), Some("req-1"));
    assert_eq!(msg.type_name(), t);
    msg
}

/// Parses `data` as a `t` message and checks it serialises back to exactly `data`.
fn round_trip(t: &str, data: Value) -> ClientMessage {
    let msg = parse(t, data.clone());
    assert_eq!(
        serde_json::to_value(&msg).unwrap(),
        json!({"type": t, "data": data}),
        "{t}"
    );
    // The derived Deserialize agrees with the frame parser.
    let again: ClientMessage = serde_json::from_value(json!({"type": t, "data": data})).unwrap();
    assert_eq!(again, msg);
    msg
}

fn full_params() -> Value {
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

#[test]
fn start_simulation_all_fields() {
    let msg = round_trip("start_simulation", full_params());
    let ClientMessage::StartSimulation(p) = msg else {
        panic!("wrong variant")
    };
    assert_eq!(p.symbols, ["AAPL", "GOOG"]);
    assert_eq!(p.start_date, 1_672_704_000);
    assert_eq!(p.initial_capital, Amount::from_int(100_000));
    assert_eq!(p.timeframe, Timeframe::H1);
    assert_eq!(p.commission_per_share, Some("0.005".parse().unwrap()));
    assert_eq!(p.market_hours, MarketHours::Regular);
    assert_eq!(p.metadata.unwrap()["strategy"], "sma");
}

#[test]
fn start_simulation_defaults() {
    // What the official SDK sends, minus `adjusted`, with a JSON number for capital.
    let msg = parse(
        "start_simulation",
        json!({
            "symbols": ["AAPL"],
            "start_date": "2023-01-03",
            "end_date": "2023-02-01",
            "initial_capital": 100000,
            "timeframe": "daily",
            "unknown_field": {"ignored": true}
        }),
    );
    let ClientMessage::StartSimulation(p) = msg else {
        panic!("wrong variant")
    };
    let expected = SessionParams::new(
        vec!["AAPL".into()],
        1_672_704_000,
        1_675_209_600,
        Amount::from_int(100_000),
        Timeframe::Daily,
    );
    assert_eq!(p, expected);
    assert_eq!(p.warmup_bars, 0);
    assert!(p.adjusted);
    assert!(!p.flow_control);
    assert_eq!(p.max_pending_ticks, 1);
    assert_eq!(p.tick_interval_ms, 0);
    assert!(!p.allow_short);
    assert_eq!(p.account_snapshot_every, 0);
    assert_eq!(p.market_hours, MarketHours::All);
    assert_eq!(p.data_provider, None);
    assert_eq!(p.slippage_bps, None);
    assert_eq!(p.metadata, None);
    // Bare dates serialise back as RFC 3339 midnight UTC; optional fields stay absent.
    assert_eq!(
        serde_json::to_value(ClientMessage::StartSimulation(p)).unwrap()["data"],
        json!({
            "symbols": ["AAPL"],
            "start_date": "2023-01-03T00:00:00Z",
            "end_date": "2023-02-01T00:00:00Z",
            "initial_capital": "100000.00",
            "timeframe": "daily",
            "warmup_bars": 0,
            "adjusted": true,
            "flow_control": false,
            "max_pending_ticks": 1,
            "tick_interval_ms": 0,
            "allow_short": false,
            "account_snapshot_every": 0,
            "market_hours": "all"
        })
    );
}

#[test]
fn sdk_isoformat_dates_and_float_capital() {
    // Python's datetime.isoformat(): naive, offset-aware, with microseconds.
    for (text, ts) in [
        ("2023-01-03T00:00:00", 1_672_704_000),
        ("2023-01-03T00:00:00+00:00", 1_672_704_000),
        ("2023-01-03T09:30:00-05:00", 1_672_756_200),
        ("2023-01-03T00:00:00.250000", 1_672_704_000),
    ] {
        let mut data = full_params();
        data["start_date"] = json!(text);
        data["initial_capital"] = json!(2500.75);
        let ClientMessage::StartSimulation(p) = parse("start_simulation", data) else {
            panic!()
        };
        assert_eq!(p.start_date, ts, "{text}");
        assert_eq!(p.initial_capital, "2500.75".parse().unwrap());
    }
}

#[test]
fn create_session_with_and_without_id() {
    let mut data = full_params();
    data["session_id"] = json!("my-session");
    let msg = round_trip("create_session", data);
    let ClientMessage::CreateSession(d) = &msg else {
        panic!()
    };
    assert_eq!(d.session_id.as_deref(), Some("my-session"));
    assert_eq!(d.params.symbols, ["AAPL", "GOOG"]);
    assert_eq!(msg.session_id(), Some("my-session"));

    let ClientMessage::CreateSession(d) = round_trip("create_session", full_params()) else {
        panic!()
    };
    assert_eq!(d.session_id, None);
}

#[test]
fn simulation_start_defaults_to_flow_control() {
    let ClientMessage::SimulationStart(d) = parse("simulation_start", json!({"session_id": "s1"}))
    else {
        panic!()
    };
    assert!(d.flow_control);
    assert_eq!(d.max_pending_ticks, 1);
    round_trip(
        "simulation_start",
        json!({"session_id": "s1", "flow_control": false, "max_pending_ticks": 8}),
    );
}

#[test]
fn tick_ack() {
    let ClientMessage::TickAck(d) = round_trip(
        "tick_ack",
        json!({"session_id": "s1", "sequence_id": 42, "processing_status": "need_time",
               "orders_pending": 2, "max_wait_ms": 500}),
    ) else {
        panic!()
    };
    assert_eq!(d.sequence_id, 42);
    assert_eq!(d.processing_status, ProcessingStatus::NeedTime);
    let ClientMessage::TickAck(d) =
        parse("tick_ack", json!({"session_id": "s1", "sequence_id": 1}))
    else {
        panic!()
    };
    assert_eq!(
        (d.processing_status, d.orders_pending, d.max_wait_ms),
        (ProcessingStatus::Ready, 0, 1000)
    );
}

#[test]
fn order_batch_all_order_shapes() {
    let data = json!({
        "session_id": "s1",
        "batch_id": "b1",
        "orders": [
            {"order_id": "o1", "symbol": "AAPL", "side": "buy", "type": "market",
             "quantity": 10, "time_in_force": "day"},
            {"order_id": "o2", "symbol": "AAPL", "side": "sell", "type": "limit",
             "quantity": 5, "price": "151.25", "time_in_force": "gtc"},
            {"order_id": "o3", "symbol": "GOOG", "side": "buy", "type": "stop",
             "quantity": 1, "stop_price": "99.50", "time_in_force": "ioc"},
            {"order_id": "o4", "symbol": "GOOG", "side": "buy", "type": "stop_limit",
             "quantity": 3, "price": "101.00", "stop_price": "100.00",
             "stop_loss": "95.00", "take_profit": "110.00", "time_in_force": "day"}
        ],
        "execution_mode": "atomic"
    });
    let ClientMessage::OrderBatch(b) = round_trip("order_batch", data) else {
        panic!()
    };
    assert_eq!(b.execution_mode, ExecutionMode::Atomic);
    assert_eq!(
        b.orders[0],
        OrderRequest::market("o1", "AAPL", Side::Buy, 10)
    );
    assert_eq!(b.orders[3].order_type, OrderType::StopLimit);
    assert_eq!(b.orders[2].time_in_force, TimeInForce::Ioc);
}

#[test]
fn order_batch_defaults_and_numeric_prices() {
    // The SDK sends prices as JSON numbers and may omit execution_mode / time_in_force.
    let ClientMessage::OrderBatch(b) = parse(
        "order_batch",
        json!({
            "session_id": "s1", "batch_id": "b1",
            "parent_strategy": "ignored",
            "orders": [{"order_id": "o1", "symbol": "EURUSD", "side": "buy",
                        "type": "limit", "quantity": 1000, "price": 1.07219,
                        "stop_loss": 1, "take_profit": "1.1"}]
        }),
    ) else {
        panic!()
    };
    assert_eq!(b.execution_mode, ExecutionMode::BestEffort);
    let o = &b.orders[0];
    assert_eq!(o.time_in_force, TimeInForce::Day);
    assert_eq!(o.price, Some("1.07219".parse::<Price>().unwrap()));
    assert_eq!(o.stop_loss, Some(Price::from_int(1)));
    assert_eq!(o.take_profit, Some("1.1".parse().unwrap()));
}

#[test]
fn cancel_orders() {
    round_trip(
        "cancel_orders",
        json!({"session_id": "s1", "order_ids": ["o1", "o2"]}),
    );
}

#[test]
fn session_only_messages() {
    for t in [
        "pause_simulation",
        "resume_simulation",
        "get_simulation_state",
        "stop_simulation",
        "get_account",
        "close_session",
    ] {
        let msg = round_trip(t, json!({"session_id": "s1"}));
        assert_eq!(msg.session_id(), Some("s1"));
    }
}

#[test]
fn parameterless_messages() {
    for t in ["list_sessions", "ping"] {
        round_trip(t, json!({}));
        // Missing and null data are fine, extra fields are ignored.
        let (msg, rid) = parse_client_frame(&json!({"type": t}).to_string()).unwrap();
        assert_eq!((msg.type_name(), rid), (t, None));
        parse_client_frame(&json!({"type": t, "data": null}).to_string()).unwrap();
        parse_client_frame(&json!({"type": t, "data": {"x": 1}}).to_string()).unwrap();
    }
}

#[test]
fn resume_session() {
    let ClientMessage::ResumeSession(d) = round_trip(
        "resume_session",
        json!({"session_id": "s1", "last_sequence_id": 17, "epoch": 3}),
    ) else {
        panic!()
    };
    assert_eq!((d.last_sequence_id, d.epoch), (17, Some(3)));
    round_trip(
        "resume_session",
        json!({"session_id": "s1", "last_sequence_id": 0}),
    );
}

#[test]
fn every_type_is_covered_and_named_consistently() {
    let samples = common::client_samples();
    assert_eq!(samples.len(), ClientMessage::TYPES.len());
    for (t, data) in samples {
        assert!(ClientMessage::TYPES.contains(&t));
        let msg = parse(t, data);
        // The serde tag and type_name() agree.
        assert_eq!(serde_json::to_value(&msg).unwrap()["type"], t);
    }
}

#[test]
fn to_frame_is_an_envelope() {
    let msg = ClientMessage::Ping(protocol::Empty {});
    let v: Value = serde_json::from_str(&msg.to_frame(Some("r9"))).unwrap();
    assert_eq!(
        v,
        json!({"type": "ping", "data": {}, "request_id": "r9", "timestamp": null})
    );
    let (back, rid) = parse_client_frame(&msg.to_frame(None)).unwrap();
    assert_eq!((back, rid), (msg, None));
}
