//! Observability of a real gateway: `/metrics` exposes every series with its type and
//! the series move with traffic; the separate metrics listener; request ids; and no
//! access token in the logs.

mod support;

use std::sync::{Arc, Mutex};

use auth::Plan;
use auth::UserStore;
use serde_json::{json, Value};
use support::{spawn_app_with, Backend, TestApp, WsClient};

fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    support::logs::captured_logs("info,gateway=debug")
}

async fn scrape(url: &str) -> String {
    let mut res = awc::Client::new().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = res.body().await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the sample `series` (name with its labels, as exposed), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The value of `series` in a fresh scrape of `app`.
async fn current(app: &TestApp, series: &str) -> f64 {
    value(&scrape(&app.url("/metrics")).await, series)
}

const TOKEN_OK: &str = "simutrador_auth_requests_total{endpoint=\"/auth/token\",result=\"ok\"}";
const TOKEN_REFUSED: &str =
    "simutrador_auth_requests_total{endpoint=\"/auth/token\",result=\"refused\"}";
const TICKS: &str = "simutrador_ticks_sent_total";
const ROUND_TRIPS: &str = "simutrador_tick_round_trip_seconds_count";
const REJECTED: &str = "simutrador_orders_total{result=\"rejected\"}";
const ACCEPTED: &str = "simutrador_orders_total{result=\"accepted\"}";
const FILLS: &str = "simutrador_fills_total";
const WS_CAPPED: &str = "simutrador_rate_limited_total{type=\"ws_connections\"}";
const CONNECTIONS: &str = "simutrador_connections_active";
const SESSIONS: &str = "simutrador_sessions_active";

#[actix_web::test]
async fn every_series_is_exposed_with_its_type() {
    captured_logs();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let text = scrape(&app.url("/metrics")).await;
    for (name, kind) in [
        ("simutrador_build_info", "gauge"),
        ("simutrador_connections_active", "gauge"),
        ("simutrador_sessions_active", "gauge"),
        ("simutrador_ticks_sent", "counter"),
        ("simutrador_orders", "counter"),
        ("simutrador_fills", "counter"),
        ("simutrador_tick_round_trip_seconds", "histogram"),
        ("simutrador_session_store_operation_seconds", "histogram"),
        ("simutrador_session_store_errors", "counter"),
        ("simutrador_auth_requests", "counter"),
        ("simutrador_rate_limited", "counter"),
    ] {
        let line = format!("# TYPE {name} {kind}\n");
        assert!(text.contains(&line), "missing `{line}` in\n{text}");
    }
    let version = format!(
        "simutrador_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &version), 1.0);
    for series in [
        TICKS,
        ACCEPTED,
        REJECTED,
        FILLS,
        WS_CAPPED,
        "simutrador_rate_limited_total{type=\"messages\"}",
        TOKEN_OK,
        "simutrador_tick_round_trip_seconds_bucket{le=\"0.00002\"}",
        "simutrador_tick_round_trip_seconds_bucket{le=\"1.0\"}",
        "simutrador_session_store_operation_seconds_count{operation=\"write\"}",
        "simutrador_session_store_operation_seconds_count{operation=\"renew\"}",
        "simutrador_session_store_operation_seconds_count{operation=\"load\"}",
        "simutrador_session_store_operation_seconds_count{operation=\"acquire\"}",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{series} "))),
            "missing sample {series}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
    // The first scrape itself is recorded under its route.
    let text = scrape(&app.url("/metrics")).await;
    assert!(text.contains("# TYPE simutrador_http_request_duration_seconds histogram\n"));
    assert!(
        value(
            &text,
            "simutrador_http_request_duration_seconds_count{route=\"/metrics\",status=\"200\"}"
        ) >= 1.0
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn series_move_with_traffic() {
    captured_logs();
    let app = spawn_app_with(Backend::Sqlite, |s| s.plans.free.concurrent_connections = 1).await;
    let before = scrape(&app.url("/metrics")).await;

    // Token exchange, good and bad.
    let key = app.user_with_key("metrics@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    let res = awc::Client::new()
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", "stk_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let after_auth = scrape(&app.url("/metrics")).await;
    assert_eq!(value(&after_auth, TOKEN_OK), value(&before, TOKEN_OK) + 1.0);
    assert_eq!(
        value(&after_auth, TOKEN_REFUSED),
        value(&before, TOKEN_REFUSED) + 1.0
    );
    // Routes are patterns, never raw paths with ids.
    let res = awc::Client::new()
        .get(app.url("/api/sessions/some-session-id"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let text = scrape(&app.url("/metrics")).await;
    assert_eq!(
        value(
            &text,
            "simutrador_http_request_duration_seconds_count{route=\"/api/sessions/{id}\",status=\"404\"}"
        ),
        1.0
    );
    assert!(!text.contains("some-session-id"));

    // A short lock-step run with one accepted and one rejected order.
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    assert_eq!(current(&app, CONNECTIONS).await, 1.0);
    let sid = ws
        .start_session(json!({
            "symbols": ["GOOG"], "start_date": "2010-01-01", "end_date": "2010-03-01",
            "initial_capital": "100000", "timeframe": "daily",
            "flow_control": true, "max_pending_ticks": 1
        }))
        .await;
    assert_eq!(current(&app, SESSIONS).await, 1.0);
    let mut ticks = 0u64;
    loop {
        let m = ws.recv().await.expect("simulation runs to its end");
        match m["type"].as_str().unwrap() {
            "tick" => {
                ticks += 1;
                let seq = m["data"]["sequence_id"].as_u64().unwrap();
                if seq == 1 {
                    let orders = json!([
                        {"order_id": "ok1", "symbol": "GOOG", "side": "buy", "type": "market", "quantity": 10},
                        {"order_id": "bad1", "symbol": "MSFT", "side": "buy", "type": "market", "quantity": 1}
                    ]);
                    ws.send(
                        "order_batch",
                        json!({"session_id": sid, "batch_id": "b1", "orders": orders, "execution_mode": "best_effort"}),
                        Some("b1"),
                    )
                    .await;
                    let ack: Value = ws.until("batch_ack").await;
                    assert_eq!(
                        ack["data"]["rejected_orders"]["bad1"], "UNKNOWN_SYMBOL",
                        "{ack}"
                    );
                }
                ws.send(
                    "tick_ack",
                    json!({"session_id": sid, "sequence_id": seq}),
                    None,
                )
                .await;
            }
            "simulation_end" => break,
            _ => {}
        }
    }
    assert!(ticks > 30, "{ticks} ticks");
    let text = scrape(&app.url("/metrics")).await;
    assert_eq!(value(&text, TICKS), value(&before, TICKS) + ticks as f64);
    // Every tick but possibly the last was acknowledged before the run ended.
    let round_trips = value(&text, ROUND_TRIPS) - value(&before, ROUND_TRIPS);
    assert!(
        round_trips >= (ticks - 1) as f64,
        "{round_trips} round trips"
    );
    assert!(value(&text, "simutrador_tick_round_trip_seconds_sum") > 0.0);
    assert_eq!(value(&text, ACCEPTED), value(&before, ACCEPTED) + 1.0);
    assert_eq!(value(&text, REJECTED), value(&before, REJECTED) + 1.0);
    assert!(value(&text, FILLS) >= value(&before, FILLS) + 1.0);
    assert!(
        value(
            &text,
            "simutrador_session_store_operation_seconds_count{operation=\"acquire\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            "simutrador_session_store_operation_seconds_count{operation=\"write\"}"
        ) >= 1.0
    );
    assert_eq!(value(&text, SESSIONS), 0.0, "the run finished");

    // Over the plan's connection cap (1 on free): 429, counted.
    let res = support::handshake(&app.url(""), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(
        current(&app, WS_CAPPED).await,
        value(&before, WS_CAPPED) + 1.0
    );

    drop(ws);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while current(&app, CONNECTIONS).await != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connection still counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn separate_metrics_listener() {
    captured_logs();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.metrics_port = port).await;
    let admin = format!("http://127.0.0.1:{port}");
    let text = scrape(&format!("{admin}/metrics")).await;
    assert!(text.contains("# TYPE simutrador_ticks_sent counter"));
    let client = awc::Client::new();
    // Only /metrics there, and no /metrics on the main listener.
    let res = client.get(format!("{admin}/health")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.cleanup().await;
}

#[actix_web::test]
async fn request_ids_are_echoed_and_logged_without_secrets() {
    let logs = captured_logs();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let client = awc::Client::new();
    // A well-formed id is kept, anything else replaced.
    let res = client
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", app.admin_key.as_str()))
        .insert_header(("X-Request-Id", "trace-me-42"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-me-42");
    let res = client
        .get(app.url("/health"))
        .insert_header(("X-Request-Id", "bad id with spaces"))
        .send()
        .await
        .unwrap();
    let generated = res
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 32, "{generated}");

    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    drop(ws);
    // A refused handshake logs its (redacted) URL too.
    let bogus = "not-a-real-token-but-still-secret";
    let _ = client
        .ws(format!(
            "ws://127.0.0.1:{}/ws/simulate?token={bogus}",
            app.port
        ))
        .connect()
        .await;
    let admin = app
        .db
        .user_by_email("admin@simutrador.local")
        .await
        .unwrap();
    let admin_key = app.admin_key.clone();
    app.cleanup().await;

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(&token), "access token in the logs");
    assert!(!text.contains(bogus), "token parameter in the logs");
    assert!(!text.contains(&admin_key), "API key in the logs");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let request = |pred: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .find(|l| l["message"] == "request" && pred(l))
            .cloned()
    };
    let token_line = request(&|l| l["span"]["request_id"] == "trace-me-42")
        .expect("the token request is logged under the client's id");
    assert_eq!(token_line["span"]["route"], "/auth/token");
    assert_eq!(token_line["status"], 200);
    assert_eq!(token_line["span"]["user_id"], admin.id.to_string());
    let ws_line = request(&|l| l["span"]["route"] == "/ws/simulate" && l["status"] == 101)
        .expect("the handshake is logged");
    assert_eq!(ws_line["path"], "/ws/simulate?token=[redacted]");
    assert_eq!(ws_line["span"]["user_id"], admin.id.to_string());
}
