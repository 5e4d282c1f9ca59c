//! [`UserStore`] on both backends: users and API keys.

use chrono::{DateTime, Utc};
use protocol::Plan;
use sqlx::{ColumnIndex, Executor, Row};
use uuid::Uuid;

use super::shared::{
    conflict_or, is_foreign_key_violation, is_unique_violation, log_touch_failure,
    presented_prefix, EMAIL_TAKEN, JOINED_USER, KEY_INSERT_ATTEMPTS, USER,
};
use super::sql::{
    Borrowed, Column, Dialect, Id, Param, Store, Ts, Value, KEY_COLUMNS, USER_COLUMNS,
};
use super::{Revocations, UserStore};
use crate::email::normalise_email;
use crate::error::{AuthError, KeyRejection};
use crate::model::{
    ApiKey, AuthenticatedKey, CreatedApiKey, NewApiKey, NewUser, Page, User, UserStatus,
};

impl<DB: Dialect> UserStore for Store<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'i> &'i str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: Borrowed<'a, DB>,
    for<'a> &'a [u8]: Borrowed<'a, DB>,
    String: Value<DB>,
    Option<String>: Value<DB>,
    Vec<u8>: Value<DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    Option<f64>: Value<DB>,
    Id: Value<DB>,
    Option<Id>: Value<DB>,
    Ts: Param<DB>,
    Option<Ts>: Param<DB>,
    DateTime<Utc>: Column<DB>,
{
    async fn create_user(&self, new: NewUser) -> Result<User, AuthError> {
        let user = self.core.new_user(new)?;
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(Id(user.id))
        .bind(user.email.as_str())
        .bind(user.plan.as_str())
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(Ts(user.created_at))
        .bind(Ts(user.updated_at))
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, EMAIL_TAKEN))?;
        Ok(user)
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<User, AuthError> {
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(Id(user_id))
            .fetch_optional(self.pool())
            .await?
            .ok_or(AuthError::NotFound)
            .and_then(|row| Self::user_from_row(&row, &USER))
    }

    async fn user_by_email(&self, email: &str) -> Result<User, AuthError> {
        // An address that cannot be normalised cannot have been stored.
        let Ok(email) = normalise_email(email) else {
            return Err(AuthError::NotFound);
        };
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::user_from_row(&row, &USER))
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>, AuthError> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| Self::user_from_row(row, &USER))
        .collect()
    }

    async fn count_users(&self) -> Result<u64, AuthError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn set_plan(&self, user_id: Uuid, plan: Plan) -> Result<User, AuthError> {
        sqlx::query(&format!(
            "UPDATE users SET plan = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(plan.as_str())
        .bind(Ts(self.core.now()))
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::user_from_row(&row, &USER))
    }

    async fn set_status(&self, user_id: Uuid, status: UserStatus) -> Result<User, AuthError> {
        sqlx::query(&format!(
            "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(status.as_str())
        .bind(Ts(self.core.now()))
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::user_from_row(&row, &USER))
    }

    async fn create_api_key(
        &self,
        user_id: Uuid,
        new: NewApiKey,
    ) -> Result<CreatedApiKey, AuthError> {
        self.core.check_new_key(&new)?;
        let mut attempt = 1;
        loop {
            let (created, hash) = self.core.new_key(user_id, &new)?;
            match Self::insert_api_key(self.pool(), &created.key, &hash).await {
                Ok(_) => return Ok(created),
                Err(e) if is_foreign_key_violation(&e) => return Err(AuthError::NotFound),
                // A prefix collision: draw a new key.
                Err(e) if is_unique_violation(&e) && attempt < KEY_INSERT_ATTEMPTS => attempt += 1,
                Err(e) => return Err(AuthError::Database(e)),
            }
        }
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, AuthError> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(Id(user_id))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(Self::key_from_row)
        .collect()
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<ApiKey, AuthError> {
        sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND user_id = $3 RETURNING {KEY_COLUMNS}"
        ))
        .bind(Ts(self.core.now()))
        .bind(Id(key_id))
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::key_from_row(&row))
    }

    async fn expire_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<ApiKey, AuthError> {
        sqlx::query(&format!(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 \
             THEN $1 ELSE expires_at END WHERE id = $2 AND user_id = $3 RETURNING {KEY_COLUMNS}"
        ))
        .bind(Ts(at))
        .bind(Id(key_id))
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::key_from_row(&row))
    }

    async fn authenticate_api_key(&self, presented: &str) -> Result<AuthenticatedKey, AuthError> {
        let prefix = presented_prefix(presented)?;
        let row = sqlx::query(
            "SELECT k.id, k.user_id, k.name, k.prefix, k.key_hash, k.created_at, \
                    k.last_used_at, k.expires_at, k.revoked_at, \
                    u.email AS u_email, u.plan AS u_plan, u.role AS u_role, \
                    u.status AS u_status, u.created_at AS u_created_at, \
                    u.updated_at AS u_updated_at \
             FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::InvalidKey(KeyRejection::UnknownPrefix))?;
        let key = Self::key_from_row(&row)?;
        let user = Self::user_from_row(&row, &JOINED_USER)?;
        let hash: &[u8] = row.try_get("key_hash")?;
        let now = self.core.now();
        self.core.check_key(presented, hash, &key, &user, now)?;

        if let Some(cutoff) = self.core.touch_cutoff(&key, now) {
            let touched = sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(Ts(now))
            .bind(Id(key.id))
            .bind(Ts(cutoff))
            .execute(self.pool())
            .await;
            if let Err(e) = touched {
                log_touch_failure(key.id, &e);
            }
        }
        Ok(AuthenticatedKey {
            user,
            key_id: key.id,
        })
    }

    async fn revocations_since(&self, since: DateTime<Utc>) -> Result<Revocations, AuthError> {
        let keys = sqlx::query("SELECT id FROM api_keys WHERE revoked_at >= $1")
            .bind(Ts(since))
            .fetch_all(self.pool())
            .await?;
        let users = sqlx::query("SELECT id FROM users WHERE status <> 'active'")
            .fetch_all(self.pool())
            .await?;
        let sessions = sqlx::query("SELECT id FROM login_sessions WHERE revoked_at >= $1")
            .bind(Ts(since))
            .fetch_all(self.pool())
            .await?;
        let ids = |rows: Vec<DB::Row>| -> Result<Vec<Uuid>, AuthError> {
            rows.iter().map(|row| Self::get_id(row, "id")).collect()
        };
        Ok(Revocations {
            keys: ids(keys)?,
            users: ids(users)?,
            sessions: ids(sessions)?,
        })
    }

    async fn ping(&self) -> Result<(), AuthError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }
}
