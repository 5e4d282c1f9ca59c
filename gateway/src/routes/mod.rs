//! HTTP routes.

mod accounts;
pub mod admin;
mod auth;
mod health;
mod limits;
pub mod metrics;
pub mod observe;
mod sessions;

pub use auth::bearer;

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/ws/health", web::get().to(health::ws_health))
        .route("/auth/token", web::post().to(auth::token))
        .route("/auth/validate", web::post().to(auth::validate))
        .route("/auth/servers", web::get().to(accounts::servers))
        .route("/auth/register", web::post().to(accounts::register))
        .route("/auth/verify-email", web::post().to(accounts::verify_email))
        .route(
            "/auth/resend-verification",
            web::post().to(accounts::resend_verification),
        )
        .route(
            "/auth/password/forgot",
            web::post().to(accounts::forgot_password),
        )
        .route(
            "/auth/password/reset",
            web::post().to(accounts::reset_password),
        )
        .route(
            "/auth/password/change",
            web::post().to(accounts::change_password),
        )
        .route("/auth/login", web::post().to(accounts::login))
        .route("/auth/refresh", web::post().to(accounts::refresh))
        .route("/auth/logout", web::post().to(accounts::logout))
        .route("/auth/sessions", web::get().to(accounts::sessions))
        .route("/auth/sessions/{id}", web::delete().to(accounts::end))
        .route("/auth/totp/enrol", web::post().to(accounts::totp_enrol))
        .route("/auth/totp/confirm", web::post().to(accounts::totp_confirm))
        .route("/auth/totp/disable", web::post().to(accounts::totp_disable))
        .route("/api/keys", web::get().to(accounts::keys))
        .route("/api/keys", web::post().to(accounts::create_key))
        .route("/api/keys/{id}", web::delete().to(accounts::revoke_key))
        .route(
            "/api/keys/{id}/rotate",
            web::post().to(accounts::rotate_key),
        )
        .route("/api/limits", web::get().to(limits::limits))
        .route("/api/sessions", web::get().to(sessions::list))
        .route("/api/sessions/{id}", web::get().to(sessions::get))
        .route("/api/sessions/{id}", web::delete().to(sessions::delete))
        .route("/ws/simulate", web::get().to(crate::ws::simulate));
    admin::configure(cfg);
}
