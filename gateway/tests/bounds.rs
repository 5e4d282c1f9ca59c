//! Every per-session resource is bounded, over real sockets: an unstarted session whose
//! connection went away gives its plan slot back after the grace period, working orders
//! are capped per plan, client strings and metadata are bounded, and session ids are
//! per user.

mod support;

use std::time::{Duration, Instant};

use actix_web::http::Method;
use auth::Plan;
use serde_json::{json, Value};
use support::{spawn_app_with, Backend, WsClient};

/// A short run: 2004-2005 daily GOOG, lock-step with a window of one tick.
fn params() -> Value {
    json!({
        "symbols": ["GOOG"], "start_date": "2004-09-01", "end_date": "2005-09-01",
        "initial_capital": "100000", "timeframe": "daily", "flow_control": true,
        "max_pending_ticks": 1
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

async fn connect(app: &support::TestApp, token: &str) -> (WsClient, Value) {
    let mut ws = WsClient::connect(app, token).await;
    let ready = ws.until("connection_ready").await;
    (ws, ready)
}

/// The next message that is not a market-data or account frame.
async fn answer(ws: &mut WsClient) -> Value {
    loop {
        let m = ws.recv().await.expect("connection open");
        let t = m["type"].as_str().unwrap_or_default();
        if !matches!(
            t,
            "tick" | "history_snapshot" | "account_snapshot" | "order_update"
        ) {
            return m;
        }
    }
}

async fn create(ws: &mut WsClient, session_id: Option<&str>, params: Value) -> Value {
    let mut data = params;
    if let Some(id) = session_id {
        data["session_id"] = json!(id);
    }
    ws.send("create_session", data, Some("create")).await;
    answer(ws).await
}

/// Creates a session once the plan has a slot for it (a closed session gives its slot
/// back a moment after `session_closed`), waiting up to 10 s.
async fn create_when_free(ws: &mut WsClient, session_id: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = create(ws, session_id, params()).await;
        if m["data"]["error_code"] != "SERVICE_BUSY" || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn an_unstarted_session_of_a_closed_connection_frees_its_slot_after_the_grace_period() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.simulation.resume_grace_sec = 1).await;
    let key = app.user_with_key("two-step@example.com", Plan::Free).await;
    let token = app.token(&key).await;

    // Held by an open connection, an unstarted session outlives the grace period.
    let (mut ws, _) = connect(&app, &token).await;
    let created = create(&mut ws, Some("held"), params()).await;
    assert_eq!(created["type"], "session_created", "{created}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ws.send(
        "simulation_start",
        json!({"session_id": "held", "flow_control": true, "max_pending_ticks": 1}),
        Some("go"),
    )
    .await;
    let started = answer(&mut ws).await;
    assert_eq!(started["type"], "simulation_started", "{started}");
    ws.send("close_session", json!({"session_id": "held"}), None)
        .await;
    assert_eq!(answer(&mut ws).await["type"], "session_closed");

    // Created, never started, and the connection closes: the free plan's one slot is
    // taken until the grace period is over, then it is free again.
    let created = create_when_free(&mut ws, Some("orphan")).await;
    assert_eq!(created["type"], "session_created", "{created}");
    drop(ws);
    let (mut ws, _) = connect(&app, &token).await;
    let refused = create(&mut ws, None, params()).await;
    assert_eq!(refused["data"]["error_code"], "SERVICE_BUSY", "{refused}");
    let (_, limits) = app
        .call(Method::GET, "/api/limits", Some(&token), None)
        .await;
    assert_eq!(limits["usage"]["sessions"], 1, "{limits}");

    let since = Instant::now();
    let created = create_when_free(&mut ws, None).await;
    assert_eq!(created["type"], "session_created", "{created}");
    assert!(
        since.elapsed() < Duration::from_secs(5),
        "freed after the grace period"
    );
    // The orphan is gone for good, not just uncounted.
    ws.send(
        "get_simulation_state",
        json!({"session_id": "orphan"}),
        None,
    )
    .await;
    assert_eq!(
        answer(&mut ws).await["data"]["error_code"],
        "SESSION_NOT_FOUND"
    );
    app.cleanup().await;
}

/// A resting buy far below the market.
fn resting(id: &str) -> Value {
    json!({"order_id": id, "symbol": "GOOG", "side": "buy", "type": "limit", "price": "1",
        "quantity": 1, "time_in_force": "gtc"})
}

async fn batch(ws: &mut WsClient, sid: &str, mode: &str, orders: Vec<Value>) -> Value {
    ws.send(
        "order_batch",
        json!({"session_id": sid, "batch_id": "b", "execution_mode": mode, "orders": orders}),
        Some("batch"),
    )
    .await;
    let ack = answer(ws).await;
    assert_eq!(ack["type"], "batch_ack", "{ack}");
    ack["data"].clone()
}

#[actix_web::test]
async fn working_orders_are_capped_by_the_plan() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.plans.free.max_working_orders = 3).await;
    let key = app.user_with_key("orders@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    let (_, limits) = app
        .call(Method::GET, "/api/limits", Some(&token), None)
        .await;
    assert_eq!(limits["limits"]["max_working_orders"], 3, "{limits}");
    let (mut ws, ready) = connect(&app, &token).await;
    assert_eq!(ready["data"]["max_working_orders"], 3, "{ready}");
    let sid = ws.start_session(params()).await;
    let reason = "MAX_WORKING_ORDERS: at most 3 working orders per session on this plan";

    let ack = batch(
        &mut ws,
        &sid,
        "best_effort",
        vec![resting("a"), resting("b"), resting("c"), resting("d")],
    )
    .await;
    assert_eq!(ack["accepted_orders"], json!(["a", "b", "c"]));
    assert_eq!(ack["rejected_orders"], json!({"d": reason}));
    // At the cap: nothing more, atomic or not.
    let ack = batch(&mut ws, &sid, "atomic", vec![resting("d")]).await;
    assert_eq!(ack["rejected_orders"], json!({"d": reason}));

    // A cancel frees one slot: an atomic batch of two does not fit and is refused
    // whole; one order does.
    ws.send(
        "cancel_orders",
        json!({"session_id": sid, "order_ids": ["a"]}),
        None,
    )
    .await;
    assert_eq!(answer(&mut ws).await["data"]["cancelled"], json!(["a"]));
    let ack = batch(&mut ws, &sid, "atomic", vec![resting("e"), resting("f")]).await;
    assert_eq!(ack["accepted_orders"], json!([]));
    assert_eq!(
        ack["rejected_orders"],
        json!({"e": "BATCH_REJECTED", "f": reason})
    );
    let ack = batch(&mut ws, &sid, "atomic", vec![resting("e")]).await;
    assert_eq!(ack["accepted_orders"], json!(["e"]));

    // A bracket entry reserves a slot per exit.
    ws.send(
        "cancel_orders",
        json!({"session_id": sid, "order_ids": ["b", "c"]}),
        None,
    )
    .await;
    answer(&mut ws).await;
    let bracket = json!({"order_id": "br", "symbol": "GOOG", "side": "buy", "type": "limit",
        "price": "1", "quantity": 1, "time_in_force": "gtc", "stop_loss": "0.5",
        "take_profit": "500"});
    let ack = batch(&mut ws, &sid, "best_effort", vec![bracket.clone()]).await;
    assert_eq!(ack["rejected_orders"], json!({"br": reason}));
    ws.send(
        "cancel_orders",
        json!({"session_id": sid, "order_ids": ["e"]}),
        None,
    )
    .await;
    answer(&mut ws).await;
    let ack = batch(&mut ws, &sid, "best_effort", vec![bracket]).await;
    assert_eq!(ack["accepted_orders"], json!(["br"]));
    app.cleanup().await;
}

#[actix_web::test]
async fn order_ids_and_metadata_are_bounded_over_the_socket() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let token = app.token(&app.admin_key).await;
    let (mut ws, _) = connect(&app, &token).await;
    let sid = ws.start_session(params()).await;

    let huge = "x".repeat(100_000);
    for bad in [huge.as_str(), "bell\u{7}", "new\nline", ""] {
        let mut order = resting("ok");
        order["order_id"] = json!(bad);
        ws.send(
            "order_batch",
            json!({"session_id": sid, "batch_id": "b", "orders": [order]}),
            Some("bad-order"),
        )
        .await;
        let m = answer(&mut ws).await;
        assert_eq!(m["type"], "error", "{m}");
        assert_eq!(m["request_id"], "bad-order");
        assert_eq!(m["data"]["error_code"], "INVALID_PARAMS");
        assert_eq!(m["data"]["details"]["field"], "orders[0].order_id");
        // Never echoed back.
        assert!(m.to_string().len() < 1000, "{} bytes", m.to_string().len());
    }
    // A bad request id is refused without being echoed.
    ws.send("ping", json!({}), Some(&huge)).await;
    let m = answer(&mut ws).await;
    assert_eq!(m["data"]["error_code"], "INVALID_PARAMS");
    assert_eq!(m["request_id"], Value::Null);
    assert!(m.to_string().len() < 1000);

    let metadata = json!({"blob": "m".repeat(100_000)});
    ws.send(
        "start_simulation",
        with(params(), "metadata", metadata),
        Some("meta"),
    )
    .await;
    let m = answer(&mut ws).await;
    assert_eq!(m["type"], "session_error", "{m}");
    assert_eq!(m["data"]["error_code"], "INVALID_PARAMS");
    assert!(m["data"]["message"].as_str().unwrap().contains("metadata"));
    assert!(m.to_string().len() < 1000);
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!({ "k": deep });
    }
    ws.send("start_simulation", with(params(), "metadata", deep), None)
        .await;
    let m = answer(&mut ws).await;
    assert_eq!(m["data"]["error_code"], "INVALID_PARAMS", "{m}");

    // Within bounds, everything is accepted (and the session still runs).
    let id = "o".repeat(128);
    let ack = batch(&mut ws, &sid, "best_effort", vec![resting(&id)]).await;
    assert_eq!(ack["accepted_orders"], json!([id]));
    app.cleanup().await;
}

