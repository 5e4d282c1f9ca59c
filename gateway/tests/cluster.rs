//! Gateways sharing one database and one Redis session store, in this process:
//! graceful shutdown hands sessions over, and the store's rules hold across nodes.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::sma::{goog_start, Sma};
use support::{redis_prefix, redis_url, spawn_app_with, spawn_node, Backend, WsClient};

#[actix_web::test]
async fn graceful_shutdown_hands_sessions_to_another_node() {
    let prefix = redis_prefix("drain");
    let store = |s: &mut gateway::config::Settings| {
        s.session_store.redis_url = redis_url().into();
        s.session_store.key_prefix = prefix.clone();
        s.server.shutdown_timeout_sec = 5;
    };
    let mut a = spawn_app_with(Backend::Sqlite, |s| {
        store(s);
        s.server.node_id = "node-a".into();
    })
    .await;
    let b = spawn_node(&a, "node-b", store).await;
    let token = a.token(&a.admin_key).await;

    let mut ws = WsClient::connect(&a, &token).await;
    ws.until("connection_ready").await;
    let sid = ws.start_session(goog_start()).await;
    let mut sma = Sma::default();
    assert!(sma.drive(&mut ws, &sid, |s| s == 800).await.is_none());
    let last = sma.last_seen;

    // SIGTERM's path: the client is told to reconnect, and node A stops in time.
    let t0 = Instant::now();
    a.shutdown.shutdown();
    let closing = ws.until("connection_closing").await;
    assert_eq!(closing["data"]["reason"], "server_maintenance");
    assert_eq!(closing["data"]["reconnect_allowed"], true);
    assert_eq!(closing["data"]["close_code"], 1012);
    assert!(ws.recv().await.is_none(), "a close frame follows");
    let stopped = a.stopped.take().unwrap();
    tokio::time::timeout(Duration::from_secs(6), stopped)
        .await
        .expect("node A stops within its drain timeout")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(6));

    // The session goes on from node B, ending exactly as an uninterrupted run.
    let mut ws = WsClient::connect_to(&b.base(), &token).await;
    ws.until("connection_ready").await;
    ws.send(
        "resume_session",
        json!({"session_id": sid, "last_sequence_id": last, "epoch": 1}),
        None,
    )
    .await;
    let resumed = ws.until("session_resumed").await;
    assert_eq!(resumed["data"]["resumed_from_sequence"], last);
    assert_eq!(ws.recv().await.unwrap()["type"], "account_snapshot");
    sma.answer_pending(&mut ws, &sid).await;
    let end = sma
        .drive(&mut ws, &sid, |_| false)
        .await
        .expect("the run ends");
    assert_eq!(end["data"]["final_equity"], "194777.00");
    b.shutdown.shutdown();
}

/// `connection_closing` must arrive on `ws` before `deadline`.
async fn closed_for_revocation(ws: &mut WsClient, deadline: Instant) -> serde_json::Value {
    tokio::time::timeout_at(deadline.into(), ws.until("connection_closing"))
        .await
        .expect("closed within a second of the revocation")
}

