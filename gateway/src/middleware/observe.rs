//! Every HTTP request runs in a span carrying its request id (the client's
//! `X-Request-Id` when well-formed, else a new one, echoed in the response), the
//! matched route and, once authenticated, the user id; it ends with one log line and
//! one observation of `simutrador_http_request_duration_seconds`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use tracing::field::Empty;
use tracing::Instrument;

use crate::logging::{loggable_target, new_request_id, valid_request_id};
use crate::state::AppState;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Routes polled by probes and scrapers, logged at debug level only.
const QUIET_ROUTES: [&str; 3] = ["/health", "/ready", "/metrics"];

/// The middleware (`App::wrap(from_fn(observe))`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| valid_request_id(id))
        .map_or_else(new_request_id, str::to_string);
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| std::sync::Arc::clone(&s.metrics));
    // Only the path and a redacted query are logged: `/ws/simulate?token=` carries
    // an access token.
    let target = loggable_target(req.path(), req.query_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = Empty,
        user_id = Empty,
    );
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let (route, status) = match &result {
        Ok(res) => (
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
            res.status(),
        ),
        Err(e) => ("unmatched".into(), e.as_response_error().status_code()),
    };
    span.record("route", route.as_str());
    if let Some(m) = &metrics {
        m.http_request(&route, status.as_u16(), elapsed);
    }
    span.in_scope(|| {
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        if QUIET_ROUTES.contains(&route.as_str()) {
            tracing::debug!(status = status.as_u16(), elapsed_ms, path = %target, "request");
        } else {
            tracing::info!(status = status.as_u16(), elapsed_ms, path = %target, "request");
        }
    });
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
