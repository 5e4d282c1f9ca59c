//! Classification of bad client frames (PROTOCOL.md section 5) and the answers built
//! from them.

use protocol::{parse_client_frame, ErrorCode, ProtocolError, ServerMessage};
use serde_json::{json, Value};

fn err(text: &str) -> ProtocolError {
    match parse_client_frame(text) {
        Ok((msg, _)) => panic!("accepted {text}: {msg:?}"),
        Err(e) => e,
    }
}

fn err_data(t: &str, data: Value) -> ProtocolError {
    err(&json!({"type": t, "data": data, "request_id": "rid-7"}).to_string())
}

fn params() -> Value {
    json!({
        "symbols": ["AAPL", "MSFT"],
        "start_date": "2023-01-03",
        "end_date": "2023-03-01",
        "initial_capital": "10000",
        "timeframe": "daily"
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

#[track_caller]
fn assert_err(e: &ProtocolError, code: ErrorCode, field: &str) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.field.as_deref(), Some(field), "{e}");
    assert!(
        e.message.contains(field),
        "message should name {field}: {e}"
    );
}

#[test]
fn not_json_or_not_an_object_is_invalid_json() {
    for text in [
        "",
        "{",
        "{\"type\": \"ping\"",
        "not json",
        "[1, 2]",
        "\"ping\"",
        "42",
        "null",
        "{\"type\": \"ping\"} trailing",
    ] {
        let e = err(text);
        assert_eq!(e.code, ErrorCode::InvalidJson, "{text}: {e}");
        assert_eq!(e.request_id, None);
    }
}

#[test]
fn missing_or_non_string_type_is_invalid_params() {
    for text in [
        r#"{"data": {}, "request_id": "rid-7"}"#,
        r#"{"type": null, "request_id": "rid-7"}"#,
        r#"{"type": 5, "request_id": "rid-7"}"#,
        r#"{"type": ["ping"], "request_id": "rid-7"}"#,
    ] {
        let e = err(text);
        assert_err(&e, ErrorCode::InvalidParams, "type");
        assert_eq!(e.request_id.as_deref(), Some("rid-7"), "{text}");
    }
}

#[test]
fn non_string_request_id_is_invalid_params() {
    let e = err(r#"{"type": "ping", "request_id": 12}"#);
    assert_err(&e, ErrorCode::InvalidParams, "request_id");
}

#[test]
fn unknown_type_names_the_type() {
    let e = err_data("start_simulaton", json!({}));
    assert_eq!(e.code, ErrorCode::UnknownType);
    assert!(e.message.contains("start_simulaton"), "{e}");
    assert_eq!(e.request_id.as_deref(), Some("rid-7"));
    // Unknown beats a malformed payload; a huge type name is not echoed in full.
    let long = "x".repeat(10_000);
    let e = err(&json!({"type": long, "data": 5}).to_string());
    assert_eq!(e.code, ErrorCode::UnknownType);
    assert!(e.message.len() < 200);
}

#[test]
fn data_must_be_an_object() {
    for data in [json!(1), json!("x"), json!([]), json!(true)] {
        let e = err_data("ping", data);
        assert_err(&e, ErrorCode::InvalidParams, "data");
        assert_eq!(e.request_id.as_deref(), Some("rid-7"));
    }
}

#[test]
fn missing_fields_are_invalid_params_naming_the_field() {
    for field in [
        "symbols",
        "start_date",
        "end_date",
        "initial_capital",
        "timeframe",
    ] {
        let e = err_data("start_simulation", without(params(), field));
        assert_err(&e, ErrorCode::InvalidParams, field);
        assert_eq!(e.request_id.as_deref(), Some("rid-7"));
        assert_eq!(e.message_type.as_deref(), Some("start_simulation"));
    }
    for (t, data, field) in [
        ("simulation_start", json!({}), "session_id"),
        ("tick_ack", json!({"session_id": "s"}), "sequence_id"),
        (
            "order_batch",
            json!({"session_id": "s", "orders": []}),
            "batch_id",
        ),
        ("cancel_orders", json!({"session_id": "s"}), "order_ids"),
        ("pause_simulation", json!({}), "session_id"),
        ("get_account", json!({}), "session_id"),
        (
            "resume_session",
            json!({"session_id": "s"}),
            "last_sequence_id",
        ),
    ] {
        assert_err(&err_data(t, data), ErrorCode::InvalidParams, field);
    }
    // Nested: the path names the order.
    let e = err_data(
        "order_batch",
        json!({"session_id": "s", "batch_id": "b", "orders": [
            {"order_id": "o1", "symbol": "A", "side": "buy", "type": "market", "quantity": 1},
            {"order_id": "o2", "symbol": "A", "type": "market", "quantity": 1}
        ]}),
    );
    assert_err(&e, ErrorCode::InvalidParams, "orders[1].side");
}

#[test]
fn wrong_types_are_invalid_params_naming_the_field() {
    for (field, bad) in [
        ("symbols", json!("AAPL")),
        ("start_date", json!(20230103)),
        ("start_date", json!("03/01/2023")),
        ("end_date", json!("2023-02-30")),
        ("initial_capital", json!("ten thousand")),
        ("initial_capital", json!(true)),
        ("initial_capital", json!("0.000000001")),
        ("initial_capital", json!("1e2147483647")),
        ("timeframe", json!("1d")),
        ("warmup_bars", json!(-1)),
        ("warmup_bars", json!(1.5)),
        ("warmup_bars", json!("10")),
        ("adjusted", json!("yes")),
        ("data_provider", json!(7)),
        ("commission_per_share", json!("cheap")),
        ("slippage_bps", json!(-3)),
        ("metadata", json!([1, 2])),
        ("flow_control", json!(1)),
        ("max_pending_ticks", json!(1e20)),
        ("tick_interval_ms", json!(-5)),
        ("allow_short", json!(null)),
        ("account_snapshot_every", json!({})),
        ("market_hours", json!("night")),
    ] {
        let e = err_data("start_simulation", with(params(), field, bad.clone()));
        assert_err(&e, ErrorCode::InvalidParams, field);
        assert_eq!(e.request_id.as_deref(), Some("rid-7"), "{field}={bad}");
    }
    let e = err_data(
        "start_simulation",
        with(params(), "symbols", json!(["A", 1])),
    );
    assert_err(&e, ErrorCode::InvalidParams, "symbols[1]");
    let order = json!({"order_id": "o1", "symbol": "A", "side": "buy", "type": "limit",
                       "quantity": 1, "price": "10"});
    for (field, bad) in [
        ("side", json!("long")),
        ("type", json!("trailing_stop")),
        ("quantity", json!(1.5)),
        ("quantity", json!("1")),
        ("price", json!("abc")),
        ("price", json!("1e-99999")),
        ("stop_loss", json!([])),
        ("time_in_force", json!("fok")),
    ] {
        let e = err_data(
            "order_batch",
            json!({"session_id": "s", "batch_id": "b", "orders": [with(order.clone(), field, bad)]}),
        );
        assert_err(&e, ErrorCode::InvalidParams, &format!("orders[0].{field}"));
    }
    let e = err_data(
        "order_batch",
        json!({"session_id": "s", "batch_id": "b", "orders": [order], "execution_mode": "all"}),
    );
    assert_err(&e, ErrorCode::InvalidParams, "execution_mode");
    let e = err_data(
        "tick_ack",
        json!({"session_id": "s", "sequence_id": 1, "processing_status": "done"}),
    );
    assert_err(&e, ErrorCode::InvalidParams, "processing_status");
}

#[test]
fn semantic_problems_are_validation_errors() {
    for (field, value, named) in [
        ("symbols", json!([]), "symbols"),
        ("symbols", json!(["AAPL", "AAPL"]), "symbols[1]"),
        ("symbols", json!(["AAPL", ""]), "symbols[1]"),
        ("end_date", json!("2023-01-03"), "end_date"),
        ("end_date", json!("2022-12-31"), "end_date"),
        ("initial_capital", json!("0"), "initial_capital"),
        ("initial_capital", json!(-5), "initial_capital"),
        ("warmup_bars", json!(1_000_000), "warmup_bars"),
        (
            "commission_per_share",
            json!("-0.01"),
            "commission_per_share",
        ),
        ("slippage_bps", json!(10_001), "slippage_bps"),
        ("max_pending_ticks", json!(0), "max_pending_ticks"),
        ("tick_interval_ms", json!(3_600_000), "tick_interval_ms"),
    ] {
        for t in ["start_simulation", "create_session"] {
            let e = err_data(t, with(params(), field, value.clone()));
            assert_err(&e, ErrorCode::ValidationError, named);
            assert_eq!(e.request_id.as_deref(), Some("rid-7"));
        }
    }
    let e = err_data("create_session", with(params(), "session_id", json!("")));
    assert_err(&e, ErrorCode::InvalidParams, "session_id");
    let e = err_data(
        "simulation_start",
        json!({"session_id": "s", "max_pending_ticks": 0}),
    );
    assert_err(&e, ErrorCode::ValidationError, "max_pending_ticks");
    for q in [0, -10] {
        let e = err_data(
            "order_batch",
            json!({"session_id": "s", "batch_id": "b", "orders": [
                {"order_id": "o1", "symbol": "A", "side": "buy", "type": "market", "quantity": 1},
                {"order_id": "o2", "symbol": "A", "side": "buy", "type": "market", "quantity": q}
            ]}),
        );
        assert_err(&e, ErrorCode::ValidationError, "orders[1].quantity");
    }
}

#[test]
fn answers_echo_and_pick_the_right_message() {
    // A bad start is a session_error with session_id null (PROTOCOL.md section 3).
    let e = err_data("start_simulation", with(params(), "symbols", json!([])));
    let ServerMessage::SessionError(d) = e.to_server_message() else {
        panic!("expected session_error")
    };
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"session_id": null, "error_code": "VALIDATION_ERROR", "message": e.message})
    );
    // Anything else is an error whose details name the field.
    let e = err_data("tick_ack", json!({"session_id": "s", "sequence_id": "x"}));
    let msg = e.to_server_message();
    let frame: Value = serde_json::from_str(&msg.to_frame(e.request_id.as_deref(), 0)).unwrap();
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["request_id"], "rid-7");
    assert_eq!(frame["data"]["error_code"], "INVALID_PARAMS");
    assert_eq!(frame["data"]["error_type"], "validation");
    assert_eq!(frame["data"]["severity"], "error");
    assert_eq!(frame["data"]["recoverable"], true);
    assert_eq!(
        frame["data"]["details"],
        json!({"field": "sequence_id", "type": "tick_ack"})
    );
    let e = err("{");
    assert!(matches!(e.to_server_message(), ServerMessage::Error(_)));
}

