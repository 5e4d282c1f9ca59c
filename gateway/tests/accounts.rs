//! Human accounts over REST against the running gateway, on SQLite and Postgres:
//! registration and verification, login with a server choice, no user enumeration,
//! lockout, refresh rotation and theft detection, logout and the session list.

mod support;

use std::time::Duration;

use actix_web::http::Method;

use auth::{AccountStore, UserStore};
use serde_json::{json, Value};
use support::{Backend, TestApp};

const PASSWORD: &str = "correct horse ' OR 1=1 -- battery";

async fn spawn(backend: Backend) -> TestApp {
    support::spawn_app(backend).await
}

async fn post(app: &TestApp, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
    app.call(Method::POST, path, bearer, Some(body)).await
}

async fn get(app: &TestApp, path: &str, bearer: &str) -> (u16, Value) {
    app.call(Method::GET, path, Some(bearer), None).await
}

async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    post(
        app,
        "/auth/login",
        json!({"email": email, "password": password, "server": "default"}),
        None,
    )
    .await
}

/// Registers and verifies `email`, returning after the account can log in.
async fn registered(app: &TestApp, email: &str) {
    let token = app.register_verified(email, PASSWORD).await;
    // Used up.
    let (status, _) = post(app, "/auth/verify-email", json!({ "token": token }), None).await;
    assert_eq!(status, 400);
}

async fn register_verify_and_login(backend: Backend) {
    let app = spawn(backend).await;
    let mut res = awc::Client::new()
        .get(app.url("/auth/servers"))
        .send()
        .await
        .unwrap();
    let servers: Value = res.json().await.unwrap();
    assert_eq!(servers["servers"][0]["id"], "default");

    registered(&app, "Ann@Example.com").await;
    // Registering a taken address answers exactly the same.
    let (status, body) = post(
        &app,
        "/auth/register",
        json!({"email": "ann@example.com", "password": "another password"}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("verification_sent"))
    );

    let (status, body) = login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 2700);
    assert!(body["refresh_token"].as_str().unwrap().len() > 40);
    // The access token opens the WebSocket like an API-key token.
    let access = body["access_token"].as_str().unwrap();
    let mut ws = support::WsClient::connect(&app, access).await;
    ws.until("connection_ready").await;

    // A server that is not offered is refused.
    let (status, _) = post(
        &app,
        "/auth/login",
        json!({"email": "ann@example.com", "password": PASSWORD, "server": "elsewhere"}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    app.cleanup().await;
}
both_backends!(register_and_login, register_verify_and_login);

async fn refusals_do_not_tell_emails_apart_and_lock(backend: Backend) {
    let app = spawn(backend).await;
    registered(&app, "bob@example.com").await;
    let unknown = login(&app, "nobody@example.com", PASSWORD).await;
    let wrong = login(&app, "bob@example.com", "wrong password").await;
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown, wrong, "same status and body");
    // Four more failures (five in the window) lock logins: even the right password is
    // refused, with the same answer.
    for _ in 0..4 {
        assert_eq!(
            login(&app, "bob@example.com", "wrong password").await.0,
            401
        );
    }
    let locked = login(&app, "bob@example.com", PASSWORD).await;
    assert_eq!(locked, wrong);
    let user = app.db.user_by_email("bob@example.com").await.unwrap();
    app.db.unlock_logins(user.id, None).await.unwrap();
    assert_eq!(login(&app, "bob@example.com", PASSWORD).await.0, 200);
    app.cleanup().await;
}
both_backends!(
    no_enumeration_and_lockout,
    refusals_do_not_tell_emails_apart_and_lock
);

