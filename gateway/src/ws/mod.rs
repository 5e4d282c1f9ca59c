//! `/ws/simulate`: the handshake (token, plan connection cap) before the upgrade, then a
//! [`connection::ConnectionActor`] per socket.

pub mod connection;
pub mod writer;

use actix::{Actor, AsyncContext};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::errors::{HttpError, LimitPeriod, RateLimited};
use crate::extract::bearer;
use crate::metrics::{AuthResult, RateLimit};
use crate::state::AppState;
use connection::{ConnectionActor, Identity};

/// The `token` query parameter.
fn query_token(req: &HttpRequest) -> Option<&str> {
    req.query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// `GET /ws/simulate?token=<jwt>` (or `Authorization: Bearer`).
pub async fn simulate(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let verified = query_token(&req)
        .or_else(|| bearer(&req))
        .ok_or_else(|| HttpError::auth_failed("missing token"))
        .and_then(|token| Ok(state.jwt.verify(token)?))
        .and_then(|claims| {
            if state.revocations.refuses_token(&claims) {
                Err(HttpError::auth_failed(
                    "invalid, revoked or expired credentials",
                ))
            } else {
                Ok(claims)
            }
        });
    let outcome = match &verified {
        Ok(_) => AuthResult::Ok,
        Err(e) if e.status.is_server_error() => AuthResult::Unavailable,
        Err(_) => AuthResult::Refused,
    };
    state.metrics.auth("/ws/simulate", outcome);
    let claims = verified?;
    let limits = state.settings.plans.of(claims.plan).clone();
    let user_id = claims.sub.to_string();
    crate::extract::record_user(&user_id);
    let limit = limits.concurrent_connections;
    // On this node, and across the cluster when Redis is configured and answers.
    let slot = match state.concurrency.connection(&user_id, limit).await {
        Ok(slot) => slot,
        Err(open) => {
            state.metrics.rate_limited(RateLimit::WsConnections);
            return Err(too_many_connections(limit, open));
        }
    };
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| HttpError::invalid_params("a WebSocket upgrade is required"))?;
    let max = state.settings.server.max_frame_bytes;
    // Frames up to 4x the limit are read and answered with FRAME_TOO_LARGE; beyond that
    // the socket is closed, so no client can make us buffer without bound.
    let hard_limit = max.saturating_mul(4).max(64 * 1024);
    let stream = stream
        .max_frame_size(hard_limit)
        .aggregate_continuations()
        .max_continuation_size(hard_limit);
    let writer = writer::spawn(session, state.settings.server.outbound_queue);
    let who = Identity {
        user_id,
        credential: crate::cluster::revocation::Credential::of(&claims),
        plan: claims.plan,
        expires_at: claims.exp,
    };
    let app = state.clone();
    ConnectionActor::create(move |ctx| {
        ctx.add_stream(stream);
        ConnectionActor::new(app, who, limits, writer, slot)
    });
    Ok(response)
}

/// 429 for a user at the plan's connection cap, with the PROTOCOL.md section 7 headers.
fn too_many_connections(limit: u32, open: u32) -> HttpError {
    // A slot frees when a connection closes, which no window predicts: retry soon.
    let retry = 5;
    HttpError::rate_limited(RateLimited {
        kind: RateLimit::WsConnections.as_str(),
        limit: limit.into(),
        remaining: limit.saturating_sub(open).into(),
        reset: chrono::Utc::now().timestamp() + retry as i64,
        retry_after: retry,
        period: LimitPeriod::Concurrent,
        message: format!("at most {limit} concurrent connections on this plan"),
    })
}
