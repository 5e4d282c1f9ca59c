//! HTTP routes.

/// Registers `path` with one handler per method; any other method gets 405
/// `METHOD_NOT_ALLOWED` with an `Allow` header listing these. The same line records
/// `(method, path)` in the route [`table`], which the OpenAPI document is checked against.
macro_rules! resource {
    ($cfg:expr, $path:expr, $($method:ident => $handler:expr),+ $(,)?) => {
        crate::routes::Registrar::resource($cfg, $path, &[$(stringify!($method)),+], || {
            actix_web::web::resource($path)
                $(.route(actix_web::web::$method().to($handler)))+
                .default_service(actix_web::web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(
                        crate::errors::HttpError::method_not_allowed(&[$(stringify!($method)),+]),
                    )
                }))
        })
    };
}

/// Where [`resource!`] puts a route: an actix service config, or the route [`Table`].
pub trait Registrar {
    /// Adds `path` answering `methods` (lower-case names); `build` makes the resource.
    fn resource(
        &mut self,
        path: &'static str,
        methods: &[&'static str],
        build: impl FnOnce() -> actix_web::Resource,
    );
}

impl Registrar for web::ServiceConfig {
    fn resource(
        &mut self,
        _path: &'static str,
        _methods: &[&'static str],
        build: impl FnOnce() -> actix_web::Resource,
    ) {
        self.service(build());
    }
}

/// Every `(method, path)` registered, in registration order (paths as actix writes
/// them, `{id}` segments included, which is also how OpenAPI writes them).
#[derive(Debug, Default)]
pub struct Table(pub Vec<(Method, &'static str)>);

impl Registrar for Table {
    fn resource(
        &mut self,
        path: &'static str,
        methods: &[&'static str],
        _build: impl FnOnce() -> actix_web::Resource,
    ) {
        for m in methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .expect("resource! takes actix's method helpers, all valid methods");
            self.0.push((method, path));
        }
    }
}

/// The route table: every REST and WebSocket route of the main port (with `/metrics`,
/// which may live on a port of its own), built by the same [`resource!`] lines that
/// register them.
pub fn table() -> Vec<(Method, &'static str)> {
    let mut t = Table::default();
    configure(&mut t);
    metrics::configure(&mut t);
    t.0
}

mod accounts;
pub mod admin;
mod auth;
mod backtests;
mod health;
mod keys;
mod limits;
mod market_data;
pub mod metrics;
pub mod openapi;
mod sessions;

use actix_web::http::Method;
use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut impl Registrar) {
    resource!(cfg, "/health", get => health::health);
    resource!(cfg, "/ready", get => health::ready);
    resource!(cfg, "/ws/health", get => health::ws_health);
    resource!(cfg, "/auth/token", post => auth::token);
    resource!(cfg, "/auth/validate", post => auth::validate);
    resource!(cfg, "/auth/servers", get => accounts::servers);
    resource!(cfg, "/auth/register", post => accounts::register);
    resource!(cfg, "/auth/verify-email", post => accounts::verify_email);
    resource!(cfg, "/auth/resend-verification", post => accounts::resend_verification);
    resource!(cfg, "/auth/password/forgot", post => accounts::forgot_password);
    resource!(cfg, "/auth/password/reset", post => accounts::reset_password);
    resource!(cfg, "/auth/password/change", post => accounts::change_password);
    resource!(cfg, "/auth/login", post => accounts::login);
    resource!(cfg, "/auth/refresh", post => accounts::refresh);
    resource!(cfg, "/auth/logout", post => accounts::logout);
    resource!(cfg, "/auth/me", get => accounts::me);
    resource!(cfg, "/auth/sessions", get => accounts::sessions);
    resource!(cfg, "/auth/sessions/{id}", delete => accounts::end);
    resource!(cfg, "/auth/totp/enrol", post => accounts::totp_enrol);
    resource!(cfg, "/auth/totp/confirm", post => accounts::totp_confirm);
    resource!(cfg, "/auth/totp/disable", post => accounts::totp_disable);
    resource!(cfg, "/api/keys", get => keys::keys, post => keys::create_key);
    resource!(cfg, "/api/keys/{id}", delete => keys::revoke_key);
    resource!(cfg, "/api/keys/{id}/rotate", post => keys::rotate_key);
    resource!(cfg, "/api/limits", get => limits::limits);
    resource!(cfg, "/api/market-data", get => market_data::catalog);
    resource!(cfg, "/api/market-data/{provider}/{symbol}/bars", get => market_data::bars);
    resource!(cfg, "/api/strategies", get => backtests::strategies);
    resource!(cfg, "/api/backtests", post => backtests::create);
    resource!(cfg, "/api/backtests/{id}", get => backtests::get);
    resource!(cfg, "/api/backtests/{id}/cancel", post => backtests::cancel);
    resource!(cfg, "/api/sessions", get => sessions::list);
    resource!(cfg, "/api/sessions/{id}", get => sessions::get, delete => sessions::delete);
    resource!(cfg, "/api/sessions/{id}/trades.csv", get => sessions::trades_csv);
    resource!(cfg, "/ws/simulate", get => crate::ws::simulate);
    resource!(cfg, "/api/openapi.json", get => openapi::document);
    admin::configure(cfg);
}

pub(crate) use crate::translate::rfc3339;
