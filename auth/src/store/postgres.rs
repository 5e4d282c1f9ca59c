//! [`UserStore`] on PostgreSQL (the cluster setup).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::Plan;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use uuid::Uuid;

use super::shared::{
    conflict_or, decode_enum, is_foreign_key_violation, is_unique_violation, log_touch_failure,
    presented_prefix, StoreCore, UserColumns, EMAIL_TAKEN, JOINED_USER, KEY_INSERT_ATTEMPTS, USER,
};
use super::{Backend, Revocations, StoreOptions, UserStore};
use crate::email::normalise_email;
use crate::error::{AuthError, KeyRejection};
use crate::model::{
    ApiKey, AuthenticatedKey, CreatedApiKey, NewApiKey, NewUser, Page, User, UserStatus,
};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// Postgres-backed store. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    pub(super) core: StoreCore,
}

impl PostgresStore {
    /// Connects to a `postgres://` or `postgresql://` URL and applies migrations
    /// (sqlx holds an advisory lock meanwhile, so gateways starting together are safe).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, AuthError> {
        if Backend::from_url(url)? != Backend::Postgres {
            return Err(AuthError::InvalidDatabaseUrl(None));
        }
        let core = StoreCore::new(&options)?;
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| AuthError::InvalidDatabaseUrl(Some(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, core })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The underlying pool, for other tables that share this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub(super) fn get_id(row: &PgRow, column: &str) -> Result<Uuid, AuthError> {
    Ok(row.try_get(column)?)
}

pub(super) fn user_from_row(row: &PgRow, c: &UserColumns) -> Result<User, AuthError> {
    Ok(User {
        id: get_id(row, c.id)?,
        email: row.try_get(c.email)?,
        plan: decode_enum(c.plan, row.try_get(c.plan)?)?,
        role: decode_enum(c.role, row.try_get(c.role)?)?,
        status: decode_enum(c.status, row.try_get(c.status)?)?,
        created_at: row.try_get(c.created_at)?,
        updated_at: row.try_get(c.updated_at)?,
    })
}

/// Inserts `key` with `hash`: the one statement both a new key and a rotation's
/// replacement are written with.
pub(super) async fn insert_api_key<'e, E>(
    executor: E,
    key: &ApiKey,
    hash: &[u8],
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.id)
    .bind(key.user_id)
    .bind(&key.name)
    .bind(&key.prefix)
    .bind(hash)
    .bind(key.created_at)
    .bind(key.expires_at)
    .execute(executor)
    .await
    .map(drop)
}

pub(super) fn key_from_row(row: &PgRow) -> Result<ApiKey, AuthError> {
    Ok(ApiKey {
        id: get_id(row, "id")?,
        user_id: get_id(row, "user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl UserStore for PostgresStore {
    async fn create_user(&self, new: NewUser) -> Result<User, AuthError> {
        let user = self.core.new_user(new)?;
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(user.id)
        .bind(&user.email)
        .bind(user.plan.as_str())
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, EMAIL_TAKEN))?;
        Ok(user)
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<User, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
    }

    async fn user_by_email(&self, email: &str) -> Result<User, AuthError> {
        // An address that cannot be normalised cannot have been stored.
        let Ok(email) = normalise_email(email) else {
            return Err(AuthError::NotFound);
        };
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| user_from_row(row, &USER))
        .collect()
    }

    async fn count_users(&self) -> Result<u64, AuthError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn set_plan(&self, user_id: Uuid, plan: Plan) -> Result<User, AuthError> {
        sqlx::query(concat!(
            "UPDATE users SET plan = $1, updated_at = $2 WHERE id = $3 RETURNING ",
            user_columns!()
        ))
        .bind(plan.as_str())
        .bind(self.core.now())
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
    }

    async fn set_status(&self, user_id: Uuid, status: UserStatus) -> Result<User, AuthError> {
        sqlx::query(concat!(
            "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 RETURNING ",
            user_columns!()
        ))
        .bind(status.as_str())
        .bind(self.core.now())
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
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
            match insert_api_key(&self.pool, &created.key, &hash).await {
                Ok(_) => return Ok(created),
                Err(e) if is_foreign_key_violation(&e) => return Err(AuthError::NotFound),
                // A prefix collision: draw a new key.
                Err(e) if is_unique_violation(&e) && attempt < KEY_INSERT_ATTEMPTS => attempt += 1,
                Err(e) => return Err(AuthError::Database(e)),
            }
        }
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<ApiKey, AuthError> {
        sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND user_id = $3 RETURNING ",
            key_columns!()
        ))
        .bind(self.core.now())
        .bind(key_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| key_from_row(&row))
    }

    async fn expire_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<ApiKey, AuthError> {
        sqlx::query(concat!(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 \
             THEN $1 ELSE expires_at END WHERE id = $2 AND user_id = $3 RETURNING ",
            key_columns!()
        ))
        .bind(at)
        .bind(key_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| key_from_row(&row))
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
        .fetch_optional(&self.pool)
        .await?
        .ok_or(AuthError::InvalidKey(KeyRejection::UnknownPrefix))?;
        let key = key_from_row(&row)?;
        let user = user_from_row(&row, &JOINED_USER)?;
        let hash: &[u8] = row.try_get("key_hash")?;
        let now = self.core.now();
        self.core.check_key(presented, hash, &key, &user, now)?;

        if let Some(cutoff) = self.core.touch_cutoff(&key, now) {
            let touched = sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(now)
            .bind(key.id)
            .bind(cutoff)
            .execute(&self.pool)
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
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let users = sqlx::query("SELECT id FROM users WHERE status <> 'active'")
            .fetch_all(&self.pool)
            .await?;
        let sessions = sqlx::query("SELECT id FROM login_sessions WHERE revoked_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let ids = |rows: Vec<PgRow>| -> Result<Vec<Uuid>, AuthError> {
            rows.into_iter()
                .map(|row| row.try_get::<Uuid, _>("id").map_err(AuthError::from))
                .collect()
        };
        Ok(Revocations {
            keys: ids(keys)?,
            users: ids(users)?,
            sessions: ids(sessions)?,
        })
    }

    async fn ping(&self) -> Result<(), AuthError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
