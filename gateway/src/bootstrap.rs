//! First start on an empty database: an admin user and a demo API key, shown once.

use auth::{AccountStore, AuthError, NewApiKey, NewUser, Plan, Role, UserStore};

/// Credentials created on first start.
pub struct Bootstrap {
    /// The admin's email.
    pub email: String,
    /// The demo API key (shown once; only its hash is stored).
    pub api_key: String,
}

/// Creates the admin and a demo key when the database has no user yet.
pub async fn first_start(
    db: &(impl UserStore + AccountStore),
    admin_email: &str,
) -> Result<Option<Bootstrap>, AuthError> {
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    let mut new = NewUser::new(admin_email);
    new.role = Role::Admin;
    new.plan = Plan::Enterprise;
    let user = match db.create_user(new).await {
        Ok(u) => u,
        // Another node bootstrapped at the same moment.
        Err(AuthError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    // The operator's own address, from the configuration: nothing to prove.
    db.mark_email_verified(user.id, None).await?;
    let key = db.create_api_key(user.id, NewApiKey::new("demo")).await?;
    Ok(Some(Bootstrap {
        email: user.email,
        api_key: key.secret.expose().clone(),
    }))
}