#[actix_web::test]
async fn two_users_may_use_the_same_session_id_and_neither_sees_the_other() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let alice_key = app
        .user_with_key("alice@example.com", Plan::Professional)
        .await;
    let bob_key = app
        .user_with_key("bob@example.com", Plan::Professional)
        .await;
    let (alice, bob) = (app.token(&alice_key).await, app.token(&bob_key).await);
    let (mut a, ready_a) = connect(&app, &alice).await;
    let (mut b, ready_b) = connect(&app, &bob).await;
    let alice_id = ready_a["data"]["user_id"].as_str().unwrap().to_string();

    // Alice takes `my-session` first; Bob's own `my-session` is independent.
    let created = create(&mut a, Some("my-session"), params()).await;
    assert_eq!(created["data"]["session_id"], "my-session", "{created}");
    let longer = with(params(), "end_date", json!("2006-09-01"));
    let created = create(&mut b, Some("my-session"), longer).await;
    assert_eq!(created["data"]["session_id"], "my-session", "{created}");
    // Each user's id is unique for that user.
    let again = create(&mut a, Some("my-session"), params()).await;
    assert_eq!(again["data"]["error_code"], "INVALID_PARAMS", "{again}");

    let ticks = |m: &Value| m["data"]["ticks_total"].as_u64().unwrap();
    a.send(
        "get_simulation_state",
        json!({"session_id": "my-session"}),
        None,
    )
    .await;
    let state_a = answer(&mut a).await;
    b.send(
        "get_simulation_state",
        json!({"session_id": "my-session"}),
        None,
    )
    .await;
    let state_b = answer(&mut b).await;
    assert!(ticks(&state_b) > ticks(&state_a), "{state_a} {state_b}");

    // Over REST too, each sees their own.
    let (status, detail_a) = app
        .call(Method::GET, "/api/sessions/my-session", Some(&alice), None)
        .await;
    assert_eq!(status, 200, "{detail_a}");
    let (_, detail_b) = app
        .call(Method::GET, "/api/sessions/my-session", Some(&bob), None)
        .await;
    assert_ne!(detail_a, detail_b);

    // Alice's session of an id only Bob has is missing, exactly like an unused id.
    let created = create(&mut b, Some("bobs-only"), params()).await;
    assert_eq!(created["type"], "session_created", "{created}");
    let mut answers = Vec::new();
    for id in ["bobs-only", "nobody-has-this"] {
        a.send("get_simulation_state", json!({"session_id": id}), None)
            .await;
        let mut m = answer(&mut a).await;
        m["data"]["session_id"] = Value::Null;
        m["timestamp"] = Value::Null;
        answers.push(m);
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/sessions/{id}"),
                Some(&alice),
                None,
            )
            .await;
        answers.push(json!([status, body]));
        let (status, body) = app
            .call(
                Method::DELETE,
                &format!("/api/sessions/{id}"),
                Some(&alice),
                None,
            )
            .await;
        answers.push(json!([status, body]));
    }
    assert_eq!(answers[0], answers[3]);
    assert_eq!(answers[1], answers[4]);
    assert_eq!(answers[2], answers[5]);
    assert_eq!(answers[0]["data"]["error_code"], "SESSION_NOT_FOUND");
    assert_eq!(answers[1][0], 404);
    // Bob's session survived Alice's attempt to delete it.
    b.send(
        "get_simulation_state",
        json!({"session_id": "bobs-only"}),
        None,
    )
    .await;
    assert_eq!(answer(&mut b).await["type"], "simulation_state");

    // Operators see both; a stop by id alone must name the owner when two users have it.
    let admin = app.token(&app.admin_key).await;
    let (_, listed) = app
        .call(Method::GET, "/admin/sessions", Some(&admin), None)
        .await;
    let mine = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["session_id"] == "my-session")
        .count();
    assert_eq!(mine, 2, "{listed}");
    let (status, body) = app
        .call(
            Method::DELETE,
            "/admin/sessions/my-session",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/admin/sessions/my-session?user={alice_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, body["user_id"].as_str()),
        (200, Some(alice_id.as_str())),
        "{body}"
    );
    // Bob's `my-session` is untouched.
    b.send(
        "get_simulation_state",
        json!({"session_id": "my-session"}),
        None,
    )
    .await;
    let still = answer(&mut b).await;
    assert_eq!(still["data"]["state"], "ready", "{still}");
    let _ = ready_b;
    app.cleanup().await;
}
