//! The audit log, filtered and paged, as JSON or CSV.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFilters {
    user: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    until: Option<String>,
    ip: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /admin/audit?user=&kind=&from=&until=&ip=&limit=&offset=`: audit events, newest
/// first, with the total matching. `user` matches the actor or the subject.
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let f: AuditFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let (from, until) = time_range(f.from.as_deref(), f.until.as_deref())?;
    let kind = f
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<AuditKind>().map_err(|_| {
                let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                HttpError::invalid_params(format!("kind must be one of {}", kinds.join(", ")))
            })
        })
        .transpose()?;
    if f.ip.as_deref().is_some_and(|ip| ip.chars().count() > 64) {
        return Err(HttpError::invalid_params("ip is too long"));
    }
    let q = AuditQuery {
        user_id: f.user.as_deref().map(parse_user).transpose()?,
        kind,
        from,
        until,
        ip: f.ip,
        page: Page::new(offset, limit),
    };
    let total = state.db.count_audit(q.clone()).await?;
    let events: Vec<serde_json::Value> = state
        .db
        .audit_events(q)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                "kind": e.kind.as_str(),
                "actor_user_id": e.actor_user_id.map(|u| u.to_string()),
                "subject_user_id": e.subject_user_id.map(|u| u.to_string()),
                "ip": e.ip,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "events": events,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}
