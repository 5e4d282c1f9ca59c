//! `GET /api/limits`: the caller's plan limits and request limits, what is in use, and
//! when the counted windows reset (PROTOCOL.md sections 6 and 7).

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::config::RateRule;
use crate::errors::HttpError;
use crate::extract::Authenticated;
use crate::limits::requests::{Bucket, Counted};
use crate::registry::{LocalSession, LocalSessions};
use crate::state::AppState;

#[derive(Serialize)]
struct Rule {
    requests: u32,
    period_sec: u64,
}

impl From<&RateRule> for Rule {
    fn from(r: &RateRule) -> Self {
        Rule {
            requests: r.requests,
            period_sec: r.period_sec,
        }
    }
}

#[derive(Serialize)]
struct Limits {
    concurrent_connections: u32,
    concurrent_sessions: u32,
    messages_per_second: u32,
    max_simulation_duration_sec: u64,
    /// Working orders per session, bracket exits included.
    max_working_orders: u32,
    /// Per user; `null` when request limits are off.
    api_requests: Option<Rule>,
    /// Per client IP; `null` when request limits are off.
    auth_requests_per_ip: Option<Rule>,
    /// Per client IP; `null` when request limits are off.
    ws_connects_per_ip: Option<Rule>,
}

#[derive(Serialize)]
struct Usage {
    connections: u32,
    sessions: u32,
    /// Requests counted in the current `api` window, this one included.
    api_requests: Option<u32>,
}

#[derive(Serialize)]
struct ResetTimes {
    /// When the current `api` window ends (seconds since the Unix epoch).
    api_requests: Option<i64>,
}

#[derive(Serialize)]
struct LimitsResponse {
    plan: protocol::Plan,
    limits: Limits,
    usage: Usage,
    reset_times: ResetTimes,
}

/// `GET /api/limits`.
pub async fn limits(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let user = claims.sub.to_string();
    let plan = state.settings.plans.of(claims.plan);
    let limiter = &state.limiter;
    let rule = |b: Bucket| limiter.enabled().then(|| Rule::from(limiter.rule(b)));
    let counted = req.extensions().get::<Counted>().copied();
    let (connections, sessions) = in_use(&state, &user).await;
    Ok(HttpResponse::Ok().json(LimitsResponse {
        plan: claims.plan,
        limits: Limits {
            concurrent_connections: plan.concurrent_connections,
            concurrent_sessions: plan.concurrent_sessions,
            messages_per_second: plan.messages_per_second,
            max_simulation_duration_sec: plan.max_simulation_duration_sec,
            max_working_orders: plan.max_working_orders,
            api_requests: rule(Bucket::Api),
            auth_requests_per_ip: rule(Bucket::Auth),
            ws_connects_per_ip: rule(Bucket::WsConnect),
        },
        usage: Usage {
            connections,
            sessions,
            api_requests: counted.map(|Counted(d)| d.limit - d.remaining),
        },
        reset_times: ResetTimes {
            api_requests: counted.map(|Counted(d)| d.reset),
        },
    }))
}

/// Open connections and live sessions of `user`: across the cluster with Redis, else
/// (or while Redis cannot answer) on this node.
async fn in_use(state: &AppState, user: &str) -> (u32, u32) {
    let local_sessions = async {
        state
            .registry
            .send(LocalSessions {
                user_id: user.to_string(),
            })
            .await
            .map(|l| {
                l.iter()
                    .filter(|s| matches!(s, LocalSession::Live { .. } | LocalSession::Backtest(_)))
                    .count() as u32
            })
            .unwrap_or(0)
    };
    state.concurrency.in_use(user, local_sessions).await
}
