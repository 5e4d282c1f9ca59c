//! `GET /api/openapi.json`: an OpenAPI 3.1 document listing exactly the routes served,
//! cached by `ETag`, whose error schema the gateway's real answers match.

mod support;

use std::collections::BTreeSet;

use actix_web::http::Method;
use auth::Plan;
use serde_json::{json, Value};
use support::{spawn_app, Backend, TestApp};

async fn fetch_doc(app: &TestApp) -> (Value, String) {
    let mut res = awc::Client::new()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("application/json"), "{ct}");
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let doc: Value = res.json().limit(4 << 20).await.unwrap();
    (doc, etag)
}

/// Whether `value` matches `schema` (the JSON Schema subset the document uses:
/// `$ref` into `#/components/schemas`, `type`, `enum`, `required`, `properties`).
fn valid(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("unresolvable {r}"))?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("no schema {name}"));
        }
        return valid(doc, target, value);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{value} is not of type {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            return Err(format!("{value} is not one of {e:?}"));
        }
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for f in req.iter().filter_map(Value::as_str) {
            if value.get(f).is_none() {
                return Err(format!("{value} lacks {f}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (k, s) in props {
            if let Some(v) = obj.get(k) {
                valid(doc, s, v)?;
            }
        }
    }
    Ok(())
}

/// The documented JSON schema of `status` answered by `method path`.
fn response_schema<'a>(doc: &'a Value, method: &Method, path: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let responses = &op["responses"];
    let r = responses
        .get(status.to_string())
        .unwrap_or(&responses["default"]);
    let schema = &r["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema"
    );
    schema
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_and_lists_exactly_the_routes() {
    let app = spawn_app(Backend::Sqlite).await;
    let (doc, _) = fetch_doc(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "SimuTrador");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], "/");
    // It reads back as an OpenAPI document.
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    assert!(parsed.openapi == utoipa::openapi::OpenApiVersion::Version31);

    let methods = ["get", "post", "put", "patch", "delete", "head", "options"];
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes: BTreeSet<(String, String)> = gateway::routes::table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routes);
    assert!(routes.contains(&("GET".into(), "/api/openapi.json".into())));
    assert!(routes.contains(&("PATCH".into(), "/admin/users/{id}".into())));

    // Every error code is in the error schema; the WebSocket upgrade takes its token.
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for c in protocol::ErrorCode::ALL {
        assert!(
            codes.as_array().unwrap().contains(&json!(c.as_str())),
            "{c:?}"
        );
    }
    let ws = &doc["paths"]["/ws/simulate"]["get"];
    assert_eq!(ws["parameters"][0]["name"], "token");
    assert_eq!(ws["parameters"][0]["in"], "query");
    assert!(ws["responses"]["101"].is_object());
    assert_eq!(
        doc["paths"]["/auth/token"]["post"]["security"][0],
        json!({"api_key": []})
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn if_none_match_answers_304() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, etag) = fetch_doc(&app).await;
    let res = awc::Client::new()
        .get(app.url("/api/openapi.json"))
        .insert_header(("If-None-Match", etag.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers().get("etag").unwrap().to_str().unwrap(), etag);
    let res = awc::Client::new()
        .get(app.url("/api/openapi.json"))
        .insert_header(("If-None-Match", "\"other\""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.cleanup().await;
}

#[actix_web::test]
async fn real_answers_match_their_documented_schemas() {
    let app = spawn_app(Backend::Sqlite).await;
    let (doc, _) = fetch_doc(&app).await;
    let key = app.user_with_key("trader@example.com", Plan::Free).await;
    let user = app.token(&key).await;
    let admin = app.token(&app.admin_key).await;
    let nil = "00000000-0000-0000-0000-000000000000";
    let u = Some(user.as_str());
    let a = Some(admin.as_str());
    let cases: Vec<(Method, String, Option<&str>, Option<Value>)> = vec![
        (Method::GET, "/health".into(), None, None),
        (Method::GET, "/auth/servers".into(), None, None),
        (
            Method::POST,
            "/auth/login".into(),
            None,
            Some(json!({"email": "nobody@example.com", "password": "wrong-password-1"})),
        ),
        (
            Method::POST,
            "/auth/register".into(),
            None,
            Some(json!({"email": "not-an-email"})),
        ),
        (Method::POST, "/auth/validate".into(), None, Some(json!({}))),
        (Method::GET, "/auth/me".into(), None, None),
        (Method::GET, "/auth/me".into(), u, None),
        (Method::DELETE, format!("/auth/sessions/{nil}"), u, None),
        (Method::GET, "/api/keys".into(), u, None),
        (Method::GET, "/api/keys".into(), None, None),
        (
            Method::POST,
            "/api/keys".into(),
            u,
            Some(json!({"name": 5})),
        ),
        (Method::DELETE, format!("/api/keys/{nil}"), u, None),
        (Method::POST, format!("/api/keys/{nil}/rotate"), u, None),
        (Method::GET, "/api/limits".into(), u, None),
        (Method::PUT, "/api/limits".into(), u, None),
        (Method::GET, "/api/market-data".into(), u, None),
        (
            Method::GET,
            "/api/market-data/none/NOPE/bars".into(),
            u,
            None,
        ),
        (Method::GET, "/api/strategies".into(), u, None),
        (Method::POST, "/api/backtests".into(), u, Some(json!({}))),
        (Method::GET, format!("/api/backtests/{nil}"), u, None),
        (
            Method::POST,
            format!("/api/backtests/{nil}/cancel"),
            u,
            None,
        ),
        (Method::GET, "/api/sessions".into(), u, None),
        (Method::GET, format!("/api/sessions/{nil}"), u, None),
        (Method::DELETE, format!("/api/sessions/{nil}"), u, None),
        (Method::GET, "/admin/users".into(), u, None),
        (Method::GET, "/admin/users".into(), a, None),
        (Method::GET, format!("/admin/users/{nil}"), a, None),
        (Method::GET, "/admin/sessions".into(), a, None),
        (Method::GET, "/admin/audit".into(), a, None),
        (Method::GET, "/admin/usage".into(), a, None),
        (Method::DELETE, format!("/admin/keys/{nil}"), a, None),
    ];
    let templates: Vec<(Method, &str)> = gateway::routes::table();
    let mut errors = 0;
    for (method, path, bearer, body) in &cases {
        let (status, answer) = app.call(method.clone(), path, *bearer, body.clone()).await;
        // The documented path: the route whose template matches.
        let template = templates
            .iter()
            .map(|(_, t)| *t)
            .find(|t| matches(t, path))
            .unwrap_or_else(|| panic!("no route for {path}"));
        let documented = if doc["paths"][template][method.as_str().to_ascii_lowercase()].is_null() {
            Method::GET // a 405: documented on every operation; any of the path's will do
        } else {
            method.clone()
        };
        let schema = response_schema(&doc, &documented, template, status);
        if let Err(e) = valid(&doc, schema, &answer) {
            panic!("{method} {path} -> {status} {answer}: {e}");
        }
        if status >= 400 {
            errors += 1;
        }
    }
    assert!(cases.len() >= 25);
    assert!(errors >= 15, "only {errors} error answers");

    // Typed success bodies: the token exchange and its validation.
    let mut res = awc::Client::new()
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", key.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let schema = response_schema(&doc, &Method::POST, "/auth/token", 200);
    assert_eq!(schema["$ref"], "#/components/schemas/TokenResponse");
    valid(&doc, schema, &answer).unwrap();
    assert!(valid(&doc, schema, &json!({"access_token": "x"})).is_err());
    let mut wrong_plan = answer.clone();
    wrong_plan["plan"] = json!("platinum");
    assert!(valid(&doc, schema, &wrong_plan).is_err());
    let (status, answer) = app
        .call(Method::POST, "/auth/validate", Some(user.as_str()), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    let schema = response_schema(&doc, &Method::POST, "/auth/validate", 200);
    valid(&doc, schema, &answer).unwrap();

    // The check can fail: wrong shapes are refused by the error schema.
    let error = response_schema(&doc, &Method::GET, "/api/keys", 401);
    assert!(valid(
        &doc,
        error,
        &json!({"error": "AUTH_FAILED", "message": "no"})
    )
    .is_ok());
    assert!(valid(
        &doc,
        error,
        &json!({"error": "NO_SUCH_CODE", "message": "no"})
    )
    .is_err());
    assert!(valid(&doc, error, &json!({"error": "AUTH_FAILED"})).is_err());
    assert!(valid(
        &doc,
        error,
        &json!({"code": "AUTH_FAILED", "message": "no"})
    )
    .is_err());
    assert!(valid(&doc, error, &json!(["AUTH_FAILED"])).is_err());
    app.cleanup().await;
}

/// Whether the concrete `path` fits the route `template` (`{x}` matches one segment).
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}
