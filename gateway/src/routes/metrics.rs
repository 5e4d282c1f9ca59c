//! `GET /metrics`: this node's Prometheus metrics.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::metrics::{Metrics, CONTENT_TYPE};

/// The OpenMetrics text exposition.
pub async fn metrics(metrics: web::Data<Arc<Metrics>>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(metrics.encode())
}

/// Registers `/metrics` (needs `web::Data<Arc<Metrics>>`).
pub fn configure(cfg: &mut impl super::Registrar) {
    resource!(cfg, "/metrics", get => metrics);
}
