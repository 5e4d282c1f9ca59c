//! The one SQL layer under both backends: [`Store`] is generic over the sqlx database,
//! and each query is written once, with `$N` placeholders (sqlx's SQLite driver reads
//! them as numbered parameters too).
//!
//! What the two backends do differently lives here and nowhere else:
//! - how they connect and migrate ([`Dialect::open`]);
//! - how they store ids and timestamps: a query binds [`Id`] and [`Ts`], never a bare
//!   `Uuid` or `DateTime` (the bounds of the SQL layer leave those out, so binding one
//!   does not compile), and reads ids through [`Id`];
//! - the few spots where their SQL differs ([`Dialect`]'s constants).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{
    PgArgumentBuffer, PgConnectOptions, PgPoolOptions, PgQueryResult, PgTypeInfo, PgValueRef,
};
use sqlx::sqlite::{
    SqliteArgumentValue, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous, SqliteTypeInfo, SqliteValueRef,
};
use sqlx::{
    Arguments, ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Postgres, Row, Sqlite,
    Type,
};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::accounts::NewRefresh;
use super::shared::{decode_enum, is_foreign_key_violation, StoreCore, UserColumns};
use super::{Backend, StoreOptions};
use crate::account::{AuditEvent, AuditQuery, LoginSession, RevokeReason};
use crate::error::{AuthError, OneTimeRejection};
use crate::model::{ApiKey, User};

/// The columns of a user, in the order `INSERT`s list them.
pub(super) const USER_COLUMNS: &str = "id, email, plan, role, status, created_at, updated_at";

/// The columns of an API key.
pub(super) const KEY_COLUMNS: &str =
    "id, user_id, name, prefix, created_at, last_used_at, expires_at, revoked_at";

/// The columns of a login session, in the order `INSERT`s list them.
pub(super) const SESSION_COLUMNS: &str =
    "id, user_id, created_at, expires_at, last_used_at, revoked_at, revoke_reason, user_agent, ip";

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    impl Sealed for sqlx::Postgres {}
}

/// A database the stores run on: [`Sqlite`] or [`Postgres`] (no others; the trait is
/// sealed). Its members are the spots where the two differ.
pub trait Dialect:
    sealed::Sealed
    + sqlx::Database
    + for<'q> sqlx::Database<Arguments<'q>: IntoArguments<'q, Self> + Default>
    + sqlx::Database<QueryResult: RowsAffected>
{
    /// Which backend this is.
    const BACKEND: Backend;

    /// What a `SELECT` appends to lock the rows it reads until the transaction ends:
    /// `Some(" FOR UPDATE")` on Postgres. `None` on SQLite, which has no row locks: its
    /// first write in a transaction takes the database's write lock, so a transaction
    /// there starts with its write (and never reads first only to fail to upgrade).
    const FOR_UPDATE: Option<&'static str>;

    /// A `LIMIT` that limits nothing, for an `OFFSET` on its own: SQLite requires a
    /// `LIMIT` before `OFFSET`.
    const NO_LIMIT: &'static str;

    /// Appended to a parameter bound as JSON text: `::jsonb` on Postgres, whose JSON
    /// columns are JSONB; nothing on SQLite, whose JSON is checked TEXT.
    const JSON_PARAM: &'static str;

    /// Appended to a JSON column to read it back as text (`::text` on Postgres).
    const JSON_TEXT: &'static str;

    /// The function giving where text occurs in text (1-based, 0 if nowhere), matching
    /// it literally, unlike `LIKE` with its wildcards: `instr` or `strpos`.
    const TEXT_POSITION: &'static str;

    /// How an `INTEGER` column reads: SQLite's integers are 64-bit, Postgres's
    /// `INTEGER` is 32-bit (`BIGINT` columns read as `i64` on both).
    type Int: Into<i64> + for<'r> Decode<'r, Self> + Type<Self>;

    /// The SQL of a number in a JSON object column: the value at `key` of `document`,
    /// 0 where it is missing or not a number (on SQLite, where it is not an integer).
    fn json_number(document: &str, key: &str) -> String;

    /// The migrations this build applies (`migrations/<backend>`).
    fn migrator() -> &'static Migrator;

    /// Opens the pool for `url` and applies pending migrations.
    fn open(
        url: &str,
        options: &StoreOptions,
    ) -> impl Future<Output = Result<Pool<Self>, AuthError>> + Send;
}

impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    const FOR_UPDATE: Option<&'static str> = None;
    const NO_LIMIT: &'static str = "LIMIT -1";
    const JSON_PARAM: &'static str = "";
    const JSON_TEXT: &'static str = "";
    const TEXT_POSITION: &'static str = "instr";
    type Int = i64;

    fn json_number(document: &str, key: &str) -> String {
        format!(
            "CASE WHEN json_type({document}, '$.{key}') = 'integer' \
             THEN json_extract({document}, '$.{key}') ELSE 0 END"
        )
    }

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    /// Opens (creating if needed) the database at a `sqlite:` URL, in WAL mode.
    /// `sqlite::memory:` gives a private in-memory database.
    async fn open(url: &str, options: &StoreOptions) -> Result<Pool<Self>, AuthError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| AuthError::InvalidDatabaseUrl(Some(e)))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let mut pool = SqlitePoolOptions::new().acquire_timeout(Duration::from_secs(5));
        if in_memory {
            // The database lives only as long as a connection to it: keep exactly one.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            if let Some(dir) = connect.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(AuthError::DatabaseDirectory)?;
                }
            }
            // WAL lets readers (every token exchange) proceed while a write commits;
            // NORMAL sync is durable across crashes of the process in WAL mode.
            connect = connect
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            pool = pool.max_connections(options.max_connections);
        }
        let pool = pool.connect_with(connect).await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(pool)
    }
}

impl Dialect for Postgres {
    const BACKEND: Backend = Backend::Postgres;
    const FOR_UPDATE: Option<&'static str> = Some(" FOR UPDATE");
    const NO_LIMIT: &'static str = "LIMIT ALL";
    const JSON_PARAM: &'static str = "::jsonb";
    const JSON_TEXT: &'static str = "::text";
    const TEXT_POSITION: &'static str = "strpos";
    type Int = i32;

