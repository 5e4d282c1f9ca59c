//! A user's sessions over REST (PROTOCOL.md section 6): `GET /api/sessions`,
//! `GET /api/sessions/{id}` and `DELETE /api/sessions/{id}`, with
//! `Authorization: Bearer <jwt>`.
//!
//! Live sessions come from this node's registry, finished ones from the database.
//! Another user's session id is answered exactly like an id that does not exist (404
//! `SESSION_NOT_FOUND`), never 403: a 403 would tell the caller that the id is in use.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use auth::{AuthError, Page, ResultStore};
use protocol::{SessionEntry, SessionListResponse};
use session_actor::actor::GetState;

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
    let user = claims.sub;
    let session_id = path.into_inner();
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
                return Ok(HttpResponse::Ok().json(live_detail(&handle, &view, &params_json)));
            }
            // Stopped meanwhile: whatever it left is in the database.
        }
        Some(LocalSession::Backtest(view)) => {
            return Ok(HttpResponse::Ok().json(view.detail()));
        }
        Some(LocalSession::Finished(record)) => {
            return Ok(HttpResponse::Ok().json(stored_detail(&record)?));
        }
        None => {}
    }
    match state.db.result_for_user(user, &session_id).await {
        Ok(record) => Ok(HttpResponse::Ok().json(stored_detail(&record)?)),
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
