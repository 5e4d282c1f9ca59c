//! [`AccountStore`](super::AccountStore) SQL on SQLite.
//!
//! Every transaction here starts with a write, so it takes SQLite's write lock at
//! once instead of failing to upgrade a read lock under contention.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::accounts::{
    account_store_via_rules, AccountBackend, AccountKey, AccountRow, KeyRotationRefusal,
    NewRefresh, RefreshRow, TotpRow,
};
use super::shared::is_unique_violation;
use super::shared::{
    conflict_or, decode_enum, is_foreign_key_violation, StoreCore, EMAIL_TAKEN, JOINED_USER, USER,
};
use super::sqlite::{get_id, id, key_from_row, ts, user_from_row};
use super::SqliteStore;
use crate::account::{Account, AuditEvent, AuditQuery, LoginSession, NewAuditEvent, RevokeReason};
use crate::crypto::Sealed;
use crate::error::{AuthError, OneTimeRejection};
use crate::model::{ApiKey, User};

account_store_via_rules!(SqliteStore);

macro_rules! session_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "user_id, ",
            $p,
            "created_at, ",
            $p,
            "expires_at, ",
            $p,
            "last_used_at, ",
            $p,
            "revoked_at, ",
            $p,
            "revoke_reason, ",
            $p,
            "user_agent, ",
            $p,
            "ip"
        )
    };
}

