//! Degraded modes against the real servers, cut off from one gateway by a proxy:
//! Redis unreachable (and then wiped), Postgres unreachable.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::proxy::Proxy;
use support::sma::{goog_start, Sma};
use support::{redis_prefix, redis_url, spawn_app_with, Backend, TestApp, WsClient};

fn host_port(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit('@').next().unwrap();
    let hp = rest.split('/').next().unwrap();
    let hp = if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:6379")
    };
    hp.replace("localhost", "127.0.0.1").parse().unwrap()
}

/// `/ready`'s status; a 503 is checked to be in the one error shape, naming what is down.
async fn ready_status(app: &TestApp) -> u16 {
    let mut res = awc::Client::new()
        .get(app.url("/ready"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 503 {
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "SERVICE_UNAVAILABLE", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("unreachable"),
            "{body}"
        );
    }
    status
}

async fn wait_ready(app: &TestApp, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready_status(app).await != want {
        assert!(Instant::now() < deadline, "/ready never answered {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plays the client until tick `until` has been answered, or to the end.
async fn advance(
    ws: &mut WsClient,
    sid: &str,
    sma: &mut Sma,
    until: u64,
) -> Option<serde_json::Value> {
    let end = sma.drive(ws, sid, |s| s == until).await;
    sma.answer_pending(ws, sid).await;
    end
}

async fn delete_prefix(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[actix_web::test]
async fn redis_outage_keeps_sessions_running_and_refuses_new_ones_until_it_returns() {
    let proxy = Proxy::start(host_port(&redis_url())).await;
    let prefix = redis_prefix("outage");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.session_store.redis_url = format!("redis://127.0.0.1:{}", proxy.port).into();
        s.session_store.key_prefix = prefix.clone();
        s.session_store.lease_ms = 600;
        s.session_store.checkpoint_every_ticks = 100;
    })
    .await;
    let token = app.token(&app.admin_key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let ready = ws.until("connection_ready").await;
    let user_id = ready["data"]["user_id"].as_str().unwrap().to_string();
    let sid = ws.start_session(goog_start()).await;
    let mut sma = Sma::default();
    advance(&mut ws, &sid, &mut sma, 300).await;

    // Redis unreachable: not ready, the run goes on, new sessions are refused.
    proxy.cut();
    wait_ready(&app, 503).await;
    advance(&mut ws, &sid, &mut sma, 600).await;
    let mut other = WsClient::connect(&app, &token).await;
    other.until("connection_ready").await;
    other
        .send("start_simulation", goog_start(), Some("new"))
        .await;
    let refused = other.until("session_error").await;
    assert_eq!(refused["data"]["error_code"], "SERVICE_BUSY");

    // Back, but empty (as after a restart without persistence): everything recovers by
    // itself, and the session is stored again under a new epoch.
    delete_prefix(&prefix).await;
    proxy.restore();
    wait_ready(&app, 200).await;
    advance(&mut ws, &sid, &mut sma, 700).await;
    let store = session_actor::store::RedisStore::connect(&redis_url(), &prefix)
        .await
        .unwrap();
    use session_actor::store::SessionStore;
    let deadline = Instant::now() + Duration::from_secs(5);
    let record = loop {
        let key = gateway::registry::store_key(&user_id, &sid);
        if let Some(r) = store.load(&key).await.unwrap() {
            break r;
        }
        assert!(Instant::now() < deadline, "the session is stored again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(record.meta.epoch, 2);
    other
        .send("start_simulation", goog_start(), Some("again"))
        .await;
    other.until("session_created").await;

    // A client that knew epoch 1 is told its history may differ; without an epoch it
    // continues, learning the new one.
    drop(ws);
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    ws.send(
        "resume_session",
        json!({"session_id": sid, "last_sequence_id": 700, "epoch": 1}),
        None,
    )
    .await;
    let refused = ws.until("session_error").await;
    assert_eq!(refused["data"]["error_code"], "RESUME_FAILED");
    assert!(refused["data"]["message"]
        .as_str()
        .unwrap()
        .contains("epoch 2"));
    ws.send(
        "resume_session",
        json!({"session_id": sid, "last_sequence_id": 700}),
        None,
    )
    .await;
    assert_eq!(ws.until("session_resumed").await["data"]["epoch"], 2);
    let end = advance(&mut ws, &sid, &mut sma, u64::MAX).await.unwrap();
    assert_eq!(end["data"]["final_equity"], "194777.00");
}

#[actix_web::test]
async fn postgres_outage_refuses_token_exchange_while_issued_tokens_keep_working() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let port = proxy.port;
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.url = s
            .database
            .url
            .expose()
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"))
            .into();
    })
    .await;
    let token = app.token(&app.admin_key).await;

    proxy.cut();
    let started = Instant::now();
    let mut res = awc::Client::new()
        .post(app.url("/auth/token"))
        .timeout(Duration::from_secs(20))
        .insert_header(("X-API-Key", app.admin_key.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE");
    assert_eq!(
        body["message"],
        "the user database is unavailable; try again shortly"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_ready(&app, 503).await;

    // The token issued before the outage still connects and runs a simulation.
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let mut start = goog_start();
    start["start_date"] = json!("2010-01-01");
    start["end_date"] = json!("2011-01-01");
    let sid = ws.start_session(start).await;
    let end = advance(&mut ws, &sid, &mut Sma::default(), u64::MAX)
        .await
        .unwrap();
    assert_eq!(end["data"]["session_id"], sid);

    proxy.restore();
    wait_ready(&app, 200).await;
    app.token(&app.admin_key).await;
    // The results of the run during the outage reach the database once it is back.
    use auth::{ResultStore, UserStore};
    let admin = app
        .db
        .user_by_email("admin@simutrador.local")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.db.result_for_user(admin.id, &sid).await.is_err() {
        assert!(Instant::now() < deadline, "results stored after the outage");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