async fn unverified_emails_cannot_log_in(backend: Backend) {
    let app = spawn(backend).await;
    let (status, _) = post(
        &app,
        "/auth/register",
        json!({"email": "gil@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    // A wrong password gets the answer everybody gets.
    let wrong = login(&app, "gil@example.com", "wrong password").await;
    assert_eq!(wrong, login(&app, "nobody@example.com", PASSWORD).await);
    assert_eq!(wrong.0, 401);
    // The right one learns what is missing.
    let (status, body) = login(&app, "gil@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("EMAIL_NOT_VERIFIED")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("POST /auth/verify-email"));
    let user = app.db.user_by_email("gil@example.com").await.unwrap();
    let token = app.db.create_email_verification(user.id).await.unwrap();
    let (status, _) = post(
        &app,
        "/auth/verify-email",
        json!({"token": token.token.expose()}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = login(&app, "gil@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    // The earlier failure was cleared by the login that went through.
    assert_eq!(app.db.account(user.id).await.unwrap().failed_logins, 0);
    app.cleanup().await;
}
both_backends!(email_verification_required, unverified_emails_cannot_log_in);

async fn refresh_rotation_theft_logout_and_sessions(backend: Backend) {
    let app = spawn(backend).await;
    registered(&app, "cy@example.com").await;
    let (_, first) = login(&app, "cy@example.com", PASSWORD).await;
    let old = first["refresh_token"].as_str().unwrap().to_string();

    // Rotation: the old token is used up.
    let (status, second) = post(&app, "/auth/refresh", json!({"refresh_token": old}), None).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    // Theft: the used token again ends the whole session, the new token included, and
    // the session's access tokens are refused once every node has read it.
    let (status, body) = post(&app, "/auth/refresh", json!({"refresh_token": old}), None).await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("revoked"));
    let (status, _) = post(
        &app,
        "/auth/refresh",
        json!({"refresh_token": second["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stolen = second["access_token"].as_str().unwrap();
    assert_eq!(get(&app, "/auth/sessions", stolen).await.0, 401);

    // Six logins: the sixth ends the oldest, five stay listed.
    let mut tokens = Vec::new();
    for _ in 0..6 {
        let (status, body) = login(&app, "cy@example.com", PASSWORD).await;
        assert_eq!(status, 200);
        tokens.push(body);
    }
    let newest = tokens[5]["access_token"].as_str().unwrap();
    let (status, list) = get(&app, "/auth/sessions", newest).await;
    assert_eq!(status, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 5);
    assert!(!sessions.iter().any(|s| s["id"] == tokens[0]["session_id"]));
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // Ending another session, then logging out of this one.
    let other = tokens[4]["session_id"].as_str().unwrap();
    let res = awc::Client::new()
        .delete(app.url(&format!("/auth/sessions/{other}")))
        .insert_header(("Authorization", format!("Bearer {newest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = post(&app, "/auth/logout", json!({}), Some(newest)).await;
    assert_eq!(status, 204);
    assert_eq!(get(&app, "/auth/sessions", newest).await.0, 401);
    // Someone else's session id is unknown to this user.
    let (_, dee) = {
        registered(&app, "dee@example.com").await;
        login(&app, "dee@example.com", PASSWORD).await
    };
    let res = awc::Client::new()
        .delete(app.url(&format!(
            "/auth/sessions/{}",
            tokens[3]["session_id"].as_str().unwrap()
        )))
        .insert_header((
            "Authorization",
            format!("Bearer {}", dee["access_token"].as_str().unwrap()),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.cleanup().await;
}
both_backends!(
    refresh_and_sessions,
    refresh_rotation_theft_logout_and_sessions
);

async fn delete(app: &TestApp, path: &str, bearer: &str) -> u16 {
    awc::Client::new()
        .delete(app.url(path))
        .insert_header(("Authorization", format!("Bearer {bearer}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn token_status(app: &TestApp, key: &str) -> u16 {
    awc::Client::new()
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", key))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn api_key_lifecycle_and_second_factor(backend: Backend) {
    let app = spawn(backend).await;
    registered(&app, "eve@example.com").await;
    let (_, session) = login(&app, "eve@example.com", PASSWORD).await;
    let access = session["access_token"].as_str().unwrap().to_string();

    // Create: the secret is in this answer only.
    let (status, created) = post(
        &app,
        "/api/keys",
        json!({"name": "laptop", "expires_in_days": 30}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let (_, listed) = get(&app, "/api/keys", &access).await;
    let entry = &listed["keys"][0];
    assert_eq!(
        (entry["name"].as_str(), entry["id"].clone()),
        (Some("laptop"), created["id"].clone())
    );
    assert!(entry.get("key").is_none() && entry["expires_at"].is_string());
    assert!(
        !listed.to_string().contains(&key),
        "listings never show secrets"
    );
    assert_eq!(token_status(&app, &key).await, 200);

    // A token exchanged for the key cannot manage the account (a leaked key must not
    // mint keys, rotate itself away from revocation or enrol a second factor).
    let key_token = app.token(&key).await;
    assert_eq!(get(&app, "/api/keys", &key_token).await.0, 403);
    for path in [
        "/api/keys",
        "/auth/totp/enrol",
        "/auth/logout",
        "/auth/password/change",
    ] {
        let body =
            json!({"name": "x", "current_password": PASSWORD, "new_password": "x".repeat(12)});
        let (status, body) = post(&app, path, body, Some(&key_token)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("FORBIDDEN")),
            "{path}"
        );
    }
    assert_eq!(get(&app, "/auth/sessions", &key_token).await.0, 403);

    // Rotate: a new key; the old one keeps working for the grace period.
    let id = created["id"].as_str().unwrap();
    let (status, rotated) = post(
        &app,
        &format!("/api/keys/{id}/rotate"),
        json!({}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 201);
    let new_key = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(
        rotated["expires_at"], created["expires_at"],
        "rotation keeps the key's end"
    );
    for days in [0u64, 3651, 4_294_967_295] {
        let (status, body) = post(
            &app,
            "/api/keys",
            json!({"name": "far", "expires_in_days": days}),
            Some(&access),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{days}"
        );
    }
    assert_eq!(token_status(&app, &key).await, 200);
    assert_eq!(token_status(&app, &new_key).await, 200);

    // Revoke: refused at once, and an open connection made with it closes.
    let token = app.token(&new_key).await;
    let mut ws = support::WsClient::connect(&app, &token).await;
    ws.until("connection_ready").await;
    let new_id = rotated["id"].as_str().unwrap();
    assert_eq!(
        delete(&app, &format!("/api/keys/{new_id}"), &access).await,
        204
    );
    assert_eq!(token_status(&app, &new_key).await, 401);
    let closing = tokio::time::timeout(Duration::from_secs(1), ws.until("connection_closing"))
        .await
        .expect("closed within a second");
    assert_eq!(closing["data"]["reason"], "api_key_revoked");
    // Its tokens are refused by every authenticated route.
    assert_eq!(get(&app, "/api/sessions", &token).await.0, 401);
    assert_eq!(
        post(&app, "/auth/validate", json!({}), Some(&token))
            .await
            .0,
        401
    );
    // Each change is in the audit log, with the owner as actor and the client address.
    let eve = app.db.user_by_email("eve@example.com").await.unwrap();
    let events = app
        .db
        .audit_events(auth::AuditQuery {
            user_id: Some(eve.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<(String, Value)> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                auth::AuditKind::ApiKeyCreated | auth::AuditKind::ApiKeyRevoked
            )
        })
        .map(|e| {
            assert_eq!(e.actor_user_id, Some(eve.id));
            assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
            (e.kind.to_string(), e.detail["key_id"].clone())
        })
        .collect();
    let (created_at, rotated_to) = (json!(id), json!(new_id));
    for expected in [
        ("api_key_created".to_string(), created_at),
        ("api_key_created".to_string(), rotated_to.clone()),
        ("api_key_revoked".to_string(), rotated_to),
    ] {
        assert!(keys.contains(&expected), "{expected:?} in {keys:?}");
    }
    assert!(
        !format!("{events:?}").contains(&new_key),
        "no secret in the audit log"
    );

    // Someone else's key is not found.
    registered(&app, "fay@example.com").await;
    let (_, fay) = login(&app, "fay@example.com", PASSWORD).await;
    let fay = fay["access_token"].as_str().unwrap();
    assert_eq!(delete(&app, &format!("/api/keys/{id}"), fay).await, 404);

    // TOTP: enrol, confirm with a code, then logins need a code (or a recovery code).
    let (status, enrolment) = post(&app, "/auth/totp/enrol", json!({}), Some(&access)).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = auth::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    assert!(enrolment["provisioning_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let now = chrono::Utc::now().timestamp();
    let code = auth::totp::code_at(&secret, now);
    let (status, confirmed) = post(
        &app,
        "/auth/totp/confirm",
        json!({"code": code}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery = confirmed["recovery_codes"][0].as_str().unwrap().to_string();
    let (status, body) = login(&app, "eve@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("TOTP_REQUIRED"))
    );
    let with = |extra: Value| {
        let mut body =
            json!({"email": "eve@example.com", "password": PASSWORD, "server": "default"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, _) = post(
        &app,
        "/auth/login",
        with(json!({"totp_code": "000000"})),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // The next step's code (the one just used cannot be replayed).
    let next = auth::totp::code_at(&secret, now + 30);
    let (status, body) = post(&app, "/auth/login", with(json!({"totp_code": next})), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &app,
        "/auth/login",
        with(json!({"recovery_code": recovery.clone()})),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &app,
        "/auth/login",
        with(json!({"recovery_code": recovery})),
        None,
    )
    .await;
    assert_eq!(status, 401, "recovery codes are single-use");

    // Wrong second factors count toward the lockout like wrong passwords (a right
    // password alone does not clear them): the used recovery code above and four
    // wrong codes lock the account.
    let user = app.db.user_by_email("eve@example.com").await.unwrap();
    assert_eq!(app.db.account(user.id).await.unwrap().failed_logins, 1);
    for code in ["111111", "222222", "333333", "444444"] {
        let (status, body) =
            post(&app, "/auth/login", with(json!({"totp_code": code})), None).await;
        assert_eq!(status, 401, "{body}");
    }
    let account = app.db.account(user.id).await.unwrap();
    assert!(account.locked_until.is_some(), "{account:?}");
    let (status, body) = login(&app, "eve@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AUTH_FAILED")),
        "locked: the password alone no longer gets as far as the second factor"
    );
    app.cleanup().await;
}
both_backends!(keys_and_totp, api_key_lifecycle_and_second_factor);

async fn turning_the_second_factor_off(backend: Backend) {
    let app = spawn(backend).await;
    registered(&app, "gus@example.com").await;
    let (_, session) = login(&app, "gus@example.com", PASSWORD).await;
    let access = session["access_token"].as_str().unwrap().to_string();
    let (_, enrolment) = post(&app, "/auth/totp/enrol", json!({}), Some(&access)).await;
    let secret = auth::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let (status, _) = post(
        &app,
        "/auth/totp/confirm",
        json!({"code": auth::totp::code_at(&secret, now)}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 200);
    let user = app.db.user_by_email("gus@example.com").await.unwrap();

    // The access token alone is not enough: the password is needed too...
    let next = auth::totp::code_at(&secret, now + 30);
    let (status, body) = post(
        &app,
        "/auth/totp/disable",
        json!({"code": next}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(
        &app,
        "/auth/totp/disable",
        json!({"code": next, "password": "not the password"}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 401);
    // ...and wrong codes count toward the lockout like wrong passwords.
    let (status, _) = post(
        &app,
        "/auth/totp/disable",
        json!({"code": "000000", "password": PASSWORD}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(app.db.account(user.id).await.unwrap().failed_logins, 2);

    let (status, _) = post(
        &app,
        "/auth/totp/disable",
        json!({"code": next, "password": PASSWORD}),
        Some(&access),
    )
    .await;
    assert_eq!(status, 204);
    let account = app.db.account(user.id).await.unwrap();
    assert!(!account.totp_enabled);
    assert_eq!(
        account.failed_logins, 0,
        "a complete check clears the failures"
    );
    let (status, _) = login(&app, "gus@example.com", PASSWORD).await;
    assert_eq!(status, 200, "no code needed any more");
    // Turning it off again: nothing to turn off, and nothing counted.
    let (status, body) = post(
        &app,
        "/auth/totp/disable",
        json!({"code": "000000", "password": "not the password"}),
        Some(&access),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(app.db.account(user.id).await.unwrap().failed_logins, 0);
    app.cleanup().await;
}

both_backends!(totp_disable, turning_the_second_factor_off);

async fn changing_the_password(backend: Backend) {
    let app = spawn(backend).await;
    registered(&app, "hal@example.com").await;
    let (_, mine) = login(&app, "hal@example.com", PASSWORD).await;
    let (_, other) = login(&app, "hal@example.com", PASSWORD).await;
    let mine = mine["access_token"].as_str().unwrap().to_string();
    let other = other["access_token"].as_str().unwrap().to_string();
    let change = |current: &'static str, new: &'static str| {
        let mine = mine.clone();
        let app = &app;
        async move {
            post(
                app,
                "/auth/password/change",
                json!({"current_password": current, "new_password": new}),
                Some(&mine),
            )
            .await
        }
    };
    let (status, body) = change(PASSWORD, "short").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("INVALID_PARAMS"))
    );
    let (status, body) = change("not the password", "a new long password").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AUTH_FAILED")));
    let user = app.db.user_by_email("hal@example.com").await.unwrap();
    assert_eq!(app.db.account(user.id).await.unwrap().failed_logins, 1);
    let (status, body) = change(PASSWORD, "a new long password").await;
    assert_eq!(status, 204, "{body}");

    // The other session's token is refused within a second; the caller's still works.
    assert!(
        app.refused_within_a_second("/auth/sessions", &other).await,
        "the other session survived the change"
    );
    let (status, sessions) = get(&app, "/auth/sessions", &mine).await;
    assert_eq!(status, 200);
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );
    assert_eq!(login(&app, "hal@example.com", PASSWORD).await.0, 401);
    assert_eq!(
        login(&app, "hal@example.com", "a new long password")
            .await
            .0,
        200
    );
    app.cleanup().await;
}
both_backends!(password_change, changing_the_password);