/// An order in a batch with `order_id`.
fn batch_with_order_id(order_id: Value) -> Value {
    json!({"session_id": "s", "batch_id": "b", "orders": [
        {"order_id": "ok", "symbol": "A", "side": "buy", "type": "market", "quantity": 1},
        {"order_id": order_id, "symbol": "A", "side": "buy", "type": "market", "quantity": 1}
    ]})
}

#[test]
fn client_strings_are_bounded_and_never_echoed() {
    let long = "x".repeat(100_000);
    let bad_strings = [
        json!(long.clone()),
        json!("a\u{0}b"),
        json!("line\nbreak"),
        json!("esc\u{1b}[31m"),
        json!("rtl\u{202e}txt"),
        json!("zero\u{200b}width"),
    ];
    for bad in &bad_strings {
        let e = err_data("order_batch", batch_with_order_id(bad.clone()));
        assert_err(&e, ErrorCode::InvalidParams, "orders[1].order_id");
        assert!(e.message.len() < 200, "{}", e.message);
        assert!(!e.message.contains("xxxxxxxxxx"), "{}", e.message);
        let e = err_data(
            "cancel_orders",
            json!({"session_id": "s", "order_ids": ["a", bad]}),
        );
        assert_err(&e, ErrorCode::InvalidParams, "order_ids[1]");
        let e = err_data(
            "order_batch",
            json!({"session_id": "s", "batch_id": bad, "orders": []}),
        );
        assert_err(&e, ErrorCode::InvalidParams, "batch_id");
        for t in [
            "tick_ack",
            "get_account",
            "resume_session",
            "simulation_start",
        ] {
            let data = match t {
                "tick_ack" => json!({"session_id": bad, "sequence_id": 1}),
                "resume_session" => json!({"session_id": bad, "last_sequence_id": 0}),
                _ => json!({"session_id": bad}),
            };
            let e = err_data(t, data);
            assert_err(&e, ErrorCode::InvalidParams, "session_id");
        }
        let e = err_data("create_session", with(params(), "session_id", bad.clone()));
        assert_err(&e, ErrorCode::InvalidParams, "session_id");
        let e = err_data(
            "start_simulation",
            with(params(), "data_provider", bad.clone()),
        );
        assert_err(&e, ErrorCode::InvalidParams, "data_provider");
        let e = err_data(
            "start_simulation",
            with(params(), "symbols", json!(["AAPL", bad])),
        );
        assert_err(&e, ErrorCode::InvalidParams, "symbols[1]");
        // A bad request id is refused and not echoed.
        let e = err(&json!({"type": "ping", "data": {}, "request_id": bad}).to_string());
        assert_err(&e, ErrorCode::InvalidParams, "request_id");
        assert_eq!(e.request_id, None);
    }
    // At the bounds: accepted.
    let id = "o".repeat(protocol::validate::MAX_ORDER_ID_LEN);
    let rid = "r".repeat(protocol::validate::MAX_REQUEST_ID_LEN);
    let frame = json!({"type": "order_batch", "data": batch_with_order_id(json!(id)),
        "request_id": rid});
    let (_, got) = parse_client_frame(&frame.to_string()).unwrap();
    assert_eq!(got.as_deref(), Some(rid.as_str()));
    // One byte more: refused.
    let e = err_data("order_batch", batch_with_order_id(json!(format!("{id}o"))));
    assert_err(&e, ErrorCode::InvalidParams, "orders[1].order_id");
    let e = err_data("order_batch", batch_with_order_id(json!("")));
    assert_err(&e, ErrorCode::InvalidParams, "orders[1].order_id");
    // Printable Unicode is fine.
    parse_client_frame(
        &json!({"type": "order_batch", "data": batch_with_order_id(json!("ordre-été-1"))})
            .to_string(),
    )
    .unwrap();
}

