//! HTTP routes.

mod auth;

pub use auth::bearer;

use actix_web::{web, HttpResponse};
use serde_json::json;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/auth/token", web::post().to(auth::token))
        .route("/auth/validate", web::post().to(auth::validate))
        .route("/ws/simulate", web::get().to(crate::ws::simulate));
}

/// Liveness: the process answers. Readiness (database, session store) is `/ready`.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "server_time": market_data::format_ts(chrono::Utc::now().timestamp()),
        "server_version": env!("CARGO_PKG_VERSION"),
    }))
}
