//! Live simulation sessions across the cluster, and stopping one.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFilters {
    user: Option<String>,
    node: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// Emails of `users`, looked up once each; a user that cannot be read is left out.
async fn emails(state: &AppState, users: impl Iterator<Item = String>) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for user in users {
        if found.contains_key(&user) {
            continue;
        }
        if let Ok(id) = user.parse::<Uuid>() {
            if let Ok(u) = state.db.user_by_id(id).await {
                found.insert(user, u.email);
            }
        }
    }
    found
}

/// `GET /admin/sessions?user=&node=&limit=&offset=`: live simulation sessions on every
/// node, newest first.
pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let f: SessionFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let user = f.user.as_deref().map(parse_user).transpose()?;
    let cluster = state.control.cluster().await;
    let matching: Vec<LiveSession> = cluster
        .sessions
        .into_iter()
        .filter(|s| user.is_none_or(|u| s.user_id == u.to_string()))
        .filter(|s| f.node.as_ref().is_none_or(|n| s.node == *n))
        .collect();
    let total = matching.len();
    let page: Vec<LiveSession> = matching
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    let emails = emails(&state, page.iter().map(|s| s.user_id.clone())).await;
    let sessions: Vec<serde_json::Value> = page
        .into_iter()
        .map(|s| {
            let email = emails.get(&s.user_id).cloned();
            let mut v = json!(s);
            v["email"] = json!(email);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "sessions": sessions,
        "total": total,
        "limit": limit,
        "offset": offset,
        "nodes": cluster.nodes,
        "complete": cluster.complete,
    })))
}

/// `?user=` of `DELETE /admin/sessions/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopFilter {
    user: Option<String>,
}

/// `DELETE /admin/sessions/{id}?user=`: stops a live session on whichever node runs it.
/// Its client gets `simulation_end` with reason `stopped`, and the results are stored.
/// Session ids are unique per user: `user` names the owner, and may be left out when
/// only one user has a live session with this id.
pub async fn stop_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    Operator(admin): Operator,
) -> Result<HttpResponse, HttpError> {
    let session_id = path.into_inner();
    if session_id.is_empty()
        || session_id.len() > auth::MAX_SESSION_ID_BYTES
        || session_id.chars().any(char::is_control)
    {
        return Err(HttpError::session_not_found());
    }
    let filter = web::Query::<StopFilter>::from_query(req.query_string())
        .map_err(|_| HttpError::invalid_params("the only query parameter is `user`"))?
        .into_inner();
    match state
        .control
        .stop(&session_id, filter.user.as_deref())
        .await
    {
        StopOutcome::Stopped { node, user_id } => {
            let detail =
                json!({ "action": "stop_session", "session_id": session_id, "node": node });
            let subject = user_id.parse().ok();
            audited(
                &state,
                &req,
                &admin,
                AuditKind::AdminAction,
                subject,
                detail,
            )
            .await;
            Ok(HttpResponse::Ok().json(json!({
                "session_id": session_id,
                "node": node,
                "user_id": user_id,
                "stopped": true,
            })))
        }
        StopOutcome::NotFound => Err(HttpError::session_not_found()),
        StopOutcome::Ambiguous { users } => Err(HttpError::invalid_params(format!(
            "{} users have a live session with this id; name its owner with ?user= (one of {})",
            users.len(),
            users.join(", ")
        ))),
        StopOutcome::NoAnswer { node } => Err(HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::NodeTimeout,
            format!(
                "node `{node}` runs this session but did not confirm the stop within {} s",
                crate::cluster::control::STOP_TIMEOUT.as_secs()
            ),
        )),
        StopOutcome::Unavailable => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "the session store is unavailable; sessions on other nodes cannot be reached",
        )),
    }
}