#[test]
fn metadata_is_bounded_in_size_and_depth() {
    use protocol::validate::{MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
    let big = json!({"blob": "x".repeat(MAX_METADATA_BYTES)});
    let e = err_data("start_simulation", with(params(), "metadata", big));
    assert_err(&e, ErrorCode::InvalidParams, "metadata");
    assert!(e.message.len() < 200, "{}", e.message);
    // Just under the size: accepted ({"blob":"..."} is 11 bytes of framing).
    let fits = json!({"blob": "x".repeat(MAX_METADATA_BYTES - 11)});
    parse_client_frame(
        &json!({"type": "start_simulation", "data": with(params(), "metadata", fits)}).to_string(),
    )
    .unwrap();
    let nested = |levels: usize| {
        let mut v = json!({"k": 1});
        for _ in 1..levels {
            v = json!({ "k": v });
        }
        v
    };
    let ok = nested(MAX_METADATA_DEPTH);
    parse_client_frame(
        &json!({"type": "create_session", "data": with(params(), "metadata", ok)}).to_string(),
    )
    .unwrap();
    let deep = nested(MAX_METADATA_DEPTH + 1);
    let e = err_data("create_session", with(params(), "metadata", deep));
    assert_err(&e, ErrorCode::InvalidParams, "metadata");
    let arrays = json!({"a": [[[[[[[[1]]]]]]]]});
    let e = err_data("start_simulation", with(params(), "metadata", arrays));
    assert_err(&e, ErrorCode::InvalidParams, "metadata");
}

#[test]
fn deserializer_messages_do_not_quote_huge_values() {
    let side = "s".repeat(50_000);
    let e = err_data(
        "order_batch",
        json!({"session_id": "s", "batch_id": "b", "orders": [
            {"order_id": "o", "symbol": "A", "side": side, "type": "market", "quantity": 1}
        ]}),
    );
    assert_err(&e, ErrorCode::InvalidParams, "orders[0].side");
    assert!(e.message.len() < 400, "{}", e.message.len());
}
