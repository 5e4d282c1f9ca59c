//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the REST and WebSocket routes,
//! built once from the route table (so it lists exactly the routes served) and the
//! wire types' schemas, with an `ETag`; `If-None-Match` with it answers 304.

use std::sync::OnceLock;

use actix_web::http::{header, Method};
use actix_web::{HttpRequest, HttpResponse};
use protocol::{ApiError, ErrorCode, Plan, TokenResponse, ValidateResponse};
use sha2::{Digest, Sha256};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, Required, ResponseBuilder, Server, Type,
};

/// The security scheme names of the document.
const BEARER: &str = "bearer";
const COOKIE: &str = "cookie";
const CSRF: &str = "csrf";
const API_KEY: &str = "api_key";

/// Routes anyone may call, without credentials.
const PUBLIC: &[&str] = &[
    "/health",
    "/ready",
    "/ws/health",
    "/metrics",
    "/api/openapi.json",
    "/auth/servers",
    "/auth/register",
    "/auth/verify-email",
    "/auth/resend-verification",
    "/auth/password/forgot",
    "/auth/password/reset",
    "/auth/login",
    "/auth/refresh",
    "/auth/validate",
];

/// The routes whose success body has a schema of its own (the others are described as
/// JSON objects).
const SUCCESS: &[(&str, &str)] = &[
    ("/auth/token", "TokenResponse"),
    ("/auth/validate", "ValidateResponse"),
];

/// The document.
pub fn doc() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (method, path) in super::table() {
        paths = paths.path(
            path,
            PathItem::new(http_method(&method), operation(&method, path)),
        );
    }
    let components = ComponentsBuilder::new()
        .schema_from::<ErrorCode>()
        .schema_from::<ApiError>()
        .schema_from::<Plan>()
        .schema_from::<TokenResponse>()
        .schema_from::<ValidateResponse>()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from POST /auth/token or POST /auth/login.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "st_access",
                "The console's access cookie, set by POST /auth/login.",
            ))),
        )
        .security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "With the cookie, on every request that changes state.",
            ))),
        )
        .security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        )
        .build();
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("SimuTrador")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The SimuTrador gateway's REST API and the WebSocket upgrade of \
                     /ws/simulate. Every error answers {\"error\": CODE, \"message\"}.",
                ))
                .build(),
        )
        .servers(Some(vec![Server::new("/")]))
        .paths(paths.build())
        .components(Some(components))
        .build();
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    doc
}

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        _ => HttpMethod::Get,
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
}

/// The operation of `method path`: its path parameters, credentials and answers.
fn operation(method: &Method, path: &'static str) -> utoipa::openapi::path::Operation {
    let tag = path
        .trim_start_matches('/')
        .split('/')
        .find(|s| *s != "api")
        .unwrap_or("root");
    let id = format!(
        "{}{}",
        method.as_str().to_ascii_lowercase(),
        path.replace(['/', '-', '.'], "_").replace(['{', '}'], "")
    );
    let mut op = OperationBuilder::new()
        .tag(tag)
        .operation_id(Some(id))
        .summary(Some(format!("{method} {path}")));
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
    }
    let changes = !matches!(*method, Method::GET | Method::HEAD);
    if changes && path != "/auth/token" {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                )
                .build(),
        ));
    }
    let success = if path == "/ws/simulate" {
        op = op
            .parameter(
                ParameterBuilder::new()
                    .name("token")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::True)
                    .description(Some("An access token from POST /auth/token."))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            )
            .description(Some(
                "The WebSocket upgrade of the simulation protocol (PROTOCOL.md).",
            ))
            .response(
                "101",
                ResponseBuilder::new().description("Switching to the WebSocket protocol"),
            );
        None
    } else if path == "/api/sessions/{id}/trades.csv" {
        op = op.response(
            "200",
            ResponseBuilder::new()
                .description("The session's trades as CSV, one row per round trip")
                .content("text/csv", ContentBuilder::new().build()),
        );
        None
    } else if path == "/metrics" {
        op = op.response(
            "200",
            ResponseBuilder::new()
                .description("The OpenMetrics text exposition")
                .content("text/plain", ContentBuilder::new().build()),
        );
        None
    } else {
        let content = match SUCCESS.iter().find(|(p, _)| *p == path) {
            Some((_, name)) => ContentBuilder::new().schema(Some(Ref::from_schema_name(*name))),
            None => {
                ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
            }
        };
        Some(
            ResponseBuilder::new()
                .description("Success")
                .content("application/json", content.build()),
        )
    };
    if let Some(ok) = success {
        op = op.response("200", ok);
    }
    if path == "/api/openapi.json" {
        op = op.response("304", ResponseBuilder::new().description("Not modified"));
    }
    if path == "/auth/token" {
        op = op.security(SecurityRequirement::new(API_KEY, Vec::<String>::new()));
    } else if !PUBLIC.contains(&path) && path != "/ws/simulate" {
        op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        op = if changes {
            op.security(
                SecurityRequirement::new(COOKIE, Vec::<String>::new())
                    .add(CSRF, Vec::<String>::new()),
            )
        } else {
            op.security(SecurityRequirement::new(COOKIE, Vec::<String>::new()))
        };
    }
    if !PUBLIC.contains(&path) {
        op = op.response(
            "401",
            error_response("AUTH_FAILED: missing or bad credentials"),
        );
    }
    if path.starts_with("/admin") {
        op = op.response("403", error_response("FORBIDDEN: not an operator"));
    }
    if path.contains('{') {
        op = op.response("404", error_response("NOT_FOUND"));
    }
    if changes {
        op = op.response("400", error_response("INVALID_PARAMS or VALIDATION_ERROR"));
    }
    op.response("405", error_response("METHOD_NOT_ALLOWED"))
        .response("429", error_response("RATE_LIMITED"))
        .response("default", error_response("Any other error"))
        .build()
}

/// The document as served, and its `ETag`.
fn served() -> &'static (String, String) {
    static SERVED: OnceLock<(String, String)> = OnceLock::new();
    SERVED.get_or_init(|| {
        let json = serde_json::to_string(&doc()).unwrap_or_else(|_| "{}".into());
        let digest = Sha256::digest(json.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        (json, format!("\"{hex}\""))
    })
}

/// `GET /api/openapi.json`.
pub async fn document(req: HttpRequest) -> HttpResponse {
    let (json, etag) = served();
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut answer = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if matches {
        answer.finish()
    } else {
        answer.content_type("application/json").body(json.clone())
    }
}
