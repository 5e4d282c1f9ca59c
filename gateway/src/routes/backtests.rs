//! Server-side backtests over REST: `GET /api/strategies` describes the built-in
//! strategies and their parameters; `POST /api/backtests` runs one on the server with
//! the same engine a WebSocket session uses; `GET /api/backtests/{id}` follows it and
//! `POST /api/backtests/{id}/cancel` stops it. Results are stored like any session's
//! (`GET /api/sessions/{id}`). Any Bearer token (an API key's or a login's).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth::{AuthError, ResultStore, SimulationRecord};
use protocol::{
    BacktestRequest, BacktestState, BacktestStatus, EndReason, ErrorCode, StrategiesResponse,
};
use serde_json::{Map, Value};

use crate::errors::{HttpError, LimitPeriod, RateLimited};
use crate::extract::Authenticated;
use crate::metrics::RateLimit;
use crate::registry::{
    BacktestRefusal, CancelBacktest, CreateError, FindSession, LocalSession, SessionSpec,
    StartBacktest,
};
use crate::state::AppState;

/// `GET /api/strategies`: every built-in strategy with its parameters (name, type,
/// default, bounds), so a form can be generated from it.
pub async fn strategies(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(StrategiesResponse {
        strategies: engine::catalog::strategies(),
    })
}

/// `POST /api/backtests`: checks the strategy and the session, then queues the run on
/// this node's backtest workers. 202 with the backtest's status and a `Location`.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<BacktestRequest>,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, so a bad body is answered 400 first.
    let claims = Authenticated::check(&req, &state)?;
    let request = body.into_inner();
    let built = engine::catalog::build(&request.strategy, &request.params)
        .map_err(|e| HttpError::invalid_params(e.message))?;
    let session = request.session_params();
    protocol::validate::validate_params(&session)
        .map_err(|e| HttpError::invalid_params(e.message))?;
    // What is stored with the results: the request with every strategy parameter,
    // defaults filled in, so the run can be reproduced from it alone.
    let mut stored = request.clone();
    stored.params = built.params.clone();
    let mut spec = SessionSpec::from_params(None, &session);
    spec.params_json = serde_json::to_string(&stored).map_err(|_| HttpError::internal())?;

    let plan = state.settings.plans.of(claims.plan);
    let view = state
        .registry
        .send(StartBacktest {
            user_id: claims.sub.to_string(),
            max_sessions: plan.concurrent_sessions,
            max_duration: Duration::from_secs(plan.max_simulation_duration_sec),
            max_working_orders: plan.max_working_orders,
            spec,
            strategy: built.strategy,
            strategy_id: request.strategy,
            params: built.params,
        })
        .await?
        .map_err(|e| refusal(&state, e))?;
    let status = view.status();
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/backtests/{}", status.session_id),
        ))
        .json(status))
}

/// The answer to a backtest that was not accepted.
fn refusal(state: &AppState, e: BacktestRefusal) -> HttpError {
    match e {
        BacktestRefusal::PlanLimit { limit, message } => {
            state.metrics.rate_limited(RateLimit::Sessions);
            // A slot frees when a run ends, which no window predicts: retry soon.
            let retry = 5;
            HttpError::rate_limited(RateLimited {
                kind: RateLimit::Sessions.as_str(),
                limit: limit.into(),
                remaining: 0,
                reset: chrono::Utc::now().timestamp() + retry as i64,
                retry_after: retry,
                period: LimitPeriod::Concurrent,
                message,
            })
        }
        BacktestRefusal::Busy(message) => HttpError::service_unavailable(message),
        BacktestRefusal::Create(CreateError { code, message }) => match code {
            ErrorCode::DataFetchFailed => HttpError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                ErrorCode::DataFetchFailed,
                message,
            ),
            ErrorCode::SessionCreateFailed | ErrorCode::ServiceBusy => {
                HttpError::service_unavailable(message)
            }
            _ => HttpError::invalid_params(message),
        },
    }
}

/// `GET /api/backtests/{id}`: a queued or running backtest's progress, or a finished
/// one's end (its results are at `results_url`). 404 for an id that is not one of the
/// caller's backtests.
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let (user_id, session_id) = (claims.sub.to_string(), path.into_inner());
    let local = state
        .registry
        .send(FindSession {
            session_id: session_id.clone(),
            user_id,
        })
        .await?;
    let status = match local {
        Some(LocalSession::Backtest(view)) => view.status(),
        Some(LocalSession::Finished(record)) => finished_status(&record)?,
        Some(LocalSession::Live { .. }) => return Err(HttpError::session_not_found()),
        None => match state.db.result_for_user(claims.sub, &session_id).await {
            Ok(record) => finished_status(&record)?,
            Err(AuthError::NotFound) => return Err(HttpError::session_not_found()),
            Err(e) => return Err(e.into()),
        },
    };
    Ok(HttpResponse::Ok().json(status))
}

/// `POST /api/backtests/{id}/cancel`: stops a queued or running backtest; the run ends
/// within 1024 bars with reason `stopped` and its results so far are stored. 202 with
/// the status as it was (`cancel_requested: true`); 409 `CONFLICT` when it has already
/// finished; 404 when it is not one of the caller's backtests.
pub async fn cancel(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let (user_id, session_id) = (claims.sub.to_string(), path.into_inner());
    let cancelled = state
        .registry
        .send(CancelBacktest {
            session_id: session_id.clone(),
            user_id: user_id.clone(),
        })
        .await?;
    if let Some(view) = cancelled {
        return Ok(HttpResponse::Accepted().json(view.status()));
    }
    let finished = match state
        .registry
        .send(FindSession {
            session_id: session_id.clone(),
            user_id,
        })
        .await?
    {
        Some(LocalSession::Finished(record)) => Some(finished_status(&record)?),
        Some(_) => None,
        None => match state.db.result_for_user(claims.sub, &session_id).await {
            Ok(record) => Some(finished_status(&record)?),
            Err(AuthError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
    };
    match finished {
        Some(_) => Err(HttpError::conflict("the backtest has already finished")),
        None => Err(HttpError::session_not_found()),
    }
}

/// The status of a finished run, if it was a backtest (its stored request names a
/// strategy).
fn finished_status(record: &SimulationRecord) -> Result<BacktestStatus, HttpError> {
    let request: BacktestRequest =
        serde_json::from_str(&record.params).map_err(|_| HttpError::session_not_found())?;
    let s = &record.summary;
    let end: Map<String, Value> = serde_json::from_str(&record.metrics).unwrap_or_default();
    let ticks = end
        .get("ticks_processed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(BacktestStatus {
        session_id: s.session_id.clone(),
        state: match s.reason {
            EndReason::Completed => BacktestState::Completed,
            EndReason::Stopped => BacktestState::Stopped,
            EndReason::MaxDuration => BacktestState::MaxDuration,
            EndReason::Error => BacktestState::Error,
        },
        strategy: request.strategy,
        params: request.params,
        ticks_processed: ticks,
        ticks_total: ticks,
        progress_pct: 100.0,
        cancel_requested: false,
        created_at: s.created_at.timestamp(),
        finished_at: Some(s.finished_at.timestamp()),
        results_url: format!("/api/sessions/{}", s.session_id),
    })
}