fn get_opt_id(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, AuthError> {
    Ok(row
        .try_get::<Option<Hyphenated>, _>(column)?
        .map(Hyphenated::into_uuid))
}

fn not_found_on_fk(e: sqlx::Error) -> AuthError {
    if is_foreign_key_violation(&e) {
        AuthError::NotFound
    } else {
        AuthError::Database(e)
    }
}

/// A session from columns named `<prefix><column>`.
fn session_from_row(row: &SqliteRow, prefix: &str) -> Result<LoginSession, AuthError> {
    let c = |name: &str| format!("{prefix}{name}");
    let reason: Option<String> = row.try_get(c("revoke_reason").as_str())?;
    Ok(LoginSession {
        id: get_id(row, &c("id"))?,
        user_id: get_id(row, &c("user_id"))?,
        created_at: row.try_get(c("created_at").as_str())?,
        expires_at: row.try_get(c("expires_at").as_str())?,
        last_used_at: row.try_get(c("last_used_at").as_str())?,
        revoked_at: row.try_get(c("revoked_at").as_str())?,
        revoke_reason: reason
            .map(|r| decode_enum::<RevokeReason>("revoke_reason", &r))
            .transpose()?,
        user_agent: row.try_get(c("user_agent").as_str())?,
        ip: row.try_get(c("ip").as_str())?,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEvent, AuthError> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        kind: decode_enum("kind", row.try_get("kind")?)?,
        actor_user_id: get_opt_id(row, "actor_user_id")?,
        subject_user_id: get_opt_id(row, "subject_user_id")?,
        ip: row.try_get("ip")?,
        detail: serde_json::from_str(&detail).map_err(|e| {
            AuthError::Database(sqlx::Error::ColumnDecode {
                index: "detail".into(),
                source: Box::new(e),
            })
        })?,
    })
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

macro_rules! account_select {
    () => {
        concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash, password_version, email_verified_at, failed_login_count, \
             locked_until, \
             EXISTS (SELECT 1 FROM totp_secrets t WHERE t.user_id = users.id \
                     AND t.confirmed_at IS NOT NULL) AS totp_enabled \
             FROM users"
        )
    };
}

impl AccountBackend for SqliteStore {
    fn core(&self) -> &StoreCore {
        &self.core
    }

    async fn insert_user_with_password(&self, user: &User, hash: &str) -> Result<(), AuthError> {
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ", password_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))
        .bind(id(user.id))
        .bind(&user.email)
        .bind(user.plan.as_str())
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(ts(user.created_at))
        .bind(ts(user.updated_at))
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
            "UPDATE users SET password_hash = ?1, password_version = password_version + 1, \
               updated_at = ?2 WHERE id = ?3",
        )
        .bind(hash)
        .bind(ts(now))
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AuthError::NotFound);
        }
        sqlx::query(
            "UPDATE password_tokens SET used_at = ?1 WHERE user_id = ?2 AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(id(user_id))
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
            sqlx::query("UPDATE users SET password_hash = ?1 WHERE id = ?2 AND password_hash = ?3")
                .bind(new)
                .bind(id(user_id))
                .bind(old)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn account_row(&self, key: AccountKey<'_>) -> Result<Option<AccountRow>, AuthError> {
        let query = match key {
            AccountKey::Id(user_id) => {
                sqlx::query(concat!(account_select!(), " WHERE id = ?1")).bind(id(user_id))
            }
            AccountKey::Email(email) => {
                sqlx::query(concat!(account_select!(), " WHERE email = ?1")).bind(email)
            }
        };
        let Some(row) = query.fetch_optional(self.pool()).await? else {
            return Ok(None);
        };
        let password_hash: Option<String> = row.try_get("password_hash")?;
        Ok(Some(AccountRow {
            account: Account {
                user: user_from_row(&row, &USER)?,
                has_password: password_hash.is_some(),
                email_verified_at: row.try_get("email_verified_at")?,
                failed_logins: count(row.try_get("failed_login_count")?),
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
               failed_login_count = CASE WHEN failed_login_since > ?3 \
                   THEN failed_login_count + 1 ELSE 1 END, \
               failed_login_since = CASE WHEN failed_login_since > ?3 \
                   THEN failed_login_since ELSE ?2 END \
             WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?2) \
               AND (failed_login_since IS NULL OR failed_login_since <= ?3 \
                    OR failed_login_count < ?4) \
             RETURNING failed_login_count",
        )
        .bind(id(user_id))
        .bind(ts(now))
        .bind(ts(window_start))
        .bind(i64::from(max))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok(count(row.try_get("failed_login_count")?)))
            .transpose()
    }

    async fn lock_after_attempts(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE users SET failed_login_count = 0, failed_login_since = NULL, \
               locked_until = CASE WHEN locked_until > ?2 THEN locked_until ELSE ?2 END \
             WHERE id = ?1",
        )
        .bind(id(user_id))
        .bind(ts(until))
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
               failed_login_count = CASE WHEN ?4 THEN 0 \
                   WHEN failed_login_since > ?3 AND failed_login_count > 0 \
                   THEN failed_login_count - 1 ELSE failed_login_count END, \
               failed_login_since = CASE WHEN ?4 THEN NULL ELSE failed_login_since END \
             WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        )
        .bind(id(user_id))
        .bind(ts(now))
        .bind(ts(window_start))
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
            "UPDATE users SET email_verified_at = ?1 \
             WHERE id = ?2 AND email_verified_at IS NULL",
        )
        .bind(ts(now))
        .bind(id(user_id))
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let exists = sqlx::query("SELECT 1 FROM users WHERE id = ?1")
            .bind(id(user_id))
            .fetch_optional(self.pool())
            .await?;
        exists.map(|_| false).ok_or(AuthError::NotFound)
    }

    async fn set_lock(&self, user_id: Uuid, until: Option<DateTime<Utc>>) -> Result<(), AuthError> {
        let done = sqlx::query("UPDATE users SET locked_until = ?1 WHERE id = ?2")
            .bind(until.map(ts))
            .bind(id(user_id))
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
               updated_at = CASE WHEN status = 'locked' THEN ?1 ELSE updated_at END \
             WHERE id = ?2",
        )
        .bind(ts(now))
        .bind(id(user_id))
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
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(hash)
        .bind(id(user_id))
        .bind(ts(created_at))
        .bind(ts(expires_at))
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
        let user_id =
            match use_one_time_token(&mut tx, "email_verification_tokens", hash, now).await? {
                Ok(user_id) => user_id,
                Err(why) => return Ok(Err(why)),
            };
        sqlx::query(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?1) WHERE id = ?2",
        )
        .bind(ts(now))
        .bind(id(user_id))
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
        let done = sqlx::query(
            "INSERT INTO password_tokens (token_hash, user_id, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM password_tokens \
               WHERE user_id = ?2 AND used_at IS NULL AND created_at > ?5)",
        )
        .bind(hash)
        .bind(id(user_id))
        .bind(ts(created_at))
        .bind(ts(expires_at))
        .bind(ts(unless_after))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk)?;
        Ok(done.rows_affected() > 0)
    }

    async fn peek_password_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<OneTimeRejection>, AuthError> {
        let row = sqlx::query(
            "SELECT used_at IS NOT NULL AS used, expires_at <= ?2 AS expired \
             FROM password_tokens WHERE token_hash = ?1",
        )
        .bind(hash)
        .bind(ts(now))
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
        let user_id = match use_one_time_token(&mut tx, "password_tokens", hash, now).await? {
            Ok(user_id) => user_id,
            Err(why) => return Ok(Err(why)),
        };
        sqlx::query(
            "UPDATE users SET password_hash = ?1, password_version = password_version + 1, \
               email_verified_at = COALESCE(email_verified_at, ?2), updated_at = ?2 \
             WHERE id = ?3",
        )
        .bind(password_hash)
        .bind(ts(now))
        .bind(id(user_id))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE password_tokens SET used_at = ?1 WHERE user_id = ?2 AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(id(user_id))
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
        sqlx::query(concat!(
            "INSERT INTO login_sessions (",
            session_columns!(""),
            ") VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?7)"
        ))
        .bind(id(session.id))
        .bind(id(session.user_id))
        .bind(ts(session.created_at))
        .bind(ts(session.expires_at))
        .bind(ts(session.last_used_at))
        .bind(&session.user_agent)
        .bind(&session.ip)
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk)?;
        insert_refresh(&mut tx, refresh).await?;
        let evicted = sqlx::query(
            "UPDATE login_sessions SET revoked_at = ?1, revoke_reason = 'session_limit' \
             WHERE id IN (SELECT id FROM login_sessions \
                 WHERE user_id = ?2 AND id <> ?3 AND revoked_at IS NULL AND expires_at > ?1 \
                 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?4) \
             RETURNING id",
        )
        .bind(ts(session.created_at))
        .bind(id(session.user_id))
        .bind(id(session.id))
        .bind(i64::from(cap.saturating_sub(1)))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        evicted.iter().map(|row| get_id(row, "id")).collect()
    }

    async fn refresh_row(&self, hash: &[u8]) -> Result<Option<RefreshRow>, AuthError> {
        let row = sqlx::query(concat!(
            "SELECT r.id AS token_id, r.used_at AS token_used_at, \
                    r.expires_at AS token_expires_at, ",
            session_columns!("s."),
            ", u.id AS user_id, u.email AS u_email, u.plan AS u_plan, u.role AS u_role, \
               u.status AS u_status, u.created_at AS u_created_at, \
               u.updated_at AS u_updated_at \
             FROM refresh_tokens r \
             JOIN login_sessions s ON s.id = r.login_session_id \
             JOIN users u ON u.id = s.user_id \
             WHERE r.token_hash = ?1"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(RefreshRow {
            token_id: get_id(&row, "token_id")?,
            used_at: row.try_get("token_used_at")?,
            expires_at: row.try_get("token_expires_at")?,
            session: session_from_row(&row, "")?,
            user: user_from_row(&row, &JOINED_USER)?,
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
        // the others then find it rotated.
        let marked = sqlx::query(concat!(
            "UPDATE api_keys SET rotated_at = ?1, expires_at = CASE \
               WHEN expires_at IS NULL OR expires_at > ?2 THEN ?2 ELSE expires_at END \
             WHERE id = ?3 AND user_id = ?4 AND rotated_at IS NULL AND revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > ?1) RETURNING ",
            key_columns!()
        ))
        .bind(ts(now))
        .bind(ts(grace_until))
        .bind(id(key_id))
        .bind(id(user_id))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = marked else {
            drop(tx);
            let state = sqlx::query(
                "SELECT rotated_at, revoked_at FROM api_keys WHERE id = ?1 AND user_id = ?2",
            )
            .bind(id(key_id))
            .bind(id(user_id))
            .fetch_optional(self.pool())
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get("rotated_at")?, row.try_get("revoked_at")?))
            })
            .transpose()?;
            return Ok(Err(KeyRotationRefusal::of(state)));
        };
        match super::sqlite::insert_api_key(&mut *tx, new, hash).await {
            Ok(_) => {}
            // Rolled back with the transaction: the caller draws another key.
            Err(e) if is_unique_violation(&e) => return Ok(Err(KeyRotationRefusal::PrefixTaken)),
            Err(e) => return Err(AuthError::Database(e)),
        }
        tx.commit().await?;
        key_from_row(&old).map(Ok)
    }

    async fn rotate_refresh(
        &self,
        old: Uuid,
        new: &NewRefresh,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let mut tx = self.pool().begin().await?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ?1, replaced_by = ?2 \
             WHERE id = ?3 AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(id(new.id))
        .bind(id(old))
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 0 {
            return Ok(false);
        }
        insert_refresh(&mut tx, new).await?;
        sqlx::query("UPDATE login_sessions SET last_used_at = ?1 WHERE id = ?2")
            .bind(ts(now))
            .bind(id(new.session_id))
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
            "UPDATE login_sessions SET revoked_at = ?1, revoke_reason = ?2 \
             WHERE user_id = ?3 AND revoked_at IS NULL AND expires_at > ?1 \
               AND (?4 IS NULL OR id = ?4) \
             RETURNING id",
        )
        .bind(ts(now))
        .bind(reason.as_str())
        .bind(id(user_id))
        .bind(session_id.map(id))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| get_id(row, "id"))
        .collect()
    }

    async fn sessions(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> Result<Vec<LoginSession>, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(""),
            " FROM login_sessions WHERE user_id = ?1 AND (?2 IS NULL OR id = ?2) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(id(user_id))
        .bind(session_id.map(id))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| session_from_row(row, ""))
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
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (user_id) DO UPDATE SET \
               secret_ciphertext = excluded.secret_ciphertext, key_id = excluded.key_id, \
               nonce = excluded.nonce, created_at = excluded.created_at, last_used_step = NULL \
             WHERE totp_secrets.confirmed_at IS NULL",
        )
        .bind(id(user_id))
        .bind(&sealed.ciphertext)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(ts(now))
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk)?;
        Ok(done.rows_affected() > 0)
    }

    async fn totp_row(&self, user_id: Uuid) -> Result<Option<TotpRow>, AuthError> {
        let row = sqlx::query(
            "SELECT secret_ciphertext, key_id, nonce, confirmed_at, last_used_step \
             FROM totp_secrets WHERE user_id = ?1",
        )
        .bind(id(user_id))
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
            "UPDATE totp_secrets SET last_used_step = ?2, confirmed_at = COALESCE(?3, confirmed_at) \
             WHERE user_id = ?1 AND (last_used_step IS NULL OR last_used_step < ?2) \
               AND ((?3 IS NULL AND confirmed_at IS NOT NULL) \
                    OR (?3 IS NOT NULL AND confirmed_at IS NULL))",
        )
        .bind(id(user_id))
        .bind(step)
        .bind(confirm_at.map(ts))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_totp(&self, user_id: Uuid) -> Result<bool, AuthError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?1")
            .bind(id(user_id))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM totp_secrets WHERE user_id = ?1")
            .bind(id(user_id))
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
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?1")
            .bind(id(user_id))
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
            )
            .bind(id(user_id))
            .bind(hash)
            .bind(ts(now))
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
            "UPDATE recovery_codes SET used_at = ?1 \
             WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(id(user_id))
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        )
        .bind(id(user_id))
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
        let row = sqlx::query(
            "INSERT INTO audit_events (at, actor_user_id, subject_user_id, kind, ip, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .bind(ts(at))
        .bind(event.actor_user_id.map(id))
        .bind(event.subject_user_id.map(id))
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
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT id, at, actor_user_id, subject_user_id, kind, ip, detail \
             FROM audit_events WHERE 1 = 1",
        );
        push_audit_filters(&mut sql, query);
        sql.push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        sql.build()
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(audit_from_row)
            .collect()
    }
}

