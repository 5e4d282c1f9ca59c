//! Request rate limits against the running gateway (PROTOCOL.md section 7): every 429
//! carries all the headers, `GET /api/limits` reports limits, usage and reset times,
//! proxies are believed only when trusted, and limits hold across nodes with Redis.

mod support;

use auth::Plan;
use gateway::config::{RateRule, Settings};
use support::sma::goog_start;
use support::{redis_prefix, redis_url, spawn_app_with, spawn_node, Backend, WsClient};

const HEADERS: [&str; 6] = [
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-period",
    "x-ratelimit-type",
];

fn rule(requests: u32) -> RateRule {
    RateRule {
        requests,
        period_sec: 60,
    }
}

fn small_limits(s: &mut Settings) {
    s.rate_limits.auth = rule(4);
    s.rate_limits.ws_connect = rule(3);
    s.rate_limits.health = rule(5);
    s.rate_limits.api = rule(6);
}

fn header(res: &awc::ClientResponse<impl Sized>, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// Checks a 429 and all its headers; returns its JSON body.
async fn assert_limited(
    mut res: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    >,
    kind: &str,
    limit: u32,
) -> serde_json::Value {
    assert_eq!(res.status(), 429, "{kind}");
    for name in HEADERS {
        assert!(res.headers().contains_key(name), "{kind}: missing {name}");
    }
    assert_eq!(header(&res, "x-ratelimit-type"), kind);
    assert_eq!(header(&res, "x-ratelimit-limit"), limit.to_string());
    assert_eq!(header(&res, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&res, "x-ratelimit-period"), "60");
    let retry: i64 = header(&res, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let reset: i64 = header(&res, "x-ratelimit-reset").parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        reset > now - 1 && reset <= now + 61,
        "reset {reset} vs now {now}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
    assert!(body["message"].as_str().unwrap().contains(kind));
    body
}

#[actix_web::test]
async fn every_429_carries_all_headers() {
    let app = spawn_app_with(Backend::Sqlite, small_limits).await;
    let client = awc::Client::new();
    let key = app.user_with_key("limits@example.com", Plan::Free).await;
    // Two of the four auth requests.
    let token = app.token(&key).await;
    let other = app.token(&app.admin_key).await;

    // auth: per IP, every /auth/* endpoint counts.
    for remaining in (0..2).rev() {
        let res = client.get(app.url("/auth/servers")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "x-ratelimit-remaining"), remaining.to_string());
    }
    let res = client
        .post(app.url("/auth/login"))
        .send_json(
            &serde_json::json!({"email": "x@example.com", "password": "p", "server": "default"}),
        )
        .await
        .unwrap();
    assert_limited(res, "auth", 4).await;
    // Percent-encoding reaches the same handler, and the same limit.
    let res = client.get(app.url("/%61uth/servers")).send().await.unwrap();
    assert_limited(res, "auth", 4).await;
    let res = client.get(app.url("/auth/%73ervers")).send().await.unwrap();
    assert_limited(res, "auth", 4).await;

    // health
    for _ in 0..5 {
        let res = client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = client.get(app.url("/ready")).send().await.unwrap();
    assert_limited(res, "health", 5).await;

    // api: per user; a second user has a window of their own.
    for _ in 0..6 {
        let res = client
            .get(app.url("/api/sessions"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = client
        .get(app.url("/api/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_limited(res, "api", 6).await;
    let res = client
        .get(app.url("/api/sessions"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "another user's api window is separate");

    // ws_connect: per IP, at the handshake.
    for _ in 0..3 {
        let res = client
            .get(app.url(&format!("/ws/simulate?token={token}")))
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 429);
    }
    let res = client
        .get(app.url(&format!("/ws/simulate?token={token}")))
        .send()
        .await
        .unwrap();
    assert_limited(res, "ws_connect", 3).await;

    // ws_connections: the plan's concurrent connections (free: 2).
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let key = app.user_with_key("conns@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    let _a = WsClient::connect(&app, &token).await;
    let _b = WsClient::connect(&app, &token).await;
    let res = support::handshake(&app.url(""), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    for name in HEADERS {
        assert!(res.headers().contains_key(name), "ws_connections: {name}");
    }
    assert_eq!(header(&res, "x-ratelimit-type"), "ws_connections");

    // Refusals are counted by type.
    let metrics = awc::Client::new()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let text = String::from_utf8(metrics.to_vec()).unwrap();
    assert!(
        text.contains("simutrador_rate_limited_total{type=\"ws_connections\"} 1"),
        "{text}"
    );
}

#[actix_web::test]
async fn limits_endpoint_reports_limits_usage_and_reset_times() {
    let app = spawn_app_with(Backend::Sqlite, small_limits).await;
    let key = app
        .user_with_key("usage@example.com", Plan::Professional)
        .await;
    let token = app.token(&key).await;
    let mut ws = WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    // Lock-step with nothing acknowledged: the session stays live.
    ws.start_session(goog_start()).await;

    let client = awc::Client::new();
    let get = || {
        client
            .get(app.url("/api/limits"))
            .bearer_auth(&token)
            .send()
    };
    let mut res = get().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["plan"], "professional");
    let limits = &body["limits"];
    assert_eq!(limits["concurrent_connections"], 10);
    assert_eq!(limits["concurrent_sessions"], 5);
    assert_eq!(limits["messages_per_second"], 500);
    assert_eq!(limits["max_simulation_duration_sec"], 14400);
    assert_eq!(limits["api_requests"]["requests"], 6);
    assert_eq!(limits["api_requests"]["period_sec"], 60);
    assert_eq!(limits["auth_requests_per_ip"]["requests"], 4);
    assert_eq!(body["usage"]["connections"], 1);
    assert_eq!(body["usage"]["sessions"], 1);
    assert_eq!(body["usage"]["api_requests"], 1);
    let reset = body["reset_times"]["api_requests"].as_i64().unwrap();
    assert_eq!(reset.to_string(), header(&res, "x-ratelimit-reset"));

    let body: serde_json::Value = get().await.unwrap().json().await.unwrap();
    assert_eq!(body["usage"]["api_requests"], 2, "usage moves");

    // Without a token: 401, and still counted (per IP) rather than passed through.
    let res = client.get(app.url("/api/limits")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
}

#[actix_web::test]
async fn disabled_limits_refuse_nothing() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        small_limits(s);
        s.rate_limits.enabled = false;
    })
    .await;
    let client = awc::Client::new();
    for _ in 0..20 {
        let res = client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(!res.headers().contains_key("x-ratelimit-limit"));
    }
    let token = app.token(&app.admin_key).await;
    let body: serde_json::Value = client
        .get(app.url("/api/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["limits"]["api_requests"].is_null());
    assert!(body["usage"]["api_requests"].is_null());
    assert_eq!(
        body["limits"]["concurrent_connections"], 100,
        "plan caps stay"
    );
}

#[actix_web::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Not trusted: X-Forwarded-For is ignored, so changing it does not escape the limit.
    let app = spawn_app_with(Backend::Sqlite, small_limits).await;
    let client = awc::Client::new();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let res = client
            .get(app.url("/health"))
            .insert_header(("X-Forwarded-For", format!("203.0.113.{i}")))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    // Trusted (the test client is the proxy): each forwarded client has its own window.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        small_limits(s);
        s.rate_limits.trusted_proxies = "127.0.0.0/8, ::1".parse().unwrap();
    })
    .await;
    for i in 0..6 {
        for _ in 0..5 {
            let res = client
                .get(app.url("/health"))
                .insert_header(("X-Forwarded-For", format!("198.51.100.7, 203.0.113.{i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    let res = client
        .get(app.url("/health"))
        .insert_header(("X-Forwarded-For", "203.0.113.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the sixth request of one client");
}

#[actix_web::test]
async fn limits_hold_across_nodes_with_redis() {
    let prefix = redis_prefix("ratelimit");
    let cluster = |s: &mut Settings| {
        small_limits(s);
        s.session_store.redis_url = redis_url().into();
        s.session_store.key_prefix = prefix.clone();
    };
    let a = spawn_app_with(Backend::Sqlite, cluster).await;
    let b = spawn_node(&a, "node-b", cluster).await;
    let client = awc::Client::new();
    let url_b = |path: &str| format!("{}{path}", b.base());

    // auth, per IP: the token exchange on node A, one more there and two on node B
    // use up the four.
    let token = a.token(&a.admin_key).await;
    assert_eq!(
        client
            .get(a.url("/auth/servers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..2 {
        let res = client.get(url_b("/auth/servers")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    for url in [a.url("/auth/servers"), url_b("/auth/servers")] {
        let res = client.get(&url).send().await.unwrap();
        assert_limited(res, "auth", 4).await;
    }

    // api, per user, counted once across both nodes.
    let mut allowed = 0;
    for i in 0..8 {
        let url = if i % 2 == 0 {
            a.url("/api/sessions")
        } else {
            url_b("/api/sessions")
        };
        let res = client.get(&url).bearer_auth(&token).send().await.unwrap();
        if res.status() == 200 {
            allowed += 1;
        } else {
            assert_limited(res, "api", 6).await;
        }
    }
    assert_eq!(allowed, 6, "six api requests across the two nodes");

    // health is each node's own.
    for url in [a.url("/health"), url_b("/health")] {
        for _ in 0..5 {
            assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        }
    }
}
