//! The operators' API under `/admin` against the running gateway, on SQLite and
//! Postgres: who gets in, users, keys, the audit log, usage, and live sessions on one
//! node and across two nodes sharing Redis.

mod support;

use std::time::{Duration, Instant};

use actix_web::http::Method;
use auth::{Plan, UserStore};
use serde_json::{json, Value};
use support::sma::goog_start;
use support::{call_at, Backend, TestApp, WsClient};

const PASSWORD: &str = "correct horse ' OR 1=1 -- battery";

async fn spawn(backend: Backend) -> TestApp {
    support::spawn_app(backend).await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(method, path, bearer, body).await
}

async fn get(app: &TestApp, path: &str, bearer: &str) -> (u16, Value) {
    call(app, Method::GET, path, Some(bearer), None).await
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    body: Value,
) -> (u16, Value) {
    call(app, method, path, Some(bearer), Some(body)).await
}

/// A raw body (not necessarily JSON) to `path`.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    raw: &str,
) -> (u16, Value) {
    let mut res = awc::Client::new()
        .request(method, app.url(path))
        .insert_header(("Authorization", format!("Bearer {bearer}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body(raw.to_string())
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": email, "password": password, "server": "default"})),
    )
    .await
}

/// The bootstrap admin's token and user id.
async fn operator(app: &TestApp) -> (String, String) {
    let token = app.token(&app.admin_key).await;
    let admin = app
        .db
        .user_by_email("admin@simutrador.local")
        .await
        .unwrap();
    (token, admin.id.to_string())
}

/// A user created by the operator with a password; its id.
async fn created_user(app: &TestApp, admin: &str, email: &str, plan: &str) -> String {
    let (status, body) = send(
        app,
        Method::POST,
        "/admin/users",
        admin,
        json!({"email": email, "password": PASSWORD, "plan": plan}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// Audit events of `kind` concerning `user`, newest first.
async fn audit_of(app: &TestApp, admin: &str, user: &str, kind: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/admin/audit?user={user}&kind={kind}"), admin).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn routes_refuse_all_but_operators(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;
    let key = app
        .user_with_key("plain@example.com", Plan::Enterprise)
        .await;
    let user_token = app.token(&key).await;
    let user = app.db.user_by_email("plain@example.com").await.unwrap();
    let some_id = user.id.to_string();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/users".into(), None),
        (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"email": "x@example.com"})),
        ),
        (Method::GET, format!("/admin/users/{some_id}"), None),
        (
            Method::PATCH,
            format!("/admin/users/{some_id}"),
            Some(json!({"plan": "free"})),
        ),
        (Method::POST, format!("/admin/users/{some_id}/unlock"), None),
        (
            Method::POST,
            format!("/admin/users/{some_id}/reset-2fa"),
            None,
        ),
        (Method::GET, format!("/admin/users/{some_id}/keys"), None),
        (
            Method::POST,
            format!("/admin/users/{some_id}/keys"),
            Some(json!({"name": "n"})),
        ),
        (Method::DELETE, format!("/admin/keys/{some_id}"), None),
        (Method::GET, "/admin/sessions".into(), None),
        (Method::DELETE, "/admin/sessions/sess_x".into(), None),
        (Method::GET, "/admin/audit".into(), None),
        (Method::GET, "/admin/usage".into(), None),
    ];
    for (method, path, body) in &routes {
        // No token, a bad token: 401.
        let (status, answer) = call(&app, method.clone(), path, None, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("AUTH_FAILED")),
            "{method} {path}"
        );
        let (status, _) = call(&app, method.clone(), path, Some("not.a.jwt"), body.clone()).await;
        assert_eq!(status, 401, "{method} {path}");
        // A valid token of a user without the role: 403, and nothing happens.
        let (status, answer) =
            call(&app, method.clone(), path, Some(&user_token), body.clone()).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "FORBIDDEN");
        assert!(answer["message"].as_str().unwrap().contains("admin"));
    }
    assert!(app.db.user_by_email("x@example.com").await.is_err());
    assert_eq!(
        app.db.user_by_id(user.id).await.unwrap().plan,
        Plan::Enterprise
    );

    // The operator gets in.
    let (status, body) = get(&app, "/admin/users", &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);

    // The role is read at each request: a token of a demoted operator stops working
    // for /admin at once, and a promoted user's token starts.
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{some_id}"),
        &admin,
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, "/admin/users", &user_token).await.0, 200);
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{admin_id}"),
        &user_token,
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(&app, "/admin/users", &admin).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("FORBIDDEN")));
    app.cleanup().await;
}
both_backends!(access, routes_refuse_all_but_operators);

