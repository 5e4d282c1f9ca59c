//! Malformed input never panics the parsers, every failure is classified with one of
//! the four parse codes, errors echo the request id, and whatever parses survives a
//! round trip through `to_frame`.

use proptest::prelude::*;
use protocol::{parse_client_frame, parse_server_frame, ClientMessage, ErrorCode};
use serde_json::{json, Value};

mod common;

const PARSE_CODES: [ErrorCode; 4] = [
    ErrorCode::InvalidJson,
    ErrorCode::InvalidParams,
    ErrorCode::UnknownType,
    ErrorCode::ValidationError,
];

/// Runs the client parser on `text` and checks the contract of its result.
fn check_client(text: &str) {
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    };
    match parse_client_frame(text) {
        Ok((msg, request_id)) => {
            assert!(ClientMessage::TYPES.contains(&msg.type_name()));
            // What the gateway accepted, the Rust client can send again, identically.
            let again = parse_client_frame(&msg.to_frame(request_id.as_deref()))
                .unwrap_or_else(|e| panic!("re-parse of {text}: {e}"));
            assert_eq!(again, (msg, request_id));
        }
        Err(e) => {
            assert!(PARSE_CODES.contains(&e.code), "{e}");
            match &object {
                None => assert_eq!(e.code, ErrorCode::InvalidJson, "{text}"),
                Some(o) => {
                    assert_ne!(e.code, ErrorCode::InvalidJson, "{text}");
                    if let Some(Value::String(rid)) = o.get("request_id") {
                        // Echoed when it is within bounds; never when it is not.
                        let echoable = protocol::validate::check_text(
                            "request_id",
                            rid,
                            protocol::validate::MAX_REQUEST_ID_LEN,
                            true,
                        )
                        .is_ok();
                        if echoable {
                            assert_eq!(e.request_id.as_deref(), Some(rid.as_str()));
                        } else {
                            assert_eq!(e.request_id, None, "{text}");
                        }
                    }
                    // Nothing the client sent comes back in full.
                    assert!(e.message.len() <= 600, "{}", e.message);
                }
            }
            // Building the answer is total too.
            let frame = e.to_server_message().to_frame(e.request_id.as_deref(), 0);
            parse_server_frame(&frame).expect("error frames parse");
        }
    }
}

fn check_server(text: &str) {
    if let Ok(frame) = parse_server_frame(text) {
        let again = parse_server_frame(&frame.message.to_frame(None, 0)).unwrap();
        assert_eq!(again.message.type_name(), frame.message.type_name());
    }
}

/// Values of every JSON type, edge numbers and tricky strings.
fn garbage(for_client: bool) -> Vec<Value> {
    let mut deep = json!([]);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut out = vec![
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e308),
        json!(-1e308),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(""),
        json!(" "),
        json!("x"),
        json!("é\u{0}\u{ffff}"),
        json!("-0"),
        json!("NaN"),
        json!("9".repeat(200)),
        json!(format!("0.{}1", "0".repeat(5000))),
        json!("2023-01-03T00:00:00.999999999999Z"),
        json!("+275760-09-13T00:00:00Z"),
        json!([]),
        json!({}),
        json!([null]),
        json!({"a": [{}]}),
        deep,
    ];
    if for_client {
        // Exponents that overflow the model crate's decimal parser; only client requests
        // are guarded against them (see parse.rs).
        out.extend([
            json!("1e2147483647"),
            json!("0e-2000000000"),
            json!("1.5e-2147483648"),
        ]);
    }
    out
}

