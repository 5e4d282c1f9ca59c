//! Request rate limits in front of every handler: the window a request counts in (see
//! [`crate::limits::requests`]), the 429 before its handler runs, and the
//! `X-RateLimit-*` headers after.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::extract::presented_token;
use crate::limits::requests::{add_headers, now_ms, refusal, Bucket, Counted, RateKey};
use crate::state::AppState;

/// Middleware: counts every limited request before its handler runs.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let limiter = &state.limiter;
    // The decoded path, as the router matches it (`/%61uth/login` is `/auth/login`).
    let bucket = match Bucket::of_path(req.match_info().as_str()) {
        Some(b) if limiter.enabled() => b,
        _ => return next.call(req).await.map(|r| r.map_into_boxed_body()),
    };
    let ip = limiter.client_ip(req.peer_addr().map(|a| a.ip()), req.headers());
    let key = match bucket {
        Bucket::Api => presented_token(req.request())
            .and_then(|t| state.jwt.verify(&t).ok())
            .map_or(RateKey::client(ip), |claims| RateKey::User(claims.sub)),
        _ => RateKey::client(ip),
    };
    let decision = limiter.hit(bucket, key).await;
    if !decision.allowed {
        state.metrics.rate_limited(bucket.metric());
        let (http, _) = req.into_parts();
        let refused = refusal(bucket, &decision, now_ms()).error_response();
        return Ok(ServiceResponse::new(http, refused));
    }
    if bucket == Bucket::Api {
        req.extensions_mut().insert(Counted(decision));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    // Probes (load balancers, Kubernetes) read only the status: their answers stay
    // small, and carry the headers only when refused. A handler's own refusal by
    // another limit (the plan's sessions) describes that limit, so it is left as is.
    let refused_by_other_limit = response.headers().contains_key("x-ratelimit-type");
    if bucket != Bucket::Health && !refused_by_other_limit {
        add_headers(response.headers_mut(), &decision);
    }
    Ok(response)
}
