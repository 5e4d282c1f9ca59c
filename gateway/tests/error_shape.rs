//! One error shape: every refusal of every route, including what the framework's
//! extractors and router refuse (malformed and oversized bodies, wrong content types,
//! unknown paths, wrong methods, bodies that never arrive), is JSON
//! `{"error": CODE, "message"}` with a code from `protocol::ErrorCode` and the right
//! status.

mod support;

use std::time::Duration;

use actix_web::http::Method;
use protocol::ErrorCode;
use support::{spawn_app_with, Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every route, with the methods it takes and whether its body is a JSON extractor
/// (`Json`), a body read by the handler (`Raw`, the admin routes: no content-type
/// check) or none.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Body {
    None,
    Json,
    Raw,
}

const ROUTES: &[(&str, &[&str], Body)] = &[
    ("/health", &["GET"], Body::None),
    ("/ready", &["GET"], Body::None),
    ("/ws/health", &["GET"], Body::None),
    ("/metrics", &["GET"], Body::None),
    ("/auth/token", &["POST"], Body::None),
    ("/auth/validate", &["POST"], Body::None),
    ("/auth/servers", &["GET"], Body::None),
    ("/auth/register", &["POST"], Body::Json),
    ("/auth/verify-email", &["POST"], Body::Json),
    ("/auth/resend-verification", &["POST"], Body::Json),
    ("/auth/password/forgot", &["POST"], Body::Json),
    ("/auth/password/reset", &["POST"], Body::Json),
    ("/auth/password/change", &["POST"], Body::Json),
    ("/auth/login", &["POST"], Body::Json),
    ("/auth/refresh", &["POST"], Body::Json),
    ("/auth/logout", &["POST"], Body::None),
    ("/auth/me", &["GET"], Body::None),
    ("/auth/sessions", &["GET"], Body::None),
    ("/auth/sessions/x", &["DELETE"], Body::None),
    ("/auth/totp/enrol", &["POST"], Body::None),
    ("/auth/totp/confirm", &["POST"], Body::Json),
    ("/auth/totp/disable", &["POST"], Body::Json),
    ("/api/keys", &["GET", "POST"], Body::Json),
    ("/api/keys/x", &["DELETE"], Body::None),
    ("/api/keys/x/rotate", &["POST"], Body::None),
    ("/api/limits", &["GET"], Body::None),
    ("/api/market-data", &["GET"], Body::None),
    ("/api/market-data/default/GOOG/bars", &["GET"], Body::None),
    ("/api/strategies", &["GET"], Body::None),
    ("/api/backtests", &["POST"], Body::Json),
    ("/api/backtests/x", &["GET"], Body::None),
    ("/api/backtests/x/cancel", &["POST"], Body::None),
    ("/api/sessions", &["GET"], Body::None),
    ("/api/sessions/x", &["GET", "DELETE"], Body::None),
    ("/api/sessions/x/trades.csv", &["GET"], Body::None),
    ("/api/openapi.json", &["GET"], Body::None),
    ("/ws/simulate", &["GET"], Body::None),
    ("/admin/users", &["GET", "POST"], Body::Raw),
    (
        "/admin/users/00000000-0000-0000-0000-000000000000",
        &["GET", "PATCH"],
        Body::Raw,
    ),
    ("/admin/users/x/unlock", &["POST"], Body::None),
    ("/admin/users/x/reset-2fa", &["POST"], Body::None),
    (
        "/admin/users/00000000-0000-0000-0000-000000000000/keys",
        &["GET", "POST"],
        Body::Raw,
    ),
    ("/admin/keys/x", &["DELETE"], Body::None),
    ("/admin/sessions", &["GET"], Body::None),
    ("/admin/sessions/x", &["DELETE"], Body::None),
    ("/admin/audit", &["GET"], Body::None),
    ("/admin/usage", &["GET"], Body::None),
];

/// Whether the concrete `path` is an instance of the route pattern `pattern`
/// (`{name}` stands for any one segment).
fn instance_of(path: &str, pattern: &str) -> bool {
    let (p, q): (Vec<_>, Vec<_>) = (path.split('/').collect(), pattern.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (b.starts_with('{') && b.ends_with('}')))
}

#[test]
fn the_list_covers_every_route_of_the_server() {
    let table = gateway::routes::table();
    for (method, pattern) in &table {
        assert!(
            ROUTES
                .iter()
                .any(|(path, methods, _)| instance_of(path, pattern)
                    && methods.contains(&method.as_str())),
            "{method} {pattern} is not in ROUTES"
        );
    }
    for (path, methods, _) in ROUTES {
        for method in *methods {
            assert!(
                table
                    .iter()
                    .any(|(m, pattern)| m.as_str() == *method && instance_of(path, pattern)),
                "{method} {path} is in ROUTES but not a route"
            );
        }
    }
}

