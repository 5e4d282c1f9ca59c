//! Key rotation happens once per key (409 after, even for concurrent requests), and
//! email syntax is checked at registration and operator creation, while login answers
//! AUTH_FAILED whatever the address looks like. Both backends.

mod support;

use actix_web::http::Method;
use serde_json::{json, Value};
use support::{Backend, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn access_token(app: &TestApp, email: &str) -> String {
    app.register_verified(email, PASSWORD).await;
    app.login_token(email, PASSWORD).await
}

async fn rotating_a_rotated_key_is_a_conflict(backend: Backend) {
    let app = support::spawn_app(backend).await;
    let access = access_token(&app, "rotor@example.com").await;
    let (status, created) = app
        .call(
            Method::POST,
            "/api/keys",
            Some(&access),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let rotate = |id: String| {
        let (app, access) = (&app, access.clone());
        async move {
            app.call(
                Method::POST,
                &format!("/api/keys/{id}/rotate"),
                Some(&access),
                Some(json!({})),
            )
            .await
        }
    };

    // Two at once: exactly one new key.
    let (a, b) = futures_util::join!(rotate(id.clone()), rotate(id.clone()));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let (_, refused) = if a.0 == 409 { &a } else { &b };
    assert_conflict(refused, &created);

    // And every later attempt.
    for _ in 0..3 {
        let (status, body) = rotate(id.clone()).await;
        assert_eq!(status, 409);
        assert_conflict(&body, &created);
    }
    let (_, keys) = app
        .call(Method::GET, "/api/keys", Some(&access), None)
        .await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");

    // The replacement is the one to rotate next.
    let replacement = if a.0 == 201 { &a.1 } else { &b.1 };
    let (status, _) = rotate(replacement["id"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 201);
    app.cleanup().await;
}

fn assert_conflict(body: &Value, key: &Value) {
    assert_eq!(body["error"], "CONFLICT", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("already rotated"), "{message}");
    for secret in [&key["key"], &key["prefix"], &key["id"]] {
        assert!(!message.contains(secret.as_str().unwrap()), "{message}");
    }
}

async fn email_syntax_is_checked_where_addresses_come_in(backend: Backend) {
    let app = support::spawn_app(backend).await;
    let admin = app.token(&app.admin_key).await;
    for bad in [
        "alice smith@example.com",
        "\"alice\"@example.com",
        "alice;bob@example.com",
        "Alice <alice@example.com>",
        "alice@localhost",
        "alice@example..com",
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": bad, "password": PASSWORD})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("email"),
            "{body}"
        );
        let (status, body) = app
            .call(
                Method::POST,
                "/admin/users",
                Some(&admin),
                Some(json!({"email": bad, "plan": "free"})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}: {body}"
        );
        // Login tells nothing: the same answer as for a wrong password.
        let (status, body) = app
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": bad, "password": PASSWORD, "server": "default"})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("AUTH_FAILED")),
            "{bad}: {body}"
        );
    }
    // Normalised as before: the same account whatever the case.
    access_token(&app, "Mixed.Case+tag@Example.COM").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "mixed.case+tag@example.com", "password": PASSWORD, "server": "default"})),
        )
        .await;
    assert_eq!(status, 200);
    app.cleanup().await;
}

both_backends!(rotation, rotating_a_rotated_key_is_a_conflict);
both_backends!(emails, email_syntax_is_checked_where_addresses_come_in);