    fn json_number(document: &str, key: &str) -> String {
        format!(
            "CASE WHEN jsonb_typeof({document} -> '{key}') = 'number' \
             THEN ({document} ->> '{key}')::numeric ELSE 0 END"
        )
    }

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }

    /// Connects to a `postgres://` or `postgresql://` URL; sqlx holds an advisory lock
    /// while migrating, so gateways starting together are safe.
    async fn open(url: &str, options: &StoreOptions) -> Result<Pool<Self>, AuthError> {
        let connect =
            PgConnectOptions::from_str(url).map_err(|e| AuthError::InvalidDatabaseUrl(Some(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(pool)
    }
}

/// How many rows a statement changed, on either backend.
pub trait RowsAffected {
    /// See `SqliteQueryResult::rows_affected` and `PgQueryResult::rows_affected`.
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

/// A uuid as its backend stores it: hyphenated lowercase TEXT on SQLite, `uuid` on
/// Postgres.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub Uuid);

/// A timestamp as its backend stores it: on SQLite fixed-width RFC 3339 TEXT in UTC
/// with microseconds (`2024-01-02T03:04:05.678901Z`, so that text order is time
/// order), on Postgres `timestamptz`. Only bound: timestamps read as `DateTime<Utc>`,
/// which both drivers decode from what this writes.
#[derive(Debug, Clone, Copy)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// The SQLite text of `at`.
    fn text(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

impl Type<Sqlite> for Id {
    fn type_info() -> SqliteTypeInfo {
        <Hyphenated as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <Hyphenated as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Id {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.0.hyphenated(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Id {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        <Hyphenated as Decode<Sqlite>>::decode(value).map(|id| Id(id.into_uuid()))
    }
}

impl Type<Postgres> for Id {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Uuid as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Id {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Id {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <Uuid as Decode<Postgres>>::decode(value).map(Id)
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.text(), buf)
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }

    fn size_hint(&self) -> usize {
        Encode::<Postgres>::size_hint(&self.0)
    }
}

/// A type the SQL layer both binds and reads on `DB`.
pub trait Value<DB: sqlx::Database>: Param<DB> + for<'r> Decode<'r, DB> + Type<DB> {}

impl<DB: sqlx::Database, T> Value<DB> for T where T: Param<DB> + for<'r> Decode<'r, DB> + Type<DB> {}

/// A type the SQL layer binds on `DB`.
pub trait Param<DB: sqlx::Database>: for<'q> Encode<'q, DB> + Type<DB> + Send {}

impl<DB: sqlx::Database, T> Param<DB> for T where T: for<'q> Encode<'q, DB> + Type<DB> + Send {}

/// A borrowed type the SQL layer both binds and reads on `DB`: `&str`, `&[u8]`.
pub trait Borrowed<'a, DB: sqlx::Database>: Encode<'a, DB> + Decode<'a, DB> + Type<DB> {}

impl<'a, DB: sqlx::Database, T> Borrowed<'a, DB> for T where
    T: Encode<'a, DB> + Decode<'a, DB> + Type<DB>
{
}

/// A type the SQL layer reads on `DB` (and never binds).
pub trait Column<DB: sqlx::Database>: for<'r> Decode<'r, DB> + Type<DB> {}

impl<DB: sqlx::Database, T> Column<DB> for T where T: for<'r> Decode<'r, DB> + Type<DB> {}

/// A statement built from fixed fragments and bound values, as sqlx's `QueryBuilder`
/// builds one, but giving its arguments away (`QueryBuilder::build` borrows the builder
/// for as long as its arguments live, which generic code can never end). Run it as
/// `let (sql, args) = statement.into_parts()?;` then `sqlx::query_with(&sql, args)` (or
/// `query_scalar_with`).
///
/// Placeholders are `$N` on both backends, numbered in the order values are bound: the
/// fixed fragments carry no placeholders of their own, every value goes through
/// [`Statement::push_bind`]. (sqlx's own `?` on SQLite is numbered apart from any `$N`
/// in the text, which could bind the wrong values.)
pub(super) struct Statement<'q, DB: Dialect> {
    sql: String,
    args: DB::Arguments<'q>,
    bound: usize,
    error: Option<BoxDynError>,
}

impl<'q, DB: Dialect> Statement<'q, DB> {
    /// A statement starting with `sql` (no placeholders).
    pub(super) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Default::default(),
            bound: 0,
            error: None,
        }
    }

    /// Appends fixed SQL.
    pub(super) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds `value` and appends its placeholder.
    pub(super) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, DB> + Type<DB>,
    {
        match self.args.add(value) {
            Ok(()) => {
                self.bound += 1;
                self.sql.push('$');
                self.sql.push_str(&self.bound.to_string());
            }
            Err(e) => self.error = self.error.take().or(Some(e)),
        }
        self
    }

    /// The SQL and its arguments, or why a value could not be encoded.
    pub(super) fn into_parts(self) -> Result<(String, DB::Arguments<'q>), sqlx::Error> {
        match self.error {
            Some(e) => Err(sqlx::Error::Encode(e)),
            None => Ok((self.sql, self.args)),
        }
    }
}

/// A connected, migrated store on one backend: [`SqliteStore`] or [`PostgresStore`].
/// Cheap to clone: clones share one pool.
#[derive(Debug)]
pub struct Store<DB: Dialect> {
    pool: Pool<DB>,
    pub(super) core: StoreCore,
}

/// The store on an embedded SQLite file (the single-node default).
pub type SqliteStore = Store<Sqlite>;

/// The store on PostgreSQL (the cluster setup).
pub type PostgresStore = Store<Postgres>;

impl<DB: Dialect> Clone for Store<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            core: self.core.clone(),
        }
    }
}

impl<DB: Dialect> Store<DB> {
    /// Connects to `url` and applies pending migrations: on SQLite (a `sqlite:` URL)
    /// the file and its directory are created if missing and the database runs in WAL
    /// mode, `sqlite::memory:` giving a private in-memory database; on Postgres (a
    /// `postgres://` or `postgresql://` URL) sqlx holds an advisory lock while
    /// migrating, so gateways starting together are safe. A URL of the other backend
    /// is [`AuthError::InvalidDatabaseUrl`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, AuthError> {
        if Backend::from_url(url)? != DB::BACKEND {
            return Err(AuthError::InvalidDatabaseUrl(None));
        }
        let core = StoreCore::new(&options)?;
        let pool = DB::open(url, &options).await?;
        Ok(Self { pool, core })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The underlying pool, for other tables that share this database.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// Maps a foreign-key violation (a row naming a user that does not exist) to
/// `NotFound`, anything else to `Database`.
pub(super) fn not_found_on_fk(e: sqlx::Error) -> AuthError {
    if is_foreign_key_violation(&e) {
        AuthError::NotFound
    } else {
        AuthError::Database(e)
    }
}

/// A stored `INTEGER` count as `u32` (negative ones cannot occur: the columns are
/// checked `>= 0`).
pub(super) fn count(value: impl Into<i64>) -> u32 {
    u32::try_from(value.into()).unwrap_or(u32::MAX)
}

// Everything the SQL layer binds, reads and runs on, stated as bounds: the same list
// stands on each generic `impl` below and in the other files of `store` (Rust does not
// carry such bounds over from a trait). Bare `Uuid` and `DateTime` are missing from it
// on purpose: see the module docs.
impl<DB: Dialect> Store<DB>
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
    pub(super) fn get_id(row: &DB::Row, column: &str) -> Result<Uuid, AuthError> {
        Ok(row.try_get::<Id, _>(column)?.0)
    }

    pub(super) fn get_opt_id(row: &DB::Row, column: &str) -> Result<Option<Uuid>, AuthError> {
        Ok(row.try_get::<Option<Id>, _>(column)?.map(|id| id.0))
    }

    pub(super) fn user_from_row(row: &DB::Row, c: &UserColumns) -> Result<User, AuthError> {
        Ok(User {
            id: Self::get_id(row, c.id)?,
            email: row.try_get(c.email)?,
            plan: decode_enum(c.plan, row.try_get(c.plan)?)?,
            role: decode_enum(c.role, row.try_get(c.role)?)?,
            status: decode_enum(c.status, row.try_get(c.status)?)?,
            created_at: row.try_get(c.created_at)?,
            updated_at: row.try_get(c.updated_at)?,
        })
    }

    pub(super) fn key_from_row(row: &DB::Row) -> Result<ApiKey, AuthError> {
        Ok(ApiKey {
            id: Self::get_id(row, "id")?,
            user_id: Self::get_id(row, "user_id")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }

    /// A session from columns named `<prefix><column>`.
    pub(super) fn session_from_row(row: &DB::Row, prefix: &str) -> Result<LoginSession, AuthError> {
        let c = |name: &str| format!("{prefix}{name}");
        let reason: Option<String> = row.try_get(c("revoke_reason").as_str())?;
        Ok(LoginSession {
            id: Self::get_id(row, &c("id"))?,
            user_id: Self::get_id(row, &c("user_id"))?,
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

    pub(super) fn audit_from_row(row: &DB::Row) -> Result<AuditEvent, AuthError> {
        let detail: String = row.try_get("detail")?;
        Ok(AuditEvent {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            kind: decode_enum("kind", row.try_get("kind")?)?,
            actor_user_id: Self::get_opt_id(row, "actor_user_id")?,
            subject_user_id: Self::get_opt_id(row, "subject_user_id")?,
            ip: row.try_get("ip")?,
            detail: serde_json::from_str(&detail).map_err(|e| {
                AuthError::Database(sqlx::Error::ColumnDecode {
                    index: "detail".into(),
                    source: Box::new(e),
                })
            })?,
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
        E: Executor<'e, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Id(key.id))
        .bind(Id(key.user_id))
        .bind(key.name.as_str())
        .bind(key.prefix.as_str())
        .bind(hash)
        .bind(Ts(key.created_at))
        .bind(key.expires_at.map(Ts))
        .execute(executor)
        .await
        .map(drop)
    }

    /// Locks the row of `user_id` until `conn`'s transaction ends, where the backend
    /// locks rows ([`Dialect::FOR_UPDATE`]); `NotFound` if there is no such user. On
    /// SQLite nothing is read: the transaction's first write serialises it.
    pub(super) async fn lock_user(
        conn: &mut DB::Connection,
        user_id: Uuid,
    ) -> Result<(), AuthError> {
        let Some(for_update) = DB::FOR_UPDATE else {
            return Ok(());
        };
        sqlx::query(&format!("SELECT 1 FROM users WHERE id = $1{for_update}"))
            .bind(Id(user_id))
            .fetch_optional(conn)
            .await?
            .map(drop)
            .ok_or(AuthError::NotFound)
    }

    /// Appends the filters of `query` to a statement over `audit_events` that ends in
    /// a `WHERE` clause; every value is a bound parameter.
    pub(super) fn push_audit_filters(sql: &mut Statement<'_, DB>, query: &AuditQuery) {
        if let Some(user_id) = query.user_id {
            sql.push(" AND (actor_user_id = ")
                .push_bind(Id(user_id))
                .push(" OR subject_user_id = ")
                .push_bind(Id(user_id))
                .push(")");
        }
        if let Some(kind) = query.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(from) = query.from {
            sql.push(" AND at >= ").push_bind(Ts(from));
        }
        if let Some(until) = query.until {
            sql.push(" AND at < ").push_bind(Ts(until));
        }
        if let Some(ip) = &query.ip {
            sql.push(" AND ip = ").push_bind(ip.clone());
        }
    }

    /// Inserts the refresh token `refresh` in `conn`'s transaction.
    pub(super) async fn insert_refresh(
        conn: &mut DB::Connection,
        refresh: &NewRefresh,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, login_session_id, token_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Id(refresh.id))
        .bind(Id(refresh.session_id))
        .bind(refresh.hash.as_slice())
        .bind(Ts(refresh.issued_at))
        .bind(Ts(refresh.expires_at))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Marks the token in `table` (a one-time token table: `token_hash`, `user_id`,
    /// `expires_at`, `used_at`) used at `now` if it is unused and unexpired: its user,
    /// or why not.
    pub(super) async fn use_one_time_token(
        conn: &mut DB::Connection,
        table: &'static str,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Result<Uuid, OneTimeRejection>, AuthError> {
        let used = sqlx::query(&format!(
            "UPDATE {table} SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id"
        ))
        .bind(Ts(now))
        .bind(hash)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = used {
            return Ok(Ok(Self::get_id(&row, "user_id")?));
        }
        let state = sqlx::query(&format!(
            "SELECT used_at IS NOT NULL AS used FROM {table} WHERE token_hash = $1"
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::clock::ManualClock;
    use crate::model::{NewApiKey, NewUser};
    use crate::secret::Secret;
    use crate::store::UserStore;

    /// What SQLite databases already hold must keep reading and comparing the same:
    /// uuids as hyphenated lowercase text, times as fixed-width RFC 3339 text.
    #[tokio::test]
    async fn sqlite_stores_ids_and_times_as_before() {
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap() + TimeDelta::nanoseconds(7_000);
        let options =
            StoreOptions::new(Secret::new(vec![7; 32])).clock(Arc::new(ManualClock::new(at)));
        let store = SqliteStore::connect("sqlite::memory:", options)
            .await
            .unwrap();
        let user = store
            .create_user(NewUser::new("a@example.com"))
            .await
            .unwrap();
        let mut new = NewApiKey::new("k");
        new.expires_at = Some(at + TimeDelta::days(400));
        let key = store.create_api_key(user.id, new).await.unwrap().key;

        let (id, created, kinds): (String, String, String) = sqlx::query_as(
            "SELECT id, created_at, typeof(id) || ' ' || typeof(created_at) FROM users",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(id, user.id.hyphenated().to_string());
        assert_eq!(created, "2024-01-02T03:04:05.000007Z");
        assert_eq!(kinds, "text text");
        let (user_id, expires): (String, String) =
            sqlx::query_as("SELECT user_id, expires_at FROM api_keys WHERE id = $1")
                .bind(Id(key.id))
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(user_id, user.id.hyphenated().to_string());
        assert_eq!(expires, "2025-02-05T03:04:05.000007Z");
    }
}
