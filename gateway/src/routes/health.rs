//! Liveness (`/health`), readiness (`/ready`) and the WebSocket health probe
//! (`/ws/health`).

use actix_web::{web, HttpRequest, HttpResponse};
use auth::UserStore;
use protocol::{ErrorCode, HealthData, HealthStatus, ServerMessage};

use crate::state::AppState;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What the node can currently do.
async fn status(state: &AppState) -> (HealthStatus, String) {
    if state.draining() {
        return (HealthStatus::Unhealthy, "shutting down".into());
    }
    let db = state.db.ping().await;
    let store = state.session_store.ping().await;
    match (db, store) {
        (Ok(()), Ok(())) => (
            HealthStatus::Ok,
            "database and session store reachable".into(),
        ),
        (Err(_), Ok(())) => (HealthStatus::Degraded, "user database unreachable".into()),
        (Ok(()), Err(_)) => (HealthStatus::Degraded, "session store unreachable".into()),
        (Err(_), Err(_)) => (
            HealthStatus::Unhealthy,
            "database and session store unreachable".into(),
        ),
    }
}

fn health_data(status: HealthStatus, message: String) -> HealthData {
    HealthData {
        status,
        server_time: now(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        message: Some(message),
    }
}

/// Liveness: the process answers.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(health_data(HealthStatus::Ok, "alive".into()))
}

/// Readiness: 200 when the database and the session store answer, 503 otherwise. A
/// 503 is in the one error shape too (`error` `SERVICE_UNAVAILABLE`, `message` naming
/// what is down), beside the probe's own fields.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (status, message) = status(&state).await;
    let body = health_data(status, message);
    match status {
        HealthStatus::Ok => HttpResponse::Ok().json(body),
        _ => {
            let mut body = serde_json::to_value(body).unwrap_or_default();
            body["error"] = ErrorCode::ServiceUnavailable.as_str().into();
            HttpResponse::ServiceUnavailable().json(body)
        }
    }
}

/// Upgrades, sends one `health` message, and closes.
pub async fn ws_health(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, _stream) = actix_ws::handle(&req, body)?;
    actix_web::rt::spawn(async move {
        let (status, message) = status(&state).await;
        let frame = ServerMessage::Health(health_data(status, message)).to_frame(None, now());
        if session.text(frame).await.is_ok() {
            let _ = session.close(None).await;
        }
    });
    Ok(response)
}
