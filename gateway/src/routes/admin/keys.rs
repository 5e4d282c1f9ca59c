//! Any user's API keys.

use super::*;

/// `GET /admin/users/{id}/keys`: the user's API keys (never secrets).
pub async fn user_keys(
    state: web::Data<AppState>,
    path: web::Path<String>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    let keys: Vec<KeyEntry> = state
        .db
        .list_api_keys(id)
        .await?
        .into_iter()
        .map(KeyEntry::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "user_id": id.to_string(), "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    expires_in_days: Option<u32>,
}

/// `POST /admin/users/{id}/keys`: a new key for the user, its secret shown only in
/// this answer (201).
pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, as before the extractor: a body that does not
    // arrive is a 408 whoever sends it.
    let admin = Operator::check(&req, &state).await?;
    let id = path_id(&path, "user")?;
    let b: NewKey = body(&bytes)?;
    account(&state, id).await?;
    let mut new = auth::NewApiKey::new(b.name);
    new.expires_at = crate::routes::keys::key_expiry(&state, b.expires_in_days)?;
    let created = state.db.create_api_key(id, new).await?;
    let detail = created.key.audit_detail();
    audited(
        &state,
        &req,
        &admin,
        AuditKind::ApiKeyCreated,
        Some(id),
        detail,
    )
    .await;
    let mut body = serde_json::to_value(KeyEntry::from(created.key))
        .map_err(|_| HttpError::invalid_params("unencodable key"))?;
    body["user_id"] = json!(id.to_string());
    body["key"] = json!(created.secret.expose());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// `DELETE /admin/keys/{id}`: revokes any user's key; its tokens and connections end on
/// every node within a second (204, also for a key revoked already).
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    Operator(admin): Operator,
) -> Result<HttpResponse, HttpError> {
    let key_id = path_id(&path, "key")?;
    let key = match state.db.api_key_by_id(key_id).await {
        Ok(k) => k,
        Err(AuthError::NotFound) => return Err(not_found("key")),
        Err(e) => return Err(e.into()),
    };
    let revoked = state.db.revoke_api_key(key.user_id, key.id).await?;
    state.revoke(Revoked::Key(key.id)).await;
    if key.revoked_at.is_none() {
        let detail = revoked.audit_detail();
        audited(
            &state,
            &req,
            &admin,
            AuditKind::ApiKeyRevoked,
            Some(key.user_id),
            detail,
        )
        .await;
    }
    Ok(HttpResponse::NoContent().finish())
}
