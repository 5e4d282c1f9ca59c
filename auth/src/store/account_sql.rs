//! [`AccountBackend`]: the SQL of human accounts, on both backends.
//!
//! Every transaction starts with a write or with [`Store::lock_user`], so SQLite takes
//! its write lock at once (instead of failing to upgrade a read lock under
//! contention) and Postgres applies check-then-write steps of one user (the session
//! cap, the password-token flood check) one after the other.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Executor, Row};
use uuid::Uuid;

use super::accounts::{
    AccountBackend, AccountKey, AccountRow, KeyRotationRefusal, NewRefresh, RefreshRow, TotpRow,
};
use super::shared::{conflict_or, is_unique_violation, StoreCore, EMAIL_TAKEN, JOINED_USER, USER};
use super::sql::{
    count, not_found_on_fk, Borrowed, Column, Dialect, Id, Param, RowsAffected, Statement, Store,
    Ts, Value, KEY_COLUMNS, SESSION_COLUMNS, USER_COLUMNS,
};
use crate::account::{Account, AuditEvent, AuditQuery, LoginSession, NewAuditEvent, RevokeReason};
use crate::crypto::Sealed;
use crate::error::{AuthError, OneTimeRejection};
use crate::model::{ApiKey, User};

/// The columns of a session, each as `s.<column>`.
fn joined_session_columns() -> String {
    SESSION_COLUMNS
        .split(", ")
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A user with the state of their credentials, found by `column = $1`.
fn account_select(column: &str) -> String {
    format!(
        "SELECT {USER_COLUMNS}, password_hash, password_version, email_verified_at, \
         failed_login_count, locked_until, \
         EXISTS (SELECT 1 FROM totp_secrets t WHERE t.user_id = users.id \
                 AND t.confirmed_at IS NOT NULL) AS totp_enabled \
         FROM users WHERE {column} = $1"
    )
}

impl<DB: Dialect> AccountBackend for Store<DB>
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
    fn core(&self) -> &StoreCore {
        &self.core
    }

    async fn insert_user_with_password(&self, user: &User, hash: &str) -> Result<(), AuthError> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}, password_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(Id(user.id))
        .bind(&user.email)
        .bind(user.plan.as_str())
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(Ts(user.created_at))
        .bind(Ts(user.updated_at))
        .bind(hash)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, EMAIL_TAKEN))?;
        Ok(())
    }

    async fn store_password_hash(&self, user_id: Uuid, hash: &str) -> Result<(), AuthError> {
        let mut tx = self.pool().begin().await?;
        let now = self.core.now();
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_version = password_version + 1, \
               updated_at = $2 WHERE id = $3",
        )
        .bind(hash)
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AuthError::NotFound);
        }
        sqlx::query(
            "UPDATE password_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
    ) -> Result<bool, AuthError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(new)
                .bind(Id(user_id))
                .bind(old)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn account_row(&self, key: AccountKey<'_>) -> Result<Option<AccountRow>, AuthError> {
        let row = match key {
            AccountKey::Id(user_id) => {
                let sql = account_select("id");
                sqlx::query(&sql)
                    .bind(Id(user_id))
                    .fetch_optional(self.pool())
                    .await?
            }
            AccountKey::Email(email) => {
                let sql = account_select("email");
                sqlx::query(&sql)
                    .bind(email)
                    .fetch_optional(self.pool())
                    .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let password_hash: Option<String> = row.try_get("password_hash")?;
        Ok(Some(AccountRow {
            account: Account {
                user: Self::user_from_row(&row, &USER)?,
                has_password: password_hash.is_some(),
                email_verified_at: row.try_get("email_verified_at")?,
                failed_logins: count(row.try_get::<DB::Int, _>("failed_login_count")?),
                locked_until: row.try_get("locked_until")?,
                totp_enabled: row.try_get("totp_enabled")?,
                password_version: row.try_get("password_version")?,
            },
            password_hash,
        }))
    }

    async fn take_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: u32,
    ) -> Result<Option<u32>, AuthError> {
        // One statement that both checks and counts: concurrent attempts cannot all
        // see room left in the window.
        let row = sqlx::query(
            "UPDATE users SET \
               failed_login_count = CASE WHEN failed_login_since > $3 \
                   THEN failed_login_count + 1 ELSE 1 END, \
               failed_login_since = CASE WHEN failed_login_since > $3 \
                   THEN failed_login_since ELSE $2 END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) \
               AND (failed_login_since IS NULL OR failed_login_since <= $3 \
                    OR failed_login_count < $4) \
             RETURNING failed_login_count",
        )
        .bind(Id(user_id))
        .bind(Ts(now))
        .bind(Ts(window_start))
        .bind(i64::from(max))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok(count(row.try_get::<DB::Int, _>("failed_login_count")?)))
            .transpose()
    }

    async fn lock_after_attempts(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE users SET failed_login_count = 0, failed_login_since = NULL, \
               locked_until = CASE WHEN locked_until > $2 THEN locked_until ELSE $2 END \
             WHERE id = $1",
        )
        .bind(Id(user_id))
        .bind(Ts(until))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn settle_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        clear: bool,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE users SET \
               failed_login_count = CASE WHEN $4 THEN 0 \
                   WHEN failed_login_since > $3 AND failed_login_count > 0 \
                   THEN failed_login_count - 1 ELSE failed_login_count END, \
               failed_login_since = CASE WHEN $4 THEN NULL ELSE failed_login_since END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(Id(user_id))
        .bind(Ts(now))
        .bind(Ts(window_start))
        .bind(clear)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn set_email_verified(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let done = sqlx::query(
            "UPDATE users SET email_verified_at = $1 \
             WHERE id = $2 AND email_verified_at IS NULL",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let exists = sqlx::query("SELECT 1 FROM users WHERE id = $1")
            .bind(Id(user_id))
            .fetch_optional(self.pool())
            .await?;
        exists.map(|_| false).ok_or(AuthError::NotFound)
    }

    async fn set_lock(&self, user_id: Uuid, until: Option<DateTime<Utc>>) -> Result<(), AuthError> {
        let done = sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
            .bind(until.map(Ts))
            .bind(Id(user_id))
            .execute(self.pool())
            .await?;
        match done.rows_affected() {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }

    async fn reset_failures(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), AuthError> {
        let done = sqlx::query(
            "UPDATE users SET failed_login_count = 0, failed_login_since = NULL, \
               status = CASE WHEN status = 'locked' THEN 'active' ELSE status END, \
               updated_at = CASE WHEN status = 'locked' THEN $1 ELSE updated_at END \
             WHERE id = $2",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(self.pool())
        .await?;
        match done.rows_affected() {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }

    async fn insert_verification(
        &self,
        user_id: Uuid,
        hash: &[u8],
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "INSERT INTO email_verification_tokens (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(hash)
        .bind(Id(user_id))
        .bind(Ts(created_at))
        .bind(Ts(expires_at))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk)?;
        Ok(())
    }

    async fn consume_verification(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Result<Uuid, OneTimeRejection>, AuthError> {
        let mut tx = self.pool().begin().await?;
        let user_id = match Self::use_one_time_token(
            &mut tx,
            "email_verification_tokens",
            hash,
            now,
        )
        .await?
        {
            Ok(user_id) => user_id,
            Err(why) => return Ok(Err(why)),
        };
        sqlx::query(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(user_id))
    }

    async fn insert_password_token(
        &self,
        user_id: Uuid,
        hash: &[u8],
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        unless_after: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        // Where rows lock, the user's row is locked first: under READ COMMITTED two
        // concurrent requests would otherwise both find no recent token and both
        // insert one. On SQLite the insert is the first statement and takes the lock.
        let mut tx = self.pool().begin().await?;
        Self::lock_user(&mut tx, user_id).await?;
        let done = sqlx::query(
            "INSERT INTO password_tokens (token_hash, user_id, created_at, expires_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM password_tokens \
               WHERE user_id = $2 AND used_at IS NULL AND created_at > $5)",
        )
        .bind(hash)
        .bind(Id(user_id))
        .bind(Ts(created_at))
        .bind(Ts(expires_at))
        .bind(Ts(unless_after))
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk)?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn peek_password_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<OneTimeRejection>, AuthError> {
        let row = sqlx::query(
            "SELECT used_at IS NOT NULL AS used, expires_at <= $2 AS expired \
             FROM password_tokens WHERE token_hash = $1",
        )
        .bind(hash)
        .bind(Ts(now))
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => Some(OneTimeRejection::Unknown),
            Some(row) if row.try_get::<bool, _>("used")? => Some(OneTimeRejection::Used),
            Some(row) if row.try_get::<bool, _>("expired")? => Some(OneTimeRejection::Expired),
            Some(_) => None,
        })
    }

    async fn consume_password_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> Result<Result<Uuid, OneTimeRejection>, AuthError> {
        let mut tx = self.pool().begin().await?;
        let user_id = match Self::use_one_time_token(&mut tx, "password_tokens", hash, now).await? {
            Ok(user_id) => user_id,
            Err(why) => return Ok(Err(why)),
        };
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_version = password_version + 1, \
               email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 \
             WHERE id = $3",
        )
        .bind(password_hash)
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE password_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(user_id))
    }

    async fn insert_login_session(
        &self,
        session: &LoginSession,
        refresh: &NewRefresh,
        cap: u32,
    ) -> Result<Vec<Uuid>, AuthError> {
        let mut tx = self.pool().begin().await?;
        // Where rows lock, the user's row first, so concurrent logins of one user
        // apply the session cap one after the other.
        Self::lock_user(&mut tx, session.user_id).await?;
        sqlx::query(&format!(
            "INSERT INTO login_sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7)"
        ))
        .bind(Id(session.id))
        .bind(Id(session.user_id))
        .bind(Ts(session.created_at))
        .bind(Ts(session.expires_at))
        .bind(Ts(session.last_used_at))
        .bind(&session.user_agent)
        .bind(&session.ip)
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk)?;
        Self::insert_refresh(&mut tx, refresh).await?;
        let evicted = sqlx::query(&format!(
            "UPDATE login_sessions SET revoked_at = $1, revoke_reason = 'session_limit' \
             WHERE id IN (SELECT id FROM login_sessions \
                 WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL AND expires_at > $1 \
                 ORDER BY created_at DESC, id DESC {} OFFSET $4) \
             RETURNING id",
            DB::NO_LIMIT
        ))
        .bind(Ts(session.created_at))
        .bind(Id(session.user_id))
        .bind(Id(session.id))
        .bind(i64::from(cap.saturating_sub(1)))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        evicted.iter().map(|row| Self::get_id(row, "id")).collect()
    }

    async fn refresh_row(&self, hash: &[u8]) -> Result<Option<RefreshRow>, AuthError> {
        let row = sqlx::query(&format!(
            "SELECT r.id AS token_id, r.used_at AS token_used_at, \
                    r.expires_at AS token_expires_at, {}, \
                    u.id AS user_id, u.email AS u_email, u.plan AS u_plan, u.role AS u_role, \
                    u.status AS u_status, u.created_at AS u_created_at, \
                    u.updated_at AS u_updated_at \
             FROM refresh_tokens r \
             JOIN login_sessions s ON s.id = r.login_session_id \
             JOIN users u ON u.id = s.user_id \
             WHERE r.token_hash = $1",
            joined_session_columns()
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(RefreshRow {
            token_id: Self::get_id(&row, "token_id")?,
            used_at: row.try_get("token_used_at")?,
            expires_at: row.try_get("token_expires_at")?,
            session: Self::session_from_row(&row, "")?,
            user: Self::user_from_row(&row, &JOINED_USER)?,
        }))
    }

    async fn replace_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        now: DateTime<Utc>,
        grace_until: DateTime<Utc>,
        new: &ApiKey,
        hash: &[u8],
    ) -> Result<Result<ApiKey, KeyRotationRefusal>, AuthError> {
        let mut tx = self.pool().begin().await?;
        // The conditional write decides: of concurrent rotations one marks the key,
        // the others then find it rotated (on Postgres after waiting on the row lock
        // and re-checking the condition).
        let marked = sqlx::query(&format!(
            "UPDATE api_keys SET rotated_at = $1, expires_at = CASE \
               WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
             WHERE id = $3 AND user_id = $4 AND rotated_at IS NULL AND revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > $1) RETURNING {KEY_COLUMNS}"
        ))
        .bind(Ts(now))
        .bind(Ts(grace_until))
        .bind(Id(key_id))
        .bind(Id(user_id))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = marked else {
            drop(tx);
            let state = sqlx::query(
                "SELECT rotated_at, revoked_at FROM api_keys WHERE id = $1 AND user_id = $2",
            )
            .bind(Id(key_id))
            .bind(Id(user_id))
            .fetch_optional(self.pool())
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get("rotated_at")?, row.try_get("revoked_at")?))
            })
            .transpose()?;
            return Ok(Err(KeyRotationRefusal::of(state)));
        };
        match Self::insert_api_key(&mut *tx, new, hash).await {
            Ok(_) => {}
            // Rolled back with the transaction: the caller draws another key.
            Err(e) if is_unique_violation(&e) => return Ok(Err(KeyRotationRefusal::PrefixTaken)),
            Err(e) => return Err(AuthError::Database(e)),
        }
        tx.commit().await?;
        Self::key_from_row(&old).map(Ok)
    }

    async fn rotate_refresh(
        &self,
        old: Uuid,
        new: &NewRefresh,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let mut tx = self.pool().begin().await?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, replaced_by = $2 \
             WHERE id = $3 AND used_at IS NULL",
        )
        .bind(Ts(now))
        .bind(Id(new.id))
        .bind(Id(old))
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 0 {
            return Ok(false);
        }
        Self::insert_refresh(&mut tx, new).await?;
        sqlx::query("UPDATE login_sessions SET last_used_at = $1 WHERE id = $2")
            .bind(Ts(now))
            .bind(Id(new.session_id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, AuthError> {
        sqlx::query(
            "UPDATE login_sessions SET revoked_at = $1, revoke_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 \
               AND ($4 IS NULL OR id = $4) \
             RETURNING id",
        )
        .bind(Ts(now))
        .bind(reason.as_str())
        .bind(Id(user_id))
        .bind(session_id.map(Id))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| Self::get_id(row, "id"))
        .collect()
    }

    async fn sessions(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> Result<Vec<LoginSession>, AuthError> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM login_sessions \
             WHERE user_id = $1 AND ($2 IS NULL OR id = $2) ORDER BY created_at DESC, id DESC"
        ))
        .bind(Id(user_id))
        .bind(session_id.map(Id))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| Self::session_from_row(row, ""))
        .collect()
    }

    async fn upsert_totp(
        &self,
        user_id: Uuid,
        sealed: &Sealed,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let done = sqlx::query(
            "INSERT INTO totp_secrets (user_id, secret_ciphertext, key_id, nonce, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET \
               secret_ciphertext = excluded.secret_ciphertext, key_id = excluded.key_id, \
               nonce = excluded.nonce, created_at = excluded.created_at, last_used_step = NULL \
             WHERE totp_secrets.confirmed_at IS NULL",
        )
        .bind(Id(user_id))
        .bind(&sealed.ciphertext)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(Ts(now))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk)?;
        Ok(done.rows_affected() > 0)
    }

    async fn totp_row(&self, user_id: Uuid) -> Result<Option<TotpRow>, AuthError> {
        let row = sqlx::query(
            "SELECT secret_ciphertext, key_id, nonce, confirmed_at, last_used_step \
             FROM totp_secrets WHERE user_id = $1",
        )
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(TotpRow {
            sealed: Sealed {
                key_id: row.try_get("key_id")?,
                nonce: row.try_get("nonce")?,
                ciphertext: row.try_get("secret_ciphertext")?,
            },
            confirmed_at: row.try_get("confirmed_at")?,
            last_used_step: row.try_get("last_used_step")?,
        }))
    }

    async fn mark_totp_step(
        &self,
        user_id: Uuid,
        step: i64,
        confirm_at: Option<DateTime<Utc>>,
    ) -> Result<bool, AuthError> {
        let done = sqlx::query(
            "UPDATE totp_secrets SET last_used_step = $2, confirmed_at = COALESCE($3, confirmed_at) \
             WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2) \
               AND (($3 IS NULL AND confirmed_at IS NOT NULL) \
                    OR ($3 IS NOT NULL AND confirmed_at IS NULL))",
        )
        .bind(Id(user_id))
        .bind(step)
        .bind(confirm_at.map(Ts))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_totp(&self, user_id: Uuid) -> Result<bool, AuthError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(Id(user_id))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM totp_secrets WHERE user_id = $1")
            .bind(Id(user_id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(Id(user_id))
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(Id(user_id))
            .bind(hash)
            .bind(Ts(now))
            .execute(&mut *tx)
            .await
            .map_err(not_found_on_fk)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, AuthError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(Ts(now))
        .bind(Id(user_id))
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(Id(user_id))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(count(left)))
    }

    async fn insert_audit(
        &self,
        event: &NewAuditEvent,
        at: DateTime<Utc>,
        detail: &str,
    ) -> Result<AuditEvent, AuthError> {
        let row = sqlx::query(&format!(
            "INSERT INTO audit_events (at, actor_user_id, subject_user_id, kind, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6{}) RETURNING id",
            DB::JSON_PARAM
        ))
        .bind(Ts(at))
        .bind(event.actor_user_id.map(Id))
        .bind(event.subject_user_id.map(Id))
        .bind(event.kind.as_str())
        .bind(&event.ip)
        .bind(detail)
        .fetch_one(self.pool())
        .await?;
        Ok(AuditEvent {
            id: row.try_get("id")?,
            at,
            kind: event.kind,
            actor_user_id: event.actor_user_id,
            subject_user_id: event.subject_user_id,
            ip: event.ip.clone(),
            detail: event.detail.clone(),
        })
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, AuthError> {
        super::admin::check_audit_query(query)?;
        // Only fixed fragments are pushed as SQL; every value is a bound parameter.
        let mut sql = Statement::<DB>::new(format!(
            "SELECT id, at, actor_user_id, subject_user_id, kind, ip, detail{} AS detail \
             FROM audit_events WHERE 1 = 1",
            DB::JSON_TEXT
        ));
        Self::push_audit_filters(&mut sql, query);
        sql.push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        let (sql, args) = sql.into_parts()?;
        let rows = sqlx::query_with(&sql, args).fetch_all(self.pool()).await?;
        rows.iter().map(Self::audit_from_row).collect()
    }
}
