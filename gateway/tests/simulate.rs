//! End to end over real sockets: authenticate, run simulations, and every error path.

mod support;

use auth::Plan;
use serde_json::{json, Value};
use support::sma::{goog_start, in_process, Sma};
use support::{spawn_app, Backend, WsClient};

async fn lock_step_sma(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let ready = ws.recv().await.unwrap();
    assert_eq!(ready["type"], "connection_ready");
    assert_eq!(ready["data"]["plan"], "enterprise");
    assert_eq!(ready["data"]["concurrent_connections_limit"], 100);

    ws.send("start_simulation", goog_start(), Some("r1")).await;
    let created = ws.recv().await.unwrap();
    assert_eq!(
        (created["type"].as_str(), created["request_id"].as_str()),
        (Some("session_created"), Some("r1"))
    );
    assert_eq!(created["data"]["estimated_ticks"], 2148);
    let sid = created["data"]["session_id"].as_str().unwrap().to_string();
    let history = ws.recv().await.unwrap();
    assert_eq!(history["type"], "history_snapshot");

    let mut sma = Sma::default();
    let mut expected_seq = 1;
    let mut batches = 0;
    let end = loop {
        let m = ws.recv().await.unwrap();
        match m["type"].as_str().unwrap() {
            "execution_report" => {
                let q = m["data"]["executed_quantity"].as_i64().unwrap();
                sma.position += if m["data"]["side"] == "buy" { q } else { -q };
            }
            "tick" => {
                let seq = m["data"]["sequence_id"].as_u64().unwrap();
                assert_eq!(seq, expected_seq);
                expected_seq += 1;
                if let Some(order) = sma.on_tick(&m) {
                    batches += 1;
                    let rid = format!("b{batches}");
                    ws.send(
                        "order_batch",
                        json!({"session_id": sid, "batch_id": rid, "orders": [order]}),
                        Some(&rid),
                    )
                    .await;
                    let ack = ws.until("batch_ack").await;
                    assert_eq!(
                        ack["data"]["accepted_orders"].as_array().unwrap().len(),
                        1,
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
            "simulation_end" => break m,
            "account_snapshot" | "order_update" => {}
            other => panic!("unexpected {other}: {m}"),
        }
    };
    let want = in_process();
    assert_eq!(
        end["data"]["final_equity"],
        want.metrics.final_equity.to_string()
    );
    assert_eq!(end["data"]["final_equity"], "194777.00");
    assert_eq!(end["data"]["total_trades"], want.metrics.total_trades);
    assert_eq!(end["data"]["ticks_processed"], 2148);
    assert_eq!(end["data"]["reason"], "completed");
    assert!(
        (end["data"]["sharpe_ratio"].as_f64().unwrap() - want.metrics.sharpe_ratio).abs() < 1e-12
    );
    app.cleanup().await;
}
both_backends!(lock_step_sma_equals_the_in_process_engine, lock_step_sma);

#[actix_web::test]
async fn streaming_delivers_every_tick_in_order() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let mut start = goog_start();
    start["flow_control"] = json!(false);
    ws.send("start_simulation", start, None).await;
    let mut seq = 0;
    loop {
        let m = ws.recv().await.unwrap();
        match m["type"].as_str().unwrap() {
            "tick" => {
                seq += 1;
                assert_eq!(m["data"]["sequence_id"], seq);
                assert!(m["data"]["is_eod"].as_bool().unwrap());
                assert_eq!(m["data"]["symbols_trading"], json!(["GOOG"]));
            }
            "simulation_end" => break,
            _ => {}
        }
    }
    assert_eq!(seq, 2148);
}

#[actix_web::test]
async fn every_error_path_answers_and_the_connection_stays_usable() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let code = |m: &Value| {
        m["data"]["error_code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    ws.send_text("{not json".into()).await;
    assert_eq!(code(&ws.recv().await.unwrap()), "INVALID_JSON");
    ws.send("launch_rockets", json!({}), Some("x1")).await;
    let m = ws.recv().await.unwrap();
    assert_eq!(
        (code(&m).as_str(), m["request_id"].as_str()),
        ("UNKNOWN_TYPE", Some("x1"))
    );
    ws.send("start_simulation", json!({"symbols": ["GOOG"]}), Some("x2"))
        .await;
    let m = ws.recv().await.unwrap();
    assert_eq!(
        (m["type"].as_str(), code(&m).as_str()),
        (Some("session_error"), "INVALID_PARAMS")
    );
    let mut s = goog_start();
    s["initial_capital"] = json!("abc");
    ws.send("start_simulation", s, None).await;
    assert_eq!(code(&ws.recv().await.unwrap()), "INVALID_PARAMS");
    let mut s = goog_start();
    s["end_date"] = json!("2003-01-01");
    ws.send("start_simulation", s, None).await;
    assert_eq!(code(&ws.recv().await.unwrap()), "VALIDATION_ERROR");
    let mut s = goog_start();
    s["symbols"] = json!(["NOPE"]);
    ws.send("start_simulation", s, None).await;
    assert_eq!(code(&ws.recv().await.unwrap()), "DATA_FETCH_FAILED");
    let mut s = goog_start();
    s["start_date"] = json!("1990-01-01");
    s["end_date"] = json!("1991-01-01");
    ws.send("start_simulation", s, None).await;
    assert_eq!(code(&ws.recv().await.unwrap()), "DATA_FETCH_FAILED");
    // A frame over the configured limit (1 MiB by default) is refused, not fatal.
    ws.send_text(format!(
        "{{\"type\":\"ping\",\"data\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(1_100_000)
    ))
    .await;
    assert_eq!(code(&ws.recv().await.unwrap()), "FRAME_TOO_LARGE");
    // Orders for an unknown session, and for a symbol outside the session.
    ws.send(
        "order_batch",
        json!({"session_id": "nope", "batch_id": "b", "orders": []}),
        None,
    )
    .await;
    assert_eq!(code(&ws.recv().await.unwrap()), "SESSION_NOT_FOUND");
    ws.send("create_session", goog_start(), Some("c")).await;
    let created = ws.until("session_created").await;
    let sid = created["data"]["session_id"].as_str().unwrap().to_string();
    let order =
        json!({"order_id": "o1", "symbol": "MSFT", "side": "buy", "type": "market", "quantity": 1});
    ws.send(
        "order_batch",
        json!({"session_id": sid, "batch_id": "b1", "orders": [order]}),
        Some("b1"),
    )
    .await;
    let ack = ws.until("batch_ack").await;
    assert_eq!(ack["data"]["rejected_orders"]["o1"], "UNKNOWN_SYMBOL");
    // Still usable.
    ws.send("ping", json!({}), Some("p")).await;
    let pong = ws.until("pong").await;
    assert_eq!(pong["request_id"], "p");

    // Another user cannot touch this session, nor learn that it exists: the answer
    // is the one for an id nobody has.
    let other_key = app.user_with_key("mallory@example.com", Plan::Free).await;
    let other = app.token(&other_key).await;
    let mut ws2 = WsClient::connect(&app, &other).await;
    ws2.until("connection_ready").await;
    for id in [sid.as_str(), "nobody-has-this-id"] {
        ws2.send("get_simulation_state", json!({"session_id": id}), None)
            .await;
        let m = ws2.recv().await.unwrap();
        assert_eq!(code(&m), "SESSION_NOT_FOUND");
        assert_eq!(m["data"]["message"], "session not found", "{m}");
        ws2.send(
            "resume_session",
            json!({"session_id": id, "last_sequence_id": 0}),
            None,
        )
        .await;
        let m = ws2.recv().await.unwrap();
        assert_eq!(code(&m), "SESSION_NOT_FOUND");
        assert_eq!(m["data"]["message"], "session not found", "{m}");
    }
}

#[actix_web::test]
async fn handshake_rejections_happen_before_the_upgrade() {
    let app =
        support::spawn_app_with(Backend::Sqlite, |s| s.plans.free.concurrent_connections = 1).await;
    let client = awc::Client::new();
    for url in [
        format!("ws://127.0.0.1:{}/ws/simulate", app.port),
        format!("ws://127.0.0.1:{}/ws/simulate?token=garbage", app.port),
    ] {
        let err = client.ws(url).connect().await.err().unwrap();
        assert!(
            err.to_string().contains("401") || format!("{err:?}").contains("401"),
            "{err:?}"
        );
    }
    let key = app.user_with_key("free@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    let mut first = WsClient::connect(&app, &token).await;
    first.until("connection_ready").await;
    let res = support::handshake(&app.url(""), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    for h in [
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Period",
    ] {
        assert!(res.headers().contains_key(h), "missing {h}");
    }
    assert_eq!(
        res.headers().get("X-RateLimit-Type").unwrap(),
        "ws_connections"
    );
    // Closing the first connection frees the slot.
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut again = WsClient::connect(&app, &token).await;
    again.until("connection_ready").await;
}

#[actix_web::test]
async fn reconnect_and_resume_give_the_same_results() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let sid = ws.start_session(goog_start()).await;
    // The socket dies after tick 1000; reconnect and resume from it.
    let mut sma = Sma::default();
    assert!(sma.drive(&mut ws, &sid, |s| s == 1000).await.is_none());
    drop(ws);
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    ws.send(
        "resume_session",
        json!({"session_id": sid, "last_sequence_id": 1000}),
        Some("rs"),
    )
    .await;
    let resumed = ws.until("session_resumed").await;
    assert_eq!(resumed["data"]["resumed_from_sequence"], 1000);
    assert_eq!(ws.recv().await.unwrap()["type"], "account_snapshot");
    sma.answer_pending(&mut ws, &sid).await;
    let end = sma.drive(&mut ws, &sid, |_| false).await.unwrap();
    assert_eq!(end["data"]["final_equity"], "194777.00");
    assert_eq!(
        end["data"]["total_trades"],
        in_process().metrics.total_trades
    );
}

#[actix_web::test]
async fn message_rate_limits_requests_but_not_acks() {
    let app =
        support::spawn_app_with(Backend::Sqlite, |s| s.plans.free.messages_per_second = 5).await;
    let key = app.user_with_key("slow@example.com", Plan::Free).await;
    let token = app.token(&key).await;

    // A whole lock-step year: 252 acks in well under a second, none refused.
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let mut start = goog_start();
    start["start_date"] = json!("2010-01-01");
    start["end_date"] = json!("2011-01-01");
    let sid = ws.start_session(start).await;
    loop {
        let m = ws.recv().await.unwrap();
        match m["type"].as_str().unwrap() {
            "tick" => {
                ws.send(
                    "tick_ack",
                    json!({"session_id": sid, "sequence_id": m["data"]["sequence_id"]}),
                    None,
                )
                .await
            }
            "simulation_end" => break,
            "error" => panic!("{m}"),
            _ => {}
        }
    }

    // Requests beyond 5 per second are refused, the connection stays; a flood closes it.
    let mut limited = 0;
    for i in 0..8 {
        ws.send("ping", json!({}), Some(&format!("p{i}"))).await;
    }
    for _ in 0..8 {
        let m = ws.recv().await.unwrap();
        if m["type"] == "error" {
            assert_eq!(m["data"]["error_code"], "RATE_LIMITED");
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited}");
    for _ in 0..20 {
        ws.send("ping", json!({}), None).await;
    }
    let closing = ws.until("connection_closing").await;
    assert_eq!(closing["data"]["reason"], "rate_limit");
    assert!(ws.recv().await.is_none() || ws.recv().await.is_none());
}