/// The method of a body-taking route that takes the body.
fn body_method(methods: &[&str]) -> Method {
    let m = methods
        .iter()
        .find(|m| ["POST", "PATCH"].contains(m))
        .unwrap_or(&methods[0]);
    Method::from_bytes(m.as_bytes()).unwrap()
}

struct Answer {
    status: u16,
    allow: Option<String>,
    code: ErrorCode,
}

/// Sends a request and checks the answer is the one error shape; its status, `Allow`
/// header and code.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let mut req = awc::Client::new().request(method.clone(), app.url(path));
    if let Some(t) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    if let Some(ct) = content_type {
        req = req.insert_header(("Content-Type", ct));
    }
    let mut res = match body {
        Some(b) => req.send_body(b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let allow = res
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = res.body().limit(1 << 20).await.unwrap();
    let what = format!(
        "{method} {path}: {status} {ct} {}",
        String::from_utf8_lossy(&raw)
    );
    assert!(status >= 400, "{what}");
    assert!(ct.starts_with("application/json"), "{what}");
    let body: serde_json::Value = serde_json::from_slice(&raw).expect(&what);
    let obj = body.as_object().expect(&what);
    assert_eq!(obj.len(), 2, "exactly error and message: {what}");
    let message = obj["message"].as_str().expect(&what);
    assert!(!message.is_empty(), "{what}");
    let code: ErrorCode = obj["error"].as_str().expect(&what).parse().expect(&what);
    Answer {
        status,
        allow,
        code,
    }
}

async fn app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.enabled = false;
        s.server.body_timeout_sec = 1;
    })
    .await
}

#[actix_web::test]
async fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let app = app().await;
    for (path, methods, _) in ROUTES {
        for wrong in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.contains(&wrong) {
                continue;
            }
            let method = Method::from_bytes(wrong.as_bytes()).unwrap();
            let a = send(&app, method, path, None, None, None).await;
            assert_eq!(
                (a.status, a.code),
                (405, ErrorCode::MethodNotAllowed),
                "{wrong} {path}"
            );
            assert_eq!(
                a.allow.as_deref(),
                Some(methods.join(", ").as_str()),
                "{wrong} {path}"
            );
        }
    }
    for path in [
        "/nope",
        "/api/nope",
        "/admin",
        "/auth/token/extra",
        "/api/keys/x/y/z",
    ] {
        for method in [Method::GET, Method::POST] {
            let a = send(&app, method.clone(), path, None, None, None).await;
            assert_eq!(
                (a.status, a.code),
                (404, ErrorCode::NotFound),
                "{method} {path}"
            );
        }
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn bad_bodies_are_refused_in_json() {
    let app = app().await;
    let admin = app.token(&app.admin_key).await;
    let oversized = format!("{{\"email\": \"{}\"}}", "a".repeat(100 * 1024)).into_bytes();
    for (path, methods, body) in ROUTES {
        if *body == Body::None {
            continue;
        }
        let method = body_method(methods);
        let bearer = (*body == Body::Raw).then_some(admin.as_str());
        let json = Some("application/json");
        let send = |ct: Option<&'static str>, b: &[u8]| {
            send(&app, method.clone(), path, bearer, ct, Some(b.to_vec()))
        };

        let a = send(json, b"{\"email\": ").await;
        assert_eq!(
            (a.status, a.code),
            (400, ErrorCode::InvalidParams),
            "{path}"
        );
        let a = send(json, b"[1, 2]").await;
        assert_eq!(
            (a.status, a.code),
            (400, ErrorCode::InvalidParams),
            "{path}"
        );
        let a = send(json, &oversized).await;
        assert_eq!(
            (a.status, a.code),
            (413, ErrorCode::PayloadTooLarge),
            "{path}"
        );
        if *body == Body::Json {
            let a = send(Some("text/plain"), b"{}").await;
            assert_eq!(
                (a.status, a.code),
                (415, ErrorCode::UnsupportedMediaType),
                "{path}"
            );
            let a = send(None, b"{}").await;
            assert_eq!(
                (a.status, a.code),
                (415, ErrorCode::UnsupportedMediaType),
                "{path}"
            );
        }
    }
    // Query strings: a value of the wrong type names the parameter.
    let a = send(
        &app,
        Method::GET,
        "/admin/users?limit=many",
        Some(&admin),
        None,
        None,
    )
    .await;
    assert_eq!((a.status, a.code), (400, ErrorCode::InvalidParams));
    app.cleanup().await;
}

/// Headers sent, the body never: 408 after `server.body_timeout_sec` (1 s here), in the
/// one shape, and the connection is not held.
#[actix_web::test]
async fn a_body_that_never_arrives_gets_408() {
    let app = app().await;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    sock.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\"",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is closed after the 408");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"REQUEST_TIMEOUT\""), "{text}");
    app.cleanup().await;
}