async fn handshake_status(base: &str, token: &str) -> u16 {
    support::handshake(base, token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn revocations_close_connections_on_every_node_within_a_second() {
    use auth::{Plan, UserStatus, UserStore};
    use gateway::cluster::revocation::{publish, Revoked};
    let prefix = redis_prefix("revoke");
    let store = |s: &mut gateway::config::Settings| {
        s.session_store.redis_url = redis_url().into();
        s.session_store.key_prefix = prefix.clone();
    };
    let a = spawn_app_with(Backend::Sqlite, store).await;
    let b = spawn_node(&a, "node-b", store).await;
    let key = a.user_with_key("k@example.com", Plan::Professional).await;
    let token = a.token(&key).await;
    let user = a.db.user_by_email("k@example.com").await.unwrap();
    let key_id = a.db.list_api_keys(user.id).await.unwrap()[0].id;

    // A key revoked and announced: connections on both nodes close.
    let mut on_a = WsClient::connect(&a, &token).await;
    let mut on_b = WsClient::connect_to(&b.base(), &token).await;
    on_a.until("connection_ready").await;
    on_b.until("connection_ready").await;
    a.db.revoke_api_key(user.id, key_id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    publish(&redis_url(), &prefix, Revoked::Key(key_id))
        .await
        .unwrap();
    for ws in [&mut on_a, &mut on_b] {
        let closing = closed_for_revocation(ws, deadline).await;
        assert_eq!(closing["data"]["reason"], "api_key_revoked");
        assert_eq!(closing["data"]["reconnect_allowed"], false);
        assert!(ws.recv().await.is_none());
    }
    // The token is refused before the upgrade everywhere.
    assert_eq!(
        handshake_status(&format!("http://127.0.0.1:{}", a.port), &token).await,
        401
    );
    assert_eq!(handshake_status(&b.base(), &token).await, 401);

    // A user disabled in the database only (say, by another tool): every node reads
    // it within half a second.
    let key = a.user_with_key("d@example.com", Plan::Professional).await;
    let token = a.token(&key).await;
    let user = a.db.user_by_email("d@example.com").await.unwrap();
    let mut ws = WsClient::connect_to(&b.base(), &token).await;
    ws.until("connection_ready").await;
    a.db.set_status(user.id, UserStatus::Disabled)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let closing = closed_for_revocation(&mut ws, deadline).await;
    assert_eq!(closing["data"]["reason"], "api_key_revoked");
    assert_eq!(closing["data"]["message"], "this account was disabled");
    assert_eq!(handshake_status(&b.base(), &token).await, 401);
    // Enabled again, the account works again.
    a.db.set_status(user.id, UserStatus::Active).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut ws = WsClient::connect_to(&b.base(), &token).await;
    ws.until("connection_ready").await;
    b.shutdown.shutdown();
    a.shutdown.shutdown();
}

#[actix_web::test]
async fn plan_limits_hold_across_nodes() {
    use auth::{Plan, UserStore};
    let prefix = redis_prefix("limits");
    let setup = |s: &mut gateway::config::Settings| {
        s.session_store.redis_url = redis_url().into();
        s.session_store.key_prefix = prefix.clone();
        s.plans.professional.concurrent_connections = 2;
        s.plans.professional.concurrent_sessions = 1;
    };
    let a = spawn_app_with(Backend::Sqlite, setup).await;
    let b = spawn_node(&a, "node-b", setup).await;
    let a_base = format!("http://127.0.0.1:{}", a.port);
    let key = a.user_with_key("p@example.com", Plan::Professional).await;
    let token = a.token(&key).await;
    assert!(a.db.user_by_email("p@example.com").await.is_ok());

    // Two connections, one per node, fill the plan; a third is refused on either.
    let mut on_a = WsClient::connect(&a, &token).await;
    on_a.until("connection_ready").await;
    let mut on_b = WsClient::connect_to(&b.base(), &token).await;
    on_b.until("connection_ready").await;
    assert_eq!(handshake_status(&a_base, &token).await, 429);
    assert_eq!(handshake_status(&b.base(), &token).await, 429);

    // One session on node A; node B refuses a second one.
    on_a.send("start_simulation", goog_start(), None).await;
    on_a.until("session_created").await;
    on_b.send("start_simulation", goog_start(), Some("second"))
        .await;
    let refused = on_b.until("session_error").await;
    assert_eq!(refused["data"]["error_code"], "SERVICE_BUSY");
    assert!(refused["data"]["message"]
        .as_str()
        .unwrap()
        .contains("across the cluster"));

    // Closing a connection on B frees a slot for the cluster.
    drop(on_b);
    let deadline = Instant::now() + Duration::from_secs(2);
    while handshake_status(&a_base, &token).await == 429 {
        assert!(Instant::now() < deadline, "the slot comes back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.shutdown.shutdown();
    a.shutdown.shutdown();
}

#[actix_web::test]
async fn a_dead_nodes_counts_expire_within_its_lease_time() {
    use gateway::limits::cluster::{ClusterCounts, Kind};
    let prefix = redis_prefix("expiry");
    let ttl = Duration::from_millis(600);
    let dead = ClusterCounts::connect(&redis_url(), &prefix, ttl)
        .await
        .unwrap();
    let alive = ClusterCounts::connect(&redis_url(), &prefix, ttl)
        .await
        .unwrap();
    tokio::spawn(std::sync::Arc::clone(&alive).refresh());
    assert_eq!(dead.acquire(Kind::Sessions, "u", "s1", 1).await, Ok(Ok(())));
    // Taking the same member again is not a second slot.
    assert_eq!(dead.acquire(Kind::Sessions, "u", "s1", 1).await, Ok(Ok(())));
    assert_eq!(
        alive.acquire(Kind::Sessions, "u", "s2", 1).await,
        Ok(Err(1))
    );
    // The dead node never refreshes: its slot lapses; the living node's does not.
    drop(dead);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        alive.acquire(Kind::Sessions, "u", "s2", 1).await,
        Ok(Ok(()))
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        alive.acquire(Kind::Sessions, "u", "s3", 1).await,
        Ok(Err(1))
    );
    alive.release(Kind::Sessions, "u", "s2");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        alive.acquire(Kind::Sessions, "u", "s3", 1).await,
        Ok(Ok(()))
    );
}
