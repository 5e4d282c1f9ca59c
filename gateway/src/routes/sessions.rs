//! A user's sessions over REST (PROTOCOL.md section 6): `GET /api/sessions`,
//! `GET /api/sessions/{id}`, `GET /api/sessions/{id}/trades.csv` and
//! `DELETE /api/sessions/{id}`, with
//! `Authorization: Bearer <jwt>`.
//!
//! Live sessions come from this node's registry, finished ones from the database.
//! Another user's session id is answered exactly like an id that does not exist (404
//! `SESSION_NOT_FOUND`), never 403: a 403 would tell the caller that the id is in use.

use std::collections::HashSet;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth::{AuthError, Page, ResultStore};
use protocol::{format_wire_time, SessionDetail, SessionEntry, SessionListResponse, TradeData};
use session_actor::actor::GetState;
use uuid::Uuid;

use crate::errors::HttpError;
use crate::extract::Authenticated;
use crate::registry::results::{live_detail, live_entry, stored_detail, stored_entry};
use crate::registry::{DeleteSession, FindSession, LocalSession, LocalSessions};
use crate::state::AppState;

/// Page size when the request gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 200;

#[derive(serde::Deserialize)]
struct Paging {
    #[serde(default)]
    offset: u64,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// `GET /api/sessions?offset=&limit=`: newest first, this node's live sessions before
/// finished ones.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let user = claims.sub;
    let paging = web::Query::<Paging>::from_query(req.query_string())
        .map_err(|_| HttpError::invalid_params("offset and limit must be non-negative integers"))?
        .into_inner();
    if !(1..=MAX_LIMIT).contains(&paging.limit) {
        return Err(HttpError::invalid_params(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }

    let local = state
        .registry
        .send(LocalSessions {
            user_id: user.to_string(),
        })
        .await?;
    let mut here: Vec<SessionEntry> = Vec::with_capacity(local.len());
    for session in local {
        match session {
            LocalSession::Live { handle, .. } => {
                // A session that stopped meanwhile is simply not listed.
                if let Ok(view) = handle.addr.send(GetState).await {
                    here.push(live_entry(&handle, &view));
                }
            }
            LocalSession::Backtest(view) => here.push(view.entry()),
            LocalSession::Finished(record) => here.push(stored_entry(&record.summary)?),
        }
    }
    here.sort_by(|a, b| (b.created_at, &b.session_id).cmp(&(a.created_at, &a.session_id)));

    // The listing is this node's sessions followed by the stored ones; a page may
    // span both. Stored rows of sessions also listed here (results being written, or
    // an id reused by a running session) are skipped.
    let offset = usize::try_from(paging.offset).unwrap_or(usize::MAX);
    let limit = paging.limit as usize;
    let listed_here: HashSet<String> = here.iter().map(|e| e.session_id.clone()).collect();
    let skipped_here = here.len().min(offset);
    let mut sessions: Vec<SessionEntry> = here.into_iter().skip(offset).take(limit).collect();
    let wanted = limit - sessions.len();
    if wanted > 0 {
        let stored_offset = paging.offset - skipped_here as u64;
        let extra = u32::try_from(listed_here.len()).unwrap_or(u32::MAX);
        let page = Page::new(stored_offset, (wanted as u32).saturating_add(extra));
        for summary in state.db.list_results(user, page).await? {
            if sessions.len() == limit {
                break;
            }
            if !listed_here.contains(&summary.session_id) {
                sessions.push(stored_entry(&summary)?);
            }
        }
    }
    Ok(HttpResponse::Ok().json(SessionListResponse {
        sessions,
        offset: paging.offset,
        limit: paging.limit,
    }))
}

/// `GET /api/sessions/{id}`: a live session's state and progress, or a finished one's
/// stored results.
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let detail = detail(&state, claims.sub, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `GET /api/sessions/{id}/trades.csv`: a finished session's closed round trips as
/// CSV (a header row, then one row per trade in closing order, every field of the
/// `trades` entries), for a spreadsheet. 409 while the session is still running.
pub async fn trades_csv(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let session_id = path.into_inner();
    let detail = detail(&state, claims.sub, session_id.clone()).await?;
    let Some(trades) = detail.trades else {
        return Err(HttpError::conflict(
            "the session is still running; its trades can be downloaded when it ends",
        ));
    };
    let body = trades_to_csv(&trades).map_err(|e| {
        tracing::error!(error = %e, "writing trades as CSV");
        HttpError::internal()
    })?;
    // The id is any text a client chose; only a plain name goes in the header.
    let name: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"trades-{name}.csv\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// The columns of `trades.csv`: the fields of [`TradeData`], in its order.
const TRADE_CSV_COLUMNS: [&str; 10] = [
    "symbol",
    "side",
    "quantity",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "pnl",
    "commission",
    "return_pct",
];

/// The trades as CSV, amounts and prices exactly as the JSON has them.
fn trades_to_csv(trades: &[TradeData]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(64 + trades.len() * 128));
    out.write_record(TRADE_CSV_COLUMNS)?;
    for t in trades {
        // As the JSON writes it (`null` there, empty here, when undefined).
        let return_pct = serde_json::Number::from_f64(t.return_pct)
            .map(|n| n.to_string())
            .unwrap_or_default();
        out.write_record([
            t.symbol.clone(),
            t.side.clone(),
            t.quantity.to_string(),
            format_wire_time(t.entry_time),
            format_wire_time(t.exit_time),
            t.entry_price.to_string(),
            t.exit_price.to_string(),
            t.pnl.to_string(),
            t.commission.to_string(),
            return_pct,
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// The user's session `session_id` as `GET /api/sessions/{id}` answers it: this
/// node's live or finished session, else the stored results; another user's id is
/// not found.
async fn detail(
    state: &AppState,
    user: Uuid,
    session_id: String,
) -> Result<SessionDetail, HttpError> {
    let local = state
        .registry
        .send(FindSession {
            session_id: session_id.clone(),
            user_id: user.to_string(),
        })
        .await?;
    match local {
        Some(LocalSession::Live {
            handle,
            params_json,
        }) => {
            if let Ok(view) = handle.addr.send(GetState).await {
                return Ok(live_detail(&handle, &view, &params_json));
            }
            // Stopped meanwhile: whatever it left is in the database.
        }
        Some(LocalSession::Backtest(view)) => return Ok(view.detail()),
        Some(LocalSession::Finished(record)) => return Ok(stored_detail(&record)?),
        None => {}
    }
    match state.db.result_for_user(user, &session_id).await {
        Ok(record) => Ok(stored_detail(&record)?),
        Err(AuthError::NotFound) => Err(HttpError::session_not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /api/sessions/{id}`: closes the session if it is live on this node and
/// deletes its stored results. 204, or 404 when the user has no such session.
pub async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<HttpResponse, HttpError> {
    let user = claims.sub;
    let session_id = path.into_inner();
    let here = state
        .registry
        .send(DeleteSession {
            session_id: session_id.clone(),
            user_id: user.to_string(),
        })
        .await?;
    let stored = match state.db.delete_result(user, &session_id).await {
        Ok(()) => true,
        Err(AuthError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    if here || stored {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(HttpError::session_not_found())
    }
}
