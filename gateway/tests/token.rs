//! PROTOCOL.md section 1 over real sockets, with SQLite and with Postgres.

mod support;

use auth::{Plan, UserStore};
use support::{spawn_app, Backend};

async fn exchange_and_validate(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = awc::Client::new();
    let key = app
        .user_with_key("trader@example.com", Plan::Professional)
        .await;
    let mut res = client
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", key.as_str()))
        .send_json(&serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["plan"], "professional");
    assert_eq!(body["expires_in"], 3600);
    let user = app.db.user_by_email("trader@example.com").await.unwrap();
    assert_eq!(body["user_id"], user.id.to_string());
    let token = body["access_token"].as_str().unwrap();

    let mut res = client
        .post(app.url("/auth/validate"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (v["valid"].as_bool(), v["plan"].as_str()),
        (Some(true), Some("professional"))
    );
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    app.cleanup().await;
}
both_backends!(exchange_and_validate_works, exchange_and_validate);

async fn refusals(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = awc::Client::new();
    let key = app.user_with_key("r@example.com", Plan::Free).await;
    let refused = |k: Option<String>| {
        let mut req = client.post(app.url("/auth/token"));
        if let Some(k) = k {
            req = req.insert_header(("X-API-Key", k));
        }
        async move {
            let mut res = req.send().await.unwrap();
            let body: serde_json::Value = res.json().await.unwrap();
            (res.status().as_u16(), body)
        }
    };
    for k in [
        None,
        Some(String::new()),
        Some("stk_garbage".into()),
        Some(format!("{key}x")),
        Some("' OR 1=1 --".into()),
    ] {
        let (status, body) = refused(k.clone()).await;
        assert_eq!(status, 401, "{k:?}");
        assert_eq!(body["error"], "AUTH_FAILED");
    }
    // Right prefix, wrong secret: same answer as any other bad key.
    let (prefix, secret) = key.rsplit_once('_').unwrap();
    let wrong = format!("{prefix}_{}", secret.chars().rev().collect::<String>());
    let (status, body) = refused(Some(wrong)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("invalid, revoked or expired credentials"))
    );
    // Revoked keys stop working.
    let user = app.db.user_by_email("r@example.com").await.unwrap();
    let listed = app.db.list_api_keys(user.id).await.unwrap();
    app.db.revoke_api_key(user.id, listed[0].id).await.unwrap();
    assert_eq!(refused(Some(key)).await.0, 401);

    for bad in ["", "Bearer", "Bearer x.y.z", "Basic abc"] {
        let mut req = client.post(app.url("/auth/validate"));
        if !bad.is_empty() {
            req = req.insert_header(("Authorization", bad));
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{bad}");
    }
    // A token whose payload was altered is refused.
    let token = app.token(&app.admin_key).await;
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = parts[1].chars().rev().collect();
    let res = client
        .post(app.url("/auth/validate"))
        .bearer_auth(parts.join("."))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.cleanup().await;
}
both_backends!(bad_credentials_are_refused, refusals);

#[actix_web::test]
async fn compat_port_serves_the_same_routes() {
    let app =
        support::spawn_app_with(Backend::Sqlite, |s| s.server.compat_port = free_port()).await;
    let compat = app.compat_port.unwrap();
    let mut res = awc::Client::new()
        .post(format!("http://127.0.0.1:{compat}/auth/token"))
        .insert_header(("X-API-Key", app.admin_key.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["plan"], "enterprise");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