async fn create_search_and_change_users(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;

    // Create with a password: the user can log in; invite without one.
    let (status, body) = send(
        &app,
        Method::POST,
        "/admin/users",
        &admin,
        json!({"email": "Ann@Example.com", "password": PASSWORD, "plan": "professional"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ann = body["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["plan"], "professional");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["has_password"], true);
    assert_eq!(body["invited"], false);
    assert_eq!(body["invitation_sent"], false);
    assert!(
        body["user"]["email_verified_at"].is_string(),
        "the operator vouches"
    );
    assert_eq!(login(&app, "ann@example.com", PASSWORD).await.0, 200);
    let (status, body) = send(
        &app,
        Method::POST,
        "/admin/users",
        &admin,
        json!({"email": "bob@example.org", "role": "admin"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["invited"], true);
    assert_eq!(body["invitation_sent"], true);
    assert_eq!(body["user"]["has_password"], false);
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["email_verified_at"], Value::Null);
    let bob = body["user"]["id"].as_str().unwrap().to_string();
    // Injection text is an email like any other, within what an address may hold
    // (parentheses and semicolons are refused below).
    let odd = "o'brien+x'--drop_table%users=1@example.net";
    let (status, body) = send(
        &app,
        Method::POST,
        "/admin/users",
        &admin,
        json!({"email": odd}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["email"], odd);

    // Refusals: taken, malformed, unknown fields, bad plan, not JSON.
    for (bad, code, status) in [
        (json!({"email": "ANN@example.com"}), "CONFLICT", 409),
        (json!({"email": "not-an-address"}), "INVALID_PARAMS", 400),
        (
            json!({"email": "o'brien+x');drop_table%users--@example.net"}),
            "INVALID_PARAMS",
            400,
        ),
        (
            json!({"email": "c@example.com", "plan": "gold"}),
            "INVALID_PARAMS",
            400,
        ),
        (
            json!({"email": "c@example.com", "role": "root"}),
            "INVALID_PARAMS",
            400,
        ),
        (
            json!({"email": "c@example.com", "password": "short"}),
            "INVALID_PARAMS",
            400,
        ),
        (
            json!({"email": "c@example.com", "is_admin": true}),
            "INVALID_PARAMS",
            400,
        ),
        (json!({"plan": "free"}), "INVALID_PARAMS", 400),
        (json!(["c@example.com"]), "INVALID_PARAMS", 400),
    ] {
        let (got, answer) = send(&app, Method::POST, "/admin/users", &admin, bad.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{bad}: {answer}"
        );
    }
    let (status, answer) =
        send_raw(&app, Method::POST, "/admin/users", &admin, "{\"email\":").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("INVALID_PARAMS"))
    );
    assert!(answer["message"].as_str().unwrap().contains("JSON"));

    // Search: total, filters, pages.
    let (status, all) = get(&app, "/admin/users", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 4);
    let list = |path: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let (status, body) = get(app, path, &admin).await;
            assert_eq!(status, 200, "{path}: {body}");
            let emails: Vec<String> = body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string())
                .collect();
            (body["total"].as_u64().unwrap(), emails)
        }
    };
    assert_eq!(
        list("/admin/users?email=EXAMPLE.COM").await.1,
        ["ann@example.com"]
    );
    assert_eq!(list("/admin/users?email=example.").await.0, 3);
    assert_eq!(
        list("/admin/users?plan=professional").await.1,
        ["ann@example.com"]
    );
    assert_eq!(
        list("/admin/users?role=admin").await.1,
        ["admin@simutrador.local", "bob@example.org"]
    );
    assert_eq!(list("/admin/users?status=disabled").await.0, 0);
    let (total, page) = list("/admin/users?limit=2&offset=2").await;
    assert_eq!((total, page.len()), (4, 2));
    // Filters are data, never SQL: each of these matches the one odd address or none.
    for (fragment, expected) in [
        ("%", 1),
        ("_", 1),
        ("x'--drop", 1),
        ("');drop", 0),
        ("' OR '1'='1", 0),
        ("\" OR \"\"=\"", 0),
        ("; DELETE FROM users; --", 0),
    ] {
        let (status, body) = get(
            &app,
            &format!("/admin/users?email={}", url_encode(fragment)),
            &admin,
        )
        .await;
        assert_eq!(status, 200, "{fragment}: {body}");
        assert_eq!(body["total"], expected, "{fragment}");
    }
    assert_eq!(app.db.count_users().await.unwrap(), 4);
    for bad in [
        "/admin/users?plan=gold",
        "/admin/users?status=asleep",
        "/admin/users?limit=0",
        "/admin/users?limit=100000",
        "/admin/users?offset=-1",
        "/admin/users?emial=ann",
        "/admin/users?locked=maybe",
    ] {
        let (status, body) = get(&app, bad, &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}"
        );
    }

    // One user, with keys and login sessions.
    let (status, body) = get(&app, &format!("/admin/users/{ann}"), &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "ann@example.com");
    assert_eq!(body["login_sessions"].as_array().unwrap().len(), 1);
    assert!(body["keys"].as_array().unwrap().is_empty());
    for missing in [
        format!("/admin/users/{}", uuid::Uuid::new_v4()),
        "/admin/users/not-a-uuid".to_string(),
        "/admin/users/1%27%20OR%201=1".to_string(),
    ] {
        let (status, body) = get(&app, &missing, &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("NOT_FOUND")),
            "{missing}"
        );
    }

    // Plan and role changes, audited with the operator as actor.
    let (status, body) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{ann}"),
        &admin,
        json!({"plan": "enterprise", "role": "admin"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["plan"].as_str(), body["role"].as_str()),
        (Some("enterprise"), Some("admin"))
    );
    let changes = audit_of(&app, &admin, &ann, "plan_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["actor_user_id"], admin_id.as_str());
    assert_eq!(changes[0]["subject_user_id"], ann.as_str());
    assert_eq!(
        changes[0]["detail"],
        json!({"from": "professional", "to": "enterprise"})
    );
    assert_eq!(changes[0]["ip"], "127.0.0.1");
    let roles = audit_of(&app, &admin, &ann, "role_changed").await;
    assert_eq!(roles[0]["detail"], json!({"from": "user", "to": "admin"}));
    let created = audit_of(&app, &admin, &bob, "admin_action").await;
    assert_eq!(created[0]["detail"]["action"], "create_user");
    assert_eq!(created[0]["actor_user_id"], admin_id.as_str());

    for (bad, why) in [
        (json!({}), "at least one"),
        (json!({"status": "locked"}), "unlock"),
        (json!({"plan": "gold"}), "plan"),
        (json!({"email": "new@example.com"}), "unknown field"),
    ] {
        let (status, body) = send(
            &app,
            Method::PATCH,
            &format!("/admin/users/{ann}"),
            &admin,
            bad.clone(),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{bad}: {body}"
        );
    }
    // An operator cannot lock themselves out.
    for own in [json!({"role": "user"}), json!({"status": "disabled"})] {
        let (status, body) = send(
            &app,
            Method::PATCH,
            &format!("/admin/users/{admin_id}"),
            &admin,
            own,
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{}", uuid::Uuid::new_v4()),
        &admin,
        json!({"plan": "free"}),
    )
    .await;
    assert_eq!(status, 404);
    app.cleanup().await;
}
both_backends!(users, create_search_and_change_users);

async fn disable_enable_unlock_and_reset_second_factor(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;
    let cy = created_user(&app, &admin, "cy@example.com", "professional").await;
    let (status, session) = login(&app, "cy@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let access = session["access_token"].as_str().unwrap().to_string();

    // Disable: the open WebSocket closes within a second, tokens are refused.
    let mut ws = WsClient::connect(&app, &access).await;
    ws.until("connection_ready").await;
    let (status, body) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{cy}"),
        &admin,
        json!({"status": "disabled"}),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("disabled")));
    let closing = tokio::time::timeout(Duration::from_secs(1), ws.until("connection_closing"))
        .await
        .expect("closed within a second");
    assert_eq!(closing["data"]["reason"], "api_key_revoked");
    assert_eq!(
        call(&app, Method::POST, "/auth/validate", Some(&access), None)
            .await
            .0,
        401
    );
    assert_eq!(login(&app, "cy@example.com", PASSWORD).await.0, 401);
    let (_, disabled) = get(&app, "/admin/users?status=disabled", &admin).await;
    assert_eq!(disabled["users"][0]["id"], cy.as_str());
    let status_events = audit_of(&app, &admin, &cy, "status_changed").await;
    assert_eq!(
        status_events[0]["detail"],
        json!({"from": "active", "to": "disabled"})
    );
    assert_eq!(status_events[0]["actor_user_id"], admin_id.as_str());

    // Enable: logins work again.
    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/admin/users/{cy}"),
        &admin,
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(login(&app, "cy@example.com", PASSWORD).await.0, 200);
    // Every node (this one too) stops refusing the user's tokens at its next read of
    // the database, within half a second.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        call(&app, Method::POST, "/auth/validate", Some(&access), None)
            .await
            .0,
        200
    );

    // Lockout after five failures; the operator lifts it.
    for _ in 0..5 {
        assert_eq!(login(&app, "cy@example.com", "wrong password").await.0, 401);
    }
    assert_eq!(login(&app, "cy@example.com", PASSWORD).await.0, 401);
    let (_, locked) = get(&app, "/admin/users?locked=true", &admin).await;
    assert_eq!(locked["total"], 1);
    assert!(locked["users"][0]["locked_until"].is_string());
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/admin/users/{cy}/unlock"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["locked_until"].clone(), body["failed_logins"].clone()),
        (Value::Null, json!(0))
    );
    let (status, login_body) = login(&app, "cy@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let unlocked = audit_of(&app, &admin, &cy, "account_unlocked").await;
    assert_eq!(unlocked[0]["actor_user_id"], admin_id.as_str());
    assert_eq!(audit_of(&app, &admin, &cy, "account_locked").await.len(), 1);
    assert_eq!(audit_of(&app, &admin, &cy, "login_failed").await.len(), 6);

    // Second factor: enrolled by the user, reset by the operator.
    let access = login_body["access_token"].as_str().unwrap().to_string();
    let (status, enrolment) = call(
        &app,
        Method::POST,
        "/auth/totp/enrol",
        Some(&access),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = auth::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let code = auth::totp::code_at(&secret, chrono::Utc::now().timestamp());
    let (status, _) = call(
        &app,
        Method::POST,
        "/auth/totp/confirm",
        Some(&access),
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = login(&app, "cy@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("TOTP_REQUIRED"))
    );
    let (_, user) = get(&app, &format!("/admin/users/{cy}"), &admin).await;
    assert_eq!(user["totp_enabled"], true);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/admin/users/{cy}/reset-2fa"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["removed"].clone(),
            body["user"]["totp_enabled"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(login(&app, "cy@example.com", PASSWORD).await.0, 200);
    let reset = audit_of(&app, &admin, &cy, "totp_disabled").await;
    assert_eq!(reset[0]["actor_user_id"], admin_id.as_str());
    // Again: nothing to remove, still recorded.
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/admin/users/{cy}/reset-2fa"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((status, body["removed"].clone()), (200, json!(false)));
    let actions = audit_of(&app, &admin, &cy, "admin_action").await;
    assert_eq!(actions[0]["detail"]["action"], "reset_2fa");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/admin/users/{}/unlock", uuid::Uuid::new_v4()),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404);
    app.cleanup().await;
}
both_backends!(
    disable_unlock_reset,
    disable_enable_unlock_and_reset_second_factor
);

async fn list_create_and_revoke_any_key(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;
    let key = app
        .user_with_key("dee@example.com", Plan::Professional)
        .await;
    let dee = app
        .db
        .user_by_email("dee@example.com")
        .await
        .unwrap()
        .id
        .to_string();

    let (status, body) = get(&app, &format!("/admin/users/{dee}/keys"), &admin).await;
    assert_eq!(status, 200, "{body}");
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("key").is_none(), "never a secret in a listing");
    let first = keys[0]["id"].as_str().unwrap().to_string();

    // A key made by the operator works; its secret is shown once.
    let (status, made) = send(
        &app,
        Method::POST,
        &format!("/admin/users/{dee}/keys"),
        &admin,
        json!({"name": "x'); DROP TABLE api_keys; --", "expires_in_days": 30}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["name"], "x'); DROP TABLE api_keys; --");
    assert!(made["expires_at"].is_string());
    let secret = made["key"].as_str().unwrap().to_string();
    let token = app.token(&secret).await;
    let (_, listed) = get(&app, &format!("/admin/users/{dee}/keys"), &admin).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    let made_events = audit_of(&app, &admin, &dee, "api_key_created").await;
    assert_eq!(made_events[0]["actor_user_id"], admin_id.as_str());

    // Revoking any user's key: refused at once, open connections close.
    let mut ws = WsClient::connect(&app, &app.token(&key).await).await;
    ws.until("connection_ready").await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/admin/keys/{first}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let closing = tokio::time::timeout(Duration::from_secs(1), ws.until("connection_closing"))
        .await
        .expect("closed within a second");
    assert_eq!(closing["data"]["reason"], "api_key_revoked");
    let res = awc::Client::new()
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", key.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The other key still works; revoking twice is fine and audited once.
    assert_eq!(
        call(&app, Method::POST, "/auth/validate", Some(&token), None)
            .await
            .0,
        200
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/admin/keys/{first}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let revoked = audit_of(&app, &admin, &dee, "api_key_revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actor_user_id"], admin_id.as_str());
    assert_eq!(revoked[0]["detail"]["key_id"], first.as_str());

    for (method, path) in [
        (
            Method::DELETE,
            format!("/admin/keys/{}", uuid::Uuid::new_v4()),
        ),
        (Method::DELETE, "/admin/keys/nope".to_string()),
        (
            Method::GET,
            format!("/admin/users/{}/keys", uuid::Uuid::new_v4()),
        ),
    ] {
        let (status, body) = call(&app, method, &path, Some(&admin), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/admin/users/{dee}/keys"),
        &admin,
        json!({"name": ""}),
    )
    .await;
    assert_eq!(status, 400);
    // The same expiry bounds as for users' own keys.
    for days in [0, 3651] {
        let (status, body) = send(
            &app,
            Method::POST,
            &format!("/admin/users/{dee}/keys"),
            &admin,
            json!({"name": "far", "expires_in_days": days}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{days}"
        );
    }
    app.cleanup().await;
}
both_backends!(keys, list_create_and_revoke_any_key);

async fn audit_filters_and_pages(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;
    let eve = created_user(&app, &admin, "eve@example.com", "free").await;
    // A gap on both sides of t0, so no event shares its microsecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let t0 = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Logins, a failure, refresh-token theft.
    assert_eq!(
        login(&app, "eve@example.com", "wrong password").await.0,
        401
    );
    let (_, first) = login(&app, "eve@example.com", PASSWORD).await;
    let refresh = first["refresh_token"].clone();
    let (status, _) = call(
        &app,
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, 401);
    for kind in [
        "login_succeeded",
        "login_failed",
        "refresh_token_reused",
        "user_registered",
    ] {
        assert_eq!(audit_of(&app, &admin, &eve, kind).await.len(), 1, "{kind}");
    }

    // Everything about Eve, newest first, in pages with the total.
    let (status, all) = get(&app, &format!("/admin/audit?user={eve}&limit=500"), &admin).await;
    assert_eq!(status, 200, "{all}");
    let total = all["total"].as_u64().unwrap();
    assert!(total >= 5, "{all}");
    let events = all["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, total);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let mut paged = Vec::new();
    for offset in (0..total).step_by(2) {
        let (_, page) = get(
            &app,
            &format!("/admin/audit?user={eve}&limit=2&offset={offset}"),
            &admin,
        )
        .await;
        assert_eq!(page["total"], total);
        paged.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
    }
    assert_eq!(paged, ids);

    // The creation is the operator's action.
    let (_, by_admin) = get(
        &app,
        &format!("/admin/audit?user={admin_id}&kind=admin_action"),
        &admin,
    )
    .await;
    assert!(by_admin["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["subject_user_id"] == eve.as_str() && e["detail"]["action"] == "create_user"));

    // Time range and address.
    let from = url_encode(&t0.to_rfc3339());
    let (_, recent) = get(
        &app,
        &format!("/admin/audit?user={eve}&from={from}"),
        &admin,
    )
    .await;
    let after_t0: Vec<&Value> = events
        .iter()
        .filter(|e| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap() >= t0)
        .collect();
    assert_eq!(after_t0.len(), 3, "{all}");
    assert_eq!(recent["total"], 3, "{recent}");
    assert_eq!(
        recent["events"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        after_t0
    );
    let (_, none) = get(
        &app,
        &format!("/admin/audit?user={eve}&until=2000-01-01"),
        &admin,
    )
    .await;
    assert_eq!(none["total"], 0);
    let (_, local) = get(
        &app,
        &format!("/admin/audit?user={eve}&kind=login_failed&ip=127.0.0.1"),
        &admin,
    )
    .await;
    assert_eq!(local["total"], 1);
    assert_eq!(local["events"][0]["ip"], "127.0.0.1");
    for ip in [
        "10.9.9.9",
        "127.0.0.1' OR '1'='1",
        "%",
        "x'); DROP TABLE audit_events; --",
    ] {
        let (status, body) =
            get(&app, &format!("/admin/audit?ip={}", url_encode(ip)), &admin).await;
        assert_eq!((status, body["total"].clone()), (200, json!(0)), "{ip}");
    }

    for bad in [
        "/admin/audit?kind=everything",
        "/admin/audit?user=eve",
        "/admin/audit?from=yesterday",
        "/admin/audit?from=2024-02-01&until=2024-01-01",
        "/admin/audit?limit=501",
        "/admin/audit?actor=x",
    ] {
        let (status, body) = get(&app, bad, &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}: {body}"
        );
    }
    let (_, body) = get(&app, "/admin/audit?kind=everything", &admin).await;
    assert!(body["message"].as_str().unwrap().contains("login_failed"));
    app.cleanup().await;
}
both_backends!(audit, audit_filters_and_pages);

/// A short streamed run to its end; `simulation_end`'s data.
async fn finished_run(app: &TestApp, token: &str) -> Value {
    let mut ws = WsClient::connect(app, token).await;
    ws.until("connection_ready").await;
    ws.start_session(json!({
        "symbols": ["GOOG"], "start_date": "2005-01-01", "end_date": "2005-03-01",
        "initial_capital": "100000", "timeframe": "daily", "flow_control": false
    }))
    .await;
    ws.until("simulation_end").await["data"].clone()
}

/// A lock-step session that stays live (its first tick is never acknowledged).
async fn live_session(base: &str, token: &str) -> (WsClient, String) {
    let mut ws = WsClient::connect_to(base, token).await;
    ws.until("connection_ready").await;
    let sid = ws.start_session(goog_start()).await;
    ws.until("tick").await;
    (ws, sid)
}

async fn usage_per_user_and_plan(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, _) = operator(&app).await;
    let fay_key = app
        .user_with_key("fay@example.com", Plan::Professional)
        .await;
    let gus_key = app.user_with_key("gus@example.com", Plan::Free).await;
    let fay = app
        .db
        .user_by_email("fay@example.com")
        .await
        .unwrap()
        .id
        .to_string();
    let gus = app
        .db
        .user_by_email("gus@example.com")
        .await
        .unwrap()
        .id
        .to_string();
    let fay_token = app.token(&fay_key).await;
    let first = finished_run(&app, &fay_token).await;
    let second = finished_run(&app, &fay_token).await;
    let ticks =
        first["ticks_processed"].as_u64().unwrap() + second["ticks_processed"].as_u64().unwrap();
    assert!(ticks > 0);
    // Gus only has a live session.
    let base = app.url("");
    let (_gus_ws, _) = live_session(&base, &app.token(&gus_key).await).await;

    // Results are written in the background: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(&app, "/admin/usage", &admin).await;
        assert_eq!(status, 200, "{body}");
        if body["users"][0]["simulations"] == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "results stored: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["total"], 2, "{body}");
    let users = body["users"].as_array().unwrap();
    assert_eq!(users[0]["user_id"], fay.as_str());
    assert_eq!(users[0]["email"], "fay@example.com");
    assert_eq!(users[0]["ticks"], ticks);
    assert_eq!(users[0]["live_sessions"], 0);
    assert!(users[0]["last_finished_at"].is_string());
    assert_eq!(users[1]["user_id"], gus.as_str());
    assert_eq!(users[1]["simulations"], 0);
    assert_eq!(users[1]["live_sessions"], 1);
    assert_eq!(users[1]["live_ticks"], 1);
    let plans = body["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 3);
    let plan = |name: &str| plans.iter().find(|p| p["plan"] == name).unwrap().clone();
    assert_eq!(plan("professional")["simulations"], 2);
    assert_eq!(plan("professional")["active_users"], 1);
    assert_eq!(plan("professional")["ticks"], ticks);
    assert_eq!(plan("free")["simulations"], 0);
    assert_eq!(plan("free")["live_sessions"], 1);
    assert_eq!(plan("enterprise")["simulations"], 0);

    // Filters: a past range has no finished runs; per user; per plan; pages.
    let (_, past) = get(&app, "/admin/usage?until=2000-01-01", &admin).await;
    assert_eq!(past["plans"][1]["simulations"], 0);
    assert!(past["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["simulations"] == 0));
    let (_, only_fay) = get(&app, &format!("/admin/usage?user={fay}"), &admin).await;
    assert_eq!(only_fay["total"], 1);
    assert_eq!(only_fay["users"][0]["simulations"], 2);
    let (_, free) = get(&app, "/admin/usage?plan=free", &admin).await;
    assert_eq!(free["plans"].as_array().unwrap().len(), 1);
    assert_eq!(free["users"][0]["user_id"], gus.as_str());
    let (_, second_page) = get(&app, "/admin/usage?limit=1&offset=1", &admin).await;
    assert_eq!(second_page["total"], 2);
    assert_eq!(second_page["users"][0]["user_id"], gus.as_str());
    for bad in [
        "/admin/usage?plan=gold",
        "/admin/usage?from=soon",
        "/admin/usage?user=%27%20OR%201%3D1",
        "/admin/usage?group=plan",
    ] {
        let (status, body) = get(&app, bad, &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}"
        );
    }
    app.cleanup().await;
}
both_backends!(usage, usage_per_user_and_plan);

async fn sessions_on_one_node_are_listed_and_stopped(backend: Backend) {
    let app = spawn(backend).await;
    let (admin, admin_id) = operator(&app).await;
    let key = app
        .user_with_key("hal@example.com", Plan::Professional)
        .await;
    let hal = app
        .db
        .user_by_email("hal@example.com")
        .await
        .unwrap()
        .id
        .to_string();
    let base = app.url("");
    let (mut ws, sid) = live_session(&base, &app.token(&key).await).await;

    let (status, body) = get(&app, "/admin/sessions", &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["complete"], true);
    assert_eq!(body["nodes"].as_array().unwrap().len(), 1);
    let s = &body["sessions"][0];
    assert_eq!(s["session_id"], sid.as_str());
    assert_eq!(s["user_id"], hal.as_str());
    assert_eq!(s["email"], "hal@example.com");
    assert_eq!(s["symbols"], json!(["GOOG"]));
    assert_eq!(s["timeframe"], "daily");
    assert_eq!(s["state"], "running");
    assert_eq!(s["ticks"], 1);
    assert!(s["ticks_total"].as_u64().unwrap() > 2000);
    assert!(s["started_at"].is_string());
    assert_eq!(s["node"], body["nodes"][0]);
    let (_, filtered) = get(&app, &format!("/admin/sessions?user={admin_id}"), &admin).await;
    assert_eq!(filtered["total"], 0);
    let (_, filtered) = get(&app, "/admin/sessions?node=elsewhere", &admin).await;
    assert_eq!(filtered["total"], 0);

    // Stopped by the operator: the client gets the end of its run.
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/admin/sessions/{sid}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], hal.as_str());
    let end = ws.until("simulation_end").await;
    assert_eq!(end["data"]["reason"], "stopped");
    assert_eq!(end["data"]["session_id"], sid.as_str());
    let (_, after) = get(&app, "/admin/sessions", &admin).await;
    assert_eq!(after["total"], 0);
    let stops = audit_of(&app, &admin, &hal, "admin_action").await;
    assert_eq!(stops[0]["detail"]["action"], "stop_session");
    assert_eq!(stops[0]["detail"]["session_id"], sid.as_str());
    assert_eq!(stops[0]["actor_user_id"], admin_id.as_str());

    for missing in [sid.as_str(), "sess_nope", "x'%20OR%20'1'='1"] {
        let (status, body) = call(
            &app,
            Method::DELETE,
            &format!("/admin/sessions/{missing}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("SESSION_NOT_FOUND")),
            "{missing}"
        );
    }
    for bad in [
        "/admin/sessions?user=hal",
        "/admin/sessions?limit=0",
        "/admin/sessions?state=running",
    ] {
        assert_eq!(get(&app, bad, &admin).await.0, 400, "{bad}");
    }
    app.cleanup().await;
}
both_backends!(
    sessions_single_node,
    sessions_on_one_node_are_listed_and_stopped
);

#[actix_web::test]
async fn sessions_across_two_nodes_are_listed_and_stopped_wherever_they_run() {
    let prefix = support::redis_prefix("admin");
    let cluster = |s: &mut gateway::config::Settings| {
        s.session_store.redis_url = support::redis_url().into();
        s.session_store.key_prefix = prefix.clone();
        s.session_store.lease_ms = 1500;
        s.server.shutdown_timeout_sec = 3;
    };
    let a = support::spawn_app_with(Backend::Postgres, |s| {
        cluster(s);
        s.server.node_id = "node-a".into();
    })
    .await;
    let b = support::spawn_node(&a, "node-b", cluster).await;
    let (admin, _) = operator(&a).await;
    let key = a.user_with_key("ivy@example.com", Plan::Enterprise).await;
    let token = a.token(&key).await;
    let ivy =
        a.db.user_by_email("ivy@example.com")
            .await
            .unwrap()
            .id
            .to_string();
    let (mut on_b, on_b_sid) = live_session(&b.base(), &token).await;
    let (_on_a, on_a_sid) = live_session(&a.url(""), &token).await;

    // Node A lists both, B's from the index within a refresh (a third of the lease).
    let deadline = Instant::now() + Duration::from_secs(3);
    let listed = loop {
        let (status, body) = get(&a, "/admin/sessions", &admin).await;
        assert_eq!(status, 200, "{body}");
        if body["total"] == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "both sessions listed: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed["nodes"], json!(["node-a", "node-b"]));
    assert_eq!(listed["complete"], true);
    let node_of = |sid: &str| {
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == sid)
            .map(|s| (s["node"].clone(), s["user_id"].clone(), s["email"].clone()))
            .unwrap()
    };
    assert_eq!(
        node_of(&on_b_sid),
        (json!("node-b"), json!(ivy), json!("ivy@example.com"))
    );
    assert_eq!(node_of(&on_a_sid).0, "node-a");
    let (_, only_b) = get(&a, "/admin/sessions?node=node-b", &admin).await;
    assert_eq!(only_b["total"], 1);
    // Node B sees the same cluster.
    let (_, from_b) = call_at(
        &b.base(),
        Method::GET,
        "/admin/sessions",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(from_b["total"], 2);

    // Stopped through node A, on node B, over the control channel.
    let (status, body) = call(
        &a,
        Method::DELETE,
        &format!("/admin/sessions/{on_b_sid}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["node"].as_str(), body["user_id"].as_str()),
        (Some("node-b"), Some(ivy.as_str()))
    );
    let end = tokio::time::timeout(Duration::from_secs(2), on_b.until("simulation_end"))
        .await
        .expect("the client on node B hears the end");
    assert_eq!(end["data"]["reason"], "stopped");
    let stops = audit_of(&a, &admin, &ivy, "admin_action").await;
    assert_eq!(stops[0]["detail"]["node"], "node-b");
    // Gone from the listing once B has refreshed its entry.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, body) = get(&a, "/admin/sessions", &admin).await;
        if body["total"] == 1 {
            assert_eq!(body["sessions"][0]["session_id"], on_a_sid.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped session leaves the listing: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = call(
        &a,
        Method::DELETE,
        &format!("/admin/sessions/{on_b_sid}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // A session on B stopped through B itself, and one on A through B.
    let (mut again, again_sid) = live_session(&b.base(), &token).await;
    let (status, _) = call_at(
        &b.base(),
        Method::DELETE,
        &format!("/admin/sessions/{again_sid}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        again.until("simulation_end").await["data"]["reason"],
        "stopped"
    );

    // A node that dies without a word (its entry is no longer refreshed) drops out
    // when the entry expires.
    let mut redis = redis::Client::open(support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ghost = json!({"at_ms": 0, "sessions": [{
        "session_id": "sess_ghost", "user_id": ivy, "node": "node-ghost", "symbols": ["GOOG"],
        "timeframe": "daily", "state": "running", "ticks": 7, "ticks_total": 10,
        "progress_pct": 70.0, "sim_time": null, "started_at": "2024-01-01T00:00:00Z", "epoch": 1
    }]});
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(format!("{prefix}:admin:node:node-ghost"))
        .arg(ghost.to_string())
        .arg("PX")
        .arg(700)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{prefix}:admin:nodes"))
        .arg(i64::MAX / 2)
        .arg("node-ghost")
        .ignore()
        .query_async(&mut redis)
        .await
        .unwrap();
    let (_, body) = get(&a, "/admin/sessions?node=node-ghost", &admin).await;
    assert_eq!(body["total"], 1, "{body}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, body) = get(&a, "/admin/sessions", &admin).await;
    assert!(
        !body["nodes"]
            .as_array()
            .unwrap()
            .contains(&json!("node-ghost")),
        "{body}"
    );
    assert!(body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["session_id"] != "sess_ghost"));

    // A node that shuts down leaves the listing at once: its sessions are handed over.
    let (_on_b2, _) = live_session(&b.base(), &token).await;
    b.shutdown.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), b.stopped).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (_, body) = get(&a, "/admin/sessions", &admin).await;
        if body["nodes"] == json!(["node-a"]) {
            assert!(body["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["node"] == "node-a"));
            break;
        }
        assert!(Instant::now() < deadline, "node B left the index: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown.shutdown();
}