/// Every path (object key / array index) inside `v`.
fn paths(v: &Value, prefix: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let mut p = prefix.clone();
                p.push(json!(k));
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(json!(i));
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn slot<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match k {
        Value::String(k) => &mut v[k.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

/// Each field of each sample replaced by each garbage value, and each field removed.
fn mutations(samples: Vec<(&'static str, Value)>, for_client: bool) -> Vec<String> {
    let garbage = garbage(for_client);
    let mut out = Vec::new();
    for (t, data) in samples {
        let mut all = Vec::new();
        paths(&data, Vec::new(), &mut all);
        for path in &all {
            for g in &garbage {
                let mut d = data.clone();
                *slot(&mut d, path) = g.clone();
                out.push(json!({"type": t, "data": d, "request_id": "r"}).to_string());
            }
            let (last, parent) = path.split_last().unwrap();
            let mut d = data.clone();
            match (slot(&mut d, parent), last) {
                (Value::Object(o), Value::String(k)) => {
                    o.remove(k);
                }
                (Value::Array(a), Value::Number(i)) => {
                    a.remove(i.as_u64().unwrap() as usize);
                }
                _ => unreachable!(),
            }
            out.push(json!({"type": t, "data": d, "request_id": "r"}).to_string());
        }
        for g in &garbage {
            out.push(json!({"type": t, "data": g, "request_id": "r"}).to_string());
            out.push(json!({"type": g, "data": data, "request_id": "r"}).to_string());
            out.push(json!({"type": t, "data": data, "request_id": g}).to_string());
        }
    }
    out
}

fn client_samples() -> Vec<(&'static str, Value)> {
    let mut s = common::client_samples();
    s.push(("start_simulation", common::full_start_params()));
    let mut create = common::full_start_params();
    create["session_id"] = json!("mine");
    s.push(("create_session", create));
    s
}

#[test]
fn every_field_with_every_wrong_type() {
    let frames = mutations(client_samples(), true);
    assert!(frames.len() > 4000, "{}", frames.len());
    for f in &frames {
        check_client(f);
    }
    for f in mutations(common::server_samples(), false) {
        check_server(&f);
    }
}

#[test]
fn every_truncation() {
    let mut frames: Vec<String> = client_samples()
        .into_iter()
        .map(|(t, d)| json!({"type": t, "data": d, "request_id": "r"}).to_string())
        .collect();
    frames
        .push(json!({"type": "start_simulation", "data": common::full_start_params()}).to_string());
    for f in &frames {
        for end in 0..f.len() {
            if f.is_char_boundary(end) {
                check_client(&f[..end]);
            }
        }
        check_client(f);
    }
    for (t, d) in common::server_samples() {
        let f = json!({"type": t, "data": d}).to_string();
        for end in 0..f.len() {
            check_server(&f[..end]);
        }
    }
}

#[test]
fn hostile_texts() {
    let texts = [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{{\"type\":\"ping\",\"data\":{}}}", "[".repeat(5000)),
        r#"{"type":"tick_ack","data":{"session_id":"s","sequence_id":1e999999}}"#.to_string(),
        r#"{"type":"tick_ack","data":{"session_id":"s","sequence_id":123456789012345678901234567890}}"#.to_string(),
        r#"{"type":"tick_ack","data":{"session_id":"s","sequence_id":-0}}"#.to_string(),
        r#"{"type":"ping","type":"pong"}"#.to_string(),
        r#"{"type":"ping","request_id":"a","request_id":"b"}"#.to_string(),
        "{\"type\":\"ping\",\"request_id\":\"\u{0}\"}".to_string(),
        "\u{feff}{\"type\":\"ping\"}".to_string(),
        "{\"type\":\"\\ud800\"}".to_string(),
        format!("{{\"type\":\"{}\"}}", "p".repeat(1 << 20)),
        format!(
            "{{\"type\":\"order_batch\",\"data\":{{\"session_id\":\"s\",\"batch_id\":\"b\",\"orders\":[{}]}}}}",
            vec![r#"{"order_id":"o","symbol":"A","side":"buy","type":"market","quantity":1}"#; 10_000].join(",")
        ),
    ];
    for t in &texts {
        check_client(t);
        check_server(t);
    }
}

/// Arbitrary JSON values, nested a few levels.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        "[0-9eE.+-]{1,12}".prop_map(Value::from),
        prop::sample::select(vec!["AAPL", "2023-01-03", "buy", "market", "daily", "s"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "symbols",
                    "start_date",
                    "end_date",
                    "initial_capital",
                    "timeframe",
                    "session_id",
                    "orders",
                    "quantity",
                    "price",
                    "side",
                    "type",
                    "order_id",
                    "symbol",
                    "sequence_id",
                    "batch_id",
                    "metadata",
                    "x"
                ])
                .prop_map(String::from),
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}") {
        check_client(&text);
        check_server(&text);
    }

    #[test]
    fn arbitrary_payloads(
        t in prop::sample::select(ClientMessage::TYPES.to_vec()),
        data in arb_json(),
        rid in prop::option::of("\\PC{0,8}"),
    ) {
        check_client(&json!({"type": t, "data": data, "request_id": rid}).to_string());
    }

    #[test]
    fn arbitrary_mutation_of_valid_payload(
        i in 0usize..17,
        key in prop::sample::select(vec![
            "symbols", "start_date", "end_date", "initial_capital", "timeframe",
            "warmup_bars", "session_id", "orders", "sequence_id", "order_ids",
            "max_pending_ticks", "commission_per_share", "slippage_bps", "epoch"
        ]),
        value in arb_json(),
    ) {
        let samples = client_samples();
        let (t, mut data) = samples[i % samples.len()].clone();
        data[key] = value;
        check_client(&json!({"type": t, "data": data, "request_id": "r"}).to_string());
    }
}
