//! Users: search, create or invite, plan, role, disable and enable, unlock,
//! second-factor reset.

use super::*;

/// A user as operators see it.
#[derive(Debug, Serialize)]
pub struct UserEntry {
    /// User id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// `free`, `professional` or `enterprise`.
    pub plan: Plan,
    /// `user` or `admin`.
    pub role: String,
    /// `active`, `disabled` or `locked`.
    pub status: String,
    /// Creation time.
    pub created_at: String,
    /// Last change of plan, role, status or password.
    pub updated_at: String,
    /// Whether a password is set (API-key-only and invited users have none).
    pub has_password: bool,
    /// When the email was verified.
    pub email_verified_at: Option<String>,
    /// Whether a TOTP second factor is required at login.
    pub totp_enabled: bool,
    /// Failed logins in the current window.
    pub failed_logins: u32,
    /// Logins are refused until then (only while that lies ahead).
    pub locked_until: Option<String>,
}

impl UserEntry {
    fn new(a: Account, now: DateTime<Utc>) -> Self {
        let locked_until = a.locked_until.filter(|until| *until > now).map(rfc3339);
        UserEntry {
            id: a.user.id.to_string(),
            email: a.user.email,
            plan: a.user.plan,
            role: a.user.role.to_string(),
            status: a.user.status.to_string(),
            created_at: rfc3339(a.user.created_at),
            updated_at: rfc3339(a.user.updated_at),
            has_password: a.has_password,
            email_verified_at: a.email_verified_at.map(rfc3339),
            totp_enabled: a.totp_enabled,
            failed_logins: a.failed_logins,
            locked_until,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFilters {
    email: Option<String>,
    plan: Option<String>,
    role: Option<String>,
    status: Option<String>,
    locked: Option<bool>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /admin/users?email=&plan=&role=&status=&locked=&limit=&offset=`: users in
/// creation order with the total matching.
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let f: UserFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let q = UserQuery {
        email_contains: f.email,
        plan: f.plan.as_deref().map(parse_plan).transpose()?,
        role: f.role.as_deref().map(parse_role).transpose()?,
        status: f
            .status
            .as_deref()
            .map(|s| {
                s.parse::<UserStatus>().map_err(|_| {
                    HttpError::invalid_params("status must be active, disabled or locked")
                })
            })
            .transpose()?,
        locked: f.locked,
        page: Page::new(offset, limit),
    };
    let listing = state.db.search_users(q).await?;
    let now = state.clock.now();
    let users: Vec<UserEntry> = listing
        .accounts
        .into_iter()
        .map(|a| UserEntry::new(a, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "users": users,
        "total": listing.total,
        "limit": limit,
        "offset": offset,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    /// Without one, the user is invited: a token that sets the password goes out (and
    /// until it is used the account works only with API keys an operator creates).
    password: Option<String>,
    plan: Option<String>,
    role: Option<String>,
}

/// What the audit log says of a user an operator created (here or at the console).
pub fn created_user_detail(user: &User, invited: bool) -> serde_json::Value {
    json!({
        "action": "create_user",
        "email": user.email,
        "plan": user.plan,
        "role": user.role.as_str(),
        "invited": invited,
    })
}

/// `POST /admin/users`: creates a user with a password (the operator vouches for the
/// address, so it counts as verified and the user can log in at once), or invites one
/// without: then a password token goes out through the notifier, and setting the
/// password with it (`POST /auth/password/reset`) also verifies the address (201).
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, as before the extractor: a body that does not
    // arrive is a 408 whoever sends it.
    let admin = Operator::check(&req, &state).await?;
    let b: CreateUser = body(&bytes)?;
    let mut new = NewUser::new(b.email);
    if let Some(plan) = &b.plan {
        new = new.plan(parse_plan(plan)?);
    }
    if let Some(role) = &b.role {
        new = new.role(parse_role(role)?);
    }
    let invited = b.password.is_none();
    let mut invitation_sent = false;
    let user = match b.password {
        Some(password) => {
            let r = state
                .db
                .register_user(new, Secret::new(password), client_ip(&req))
                .await?;
            // The operator vouches for the address, so the password works at once
            // (the registration's verification token is not sent; it expires unused).
            state
                .db
                .mark_email_verified(r.user.id, Some(admin.id))
                .await?;
            r.user
        }
        None => {
            // An invitation: the user chooses a password with the token, which also
            // proves the address.
            let user = state.db.create_user(new).await?;
            if let Some(token) = state
                .db
                .create_password_token(user.id, PasswordTokenPurpose::Invitation)
                .await?
            {
                state.notifier.invitation(&user.email, token.token.expose());
                invitation_sent = true;
            }
            user
        }
    };
    audited(
        &state,
        &req,
        &admin,
        AuditKind::AdminAction,
        Some(user.id),
        created_user_detail(&user, invited),
    )
    .await;
    let entry = UserEntry::new(account(&state, user.id).await?, state.clock.now());
    Ok(HttpResponse::Created().json(json!({
        "user": entry,
        "invited": invited,
        "invitation_sent": invitation_sent,
    })))
}

/// `GET /admin/users/{id}`: the user, their API keys and live login sessions.
pub async fn get_user(
    state: web::Data<AppState>,
    path: web::Path<String>,
    _: Operator,
) -> Result<HttpResponse, HttpError> {
    let id = path_id(&path, "user")?;
    let now = state.clock.now();
    let entry = UserEntry::new(account(&state, id).await?, now);
    let keys: Vec<KeyEntry> = state
        .db
        .list_api_keys(id)
        .await?
        .into_iter()
        .map(KeyEntry::from)
        .collect();
    let logins: Vec<serde_json::Value> = state
        .db
        .login_sessions(id)
        .await?
        .into_iter()
        .filter(|s| s.is_active_at(now))
        .map(|s| {
            json!({
                "id": s.id.to_string(),
                "created_at": rfc3339(s.created_at),
                "last_used_at": rfc3339(s.last_used_at),
                "expires_at": rfc3339(s.expires_at),
                "user_agent": s.user_agent,
                "ip": s.ip,
            })
        })
        .collect();
    let mut body =
        serde_json::to_value(entry).map_err(|_| HttpError::invalid_params("unencodable user"))?;
    body["keys"] = json!(keys);
    body["login_sessions"] = json!(logins);
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    plan: Option<String>,
    role: Option<String>,
    /// `active` or `disabled`.
    status: Option<String>,
}

/// `PATCH /admin/users/{id}` with any of `plan`, `role`, `status` (`active` or
/// `disabled`). Disabling refuses the user's tokens and closes their connections on
/// every node within a second. Operators cannot demote or disable themselves.
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, as before the extractor: a body that does not
    // arrive is a 408 whoever sends it.
    let admin = Operator::check(&req, &state).await?;
    let id = path_id(&path, "user")?;
    let b: UpdateUser = body(&bytes)?;
    let plan = b.plan.as_deref().map(parse_plan).transpose()?;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    let status = match b.status.as_deref() {
        None => None,
        Some("active") => Some(UserStatus::Active),
        Some("disabled") => Some(UserStatus::Disabled),
        Some(_) => {
            return Err(HttpError::invalid_params(
                "status must be active or disabled (a lockout is lifted with POST /admin/users/{id}/unlock)",
            ))
        }
    };
    if plan.is_none() && role.is_none() && status.is_none() {
        return Err(HttpError::invalid_params(
            "give at least one of plan, role and status",
        ));
    }
    if id == admin.id && (role == Some(Role::User) || status == Some(UserStatus::Disabled)) {
        return Err(HttpError::invalid_params(
            "operators cannot demote or disable their own account",
        ));
    }
    let before = account(&state, id).await?.user;
    if let Some(plan) = plan.filter(|p| *p != before.plan) {
        state.db.set_plan(id, plan).await?;
        let detail = json!({ "from": before.plan, "to": plan });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::PlanChanged,
            Some(id),
            detail,
        )
        .await;
    }
    if let Some(role) = role.filter(|r| *r != before.role) {
        state.db.set_role(id, role).await?;
        let detail = json!({ "from": before.role.as_str(), "to": role.as_str() });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::RoleChanged,
            Some(id),
            detail,
        )
        .await;
    }
    if let Some(status) = status.filter(|s| *s != before.status) {
        state.db.set_status(id, status).await?;
        if status == UserStatus::Disabled {
            // Tokens are refused and open WebSockets close on every node.
            state.revoke(Revoked::User(id)).await;
        }
        let detail = json!({ "from": before.status.as_str(), "to": status.as_str() });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::StatusChanged,
            Some(id),
            detail,
        )
        .await;
    }
    let entry = UserEntry::new(account(&state, id).await?, state.clock.now());
    Ok(HttpResponse::Ok().json(entry))
}

/// `POST /admin/users/{id}/unlock`: lifts a failed-login lockout (and a `locked`
/// status) and forgets the failures.
pub async fn unlock(
    state: web::Data<AppState>,
    path: web::Path<String>,
    Operator(admin): Operator,
) -> Result<HttpResponse, HttpError> {
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    // Audited by the store (account_unlocked, the operator as actor).
    match state.db.unlock_logins(id, Some(admin.id)).await {
        Ok(()) => {}
        Err(AuthError::NotFound) => return Err(not_found("user")),
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Ok().json(UserEntry::new(
        account(&state, id).await?,
        state.clock.now(),
    )))
}

/// `POST /admin/users/{id}/reset-2fa`: removes the user's TOTP secret and recovery
/// codes, so they log in with the password alone (and may enrol again).
pub async fn reset_second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    Operator(admin): Operator,
) -> Result<HttpResponse, HttpError> {
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    // Audited by the store when there was a factor (totp_disabled, the operator as
    // actor); a reset that found none is recorded here.
    let removed = match state.db.disable_totp(id, Some(admin.id)).await {
        Ok(()) => true,
        Err(AuthError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    if !removed {
        let detail = json!({ "action": "reset_2fa", "removed": false });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::AdminAction,
            Some(id),
            detail,
        )
        .await;
    }
    let entry = UserEntry::new(account(&state, id).await?, state.clock.now());
    Ok(HttpResponse::Ok().json(json!({ "user": entry, "removed": removed })))
}