/// Appends the filters of `query` to a statement over `audit_events` that ends in a
/// `WHERE` clause; every value is a bound parameter.
pub(super) fn push_audit_filters(sql: &mut QueryBuilder<'_, Sqlite>, query: &AuditQuery) {
    if let Some(user_id) = query.user_id {
        sql.push(" AND (actor_user_id = ")
            .push_bind(id(user_id))
            .push(" OR subject_user_id = ")
            .push_bind(id(user_id))
            .push(")");
    }
    if let Some(kind) = query.kind {
        sql.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(from) = query.from {
        sql.push(" AND at >= ").push_bind(ts(from));
    }
    if let Some(until) = query.until {
        sql.push(" AND at < ").push_bind(ts(until));
    }
    if let Some(ip) = &query.ip {
        sql.push(" AND ip = ").push_bind(ip.clone());
    }
}

async fn insert_refresh(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    refresh: &NewRefresh,
) -> Result<(), AuthError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, login_session_id, token_hash, issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(id(refresh.id))
    .bind(id(refresh.session_id))
    .bind(&refresh.hash)
    .bind(ts(refresh.issued_at))
    .bind(ts(refresh.expires_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the token in `table` (a one-time token table: `token_hash`, `user_id`,
/// `expires_at`, `used_at`) used at `now` if it is unused and unexpired: its user, or
/// why not.
async fn use_one_time_token(
    conn: &mut sqlx::SqliteConnection,
    table: &'static str,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<Uuid, OneTimeRejection>, AuthError> {
    let used = sqlx::query(&format!(
        "UPDATE {table} SET used_at = ?1 \
         WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1 RETURNING user_id"
    ))
    .bind(ts(now))
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = used {
        return Ok(Ok(get_id(&row, "user_id")?));
    }
    let state = sqlx::query(&format!(
        "SELECT used_at IS NOT NULL AS used FROM {table} WHERE token_hash = ?1"
    ))
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(Err(match state {
        None => OneTimeRejection::Unknown,
        Some(row) if row.try_get::<bool, _>("used")? => OneTimeRejection::Used,
        Some(_) => OneTimeRejection::Expired,
    }))
}
