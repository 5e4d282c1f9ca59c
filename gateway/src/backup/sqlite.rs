//! SQLite: `VACUUM INTO` on the live file (a consistent snapshot taken in one read
//! transaction while the server keeps writing, WAL readers and writers do not block
//! each other), and a restore that swaps the file in whole.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
use sqlx::{Connection, Row, SqliteConnection};

use super::BackupError;

/// The file a `sqlite:` URL names; in-memory databases have nothing to back up.
pub fn database_path(url: &str) -> Result<PathBuf, BackupError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(BackupError::Refused(
            "the configured database is in memory: there is nothing to back up or restore".into(),
        ));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| BackupError::Refused(format!("database.url: {e}")))?;
    Ok(options.get_filename().to_path_buf())
}

fn database_error(path: &Path) -> impl Fn(sqlx::Error) -> BackupError + '_ {
    move |e| BackupError::Database(format!("{}: {e}", path.display()))
}

async fn open(path: &Path, read_only: bool) -> Result<SqliteConnection, BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options)
        .await
        .map_err(database_error(path))
}

/// Copies the live database at `path` into `out` (which must not exist) and checks
/// the copy; its schema version.
pub async fn snapshot(path: &Path, out: &Path) -> Result<i64, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Refused(format!(
            "no SQLite database at {} (database.url / data_dir)",
            path.display()
        )));
    }
    let target = out
        .to_str()
        .ok_or_else(|| BackupError::Refused(format!("{}: not UTF-8", out.display())))?;
    let mut conn = open(path, false).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .map_err(database_error(path))?;
    conn.close().await.map_err(database_error(path))?;
    verify(out).await
}

/// Checks that `copy` is a sound SimuTrador SQLite database (header, `PRAGMA
/// integrity_check`, migration history); its schema version.
pub async fn verify(copy: &Path) -> Result<i64, BackupError> {
    let mut magic = [0u8; 16];
    let header =
        std::fs::File::open(copy).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if header.is_err() || &magic != b"SQLite format 3\0" {
        return Err(BackupError::Invalid(
            "the database entry is not a SQLite database".into(),
        ));
    }
    let damaged = |e: sqlx::Error| BackupError::Invalid(format!("the database copy: {e}"));
    let mut conn = open(copy, true)
        .await
        .map_err(|e| BackupError::Invalid(format!("the database copy cannot be opened: {e}")))?;
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(damaged)?;
    let report: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect();
    if report != ["ok"] {
        return Err(BackupError::Invalid(format!(
            "the database copy fails its integrity check: {}",
            report.join("; ")
        )));
    }
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| {
                BackupError::Invalid(format!(
                    "the database copy has no migration history (not a SimuTrador database): {e}"
                ))
            })?;
    conn.close().await.map_err(damaged)?;
    Ok(version)
}

/// Whether any table but the migration history has a row.
async fn has_rows(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        let sql = format!("SELECT EXISTS (SELECT 1 FROM \"{quoted}\")");
        let any: bool = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?;
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// SQLite's "busy" and "locked" result codes.
fn is_busy(e: &sqlx::Error) -> bool {
    // Extended codes (SQLITE_BUSY_RECOVERY, ...) keep the primary code in the low byte.
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Replaces the database at `path` with `copy` (a verified file in the same
/// directory). Refused while another process has the database open (a running
/// gateway would go on with the old file) and, without `force`, when it has data.
pub async fn restore(path: &Path, copy: &Path, force: bool) -> Result<(), BackupError> {
    // The restored file is as private as the one it replaces (owner-only when new):
    // it holds password and key hashes.
    let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o777);
    if path.exists() {
        // An exclusive lock is granted only when no other connection (in any process)
        // has the file open; WAL connections hold a shared lock while open.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .locking_mode(SqliteLockingMode::Exclusive)
            .busy_timeout(Duration::from_millis(200));
        let in_use = || {
            BackupError::Refused(format!(
                "{} is in use: stop every gateway (and other program) using it, then restore",
                path.display()
            ))
        };
        let mut conn = match SqliteConnection::connect_with(&options).await {
            Ok(c) => c,
            Err(e) if is_busy(&e) => return Err(in_use()),
            Err(e) => return Err(database_error(path)(e)),
        };
        match sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await {
            Ok(_) => {}
            Err(e) if is_busy(&e) => return Err(in_use()),
            Err(e) => return Err(database_error(path)(e)),
        }
        let has_data = has_rows(&mut conn).await.map_err(database_error(path))?;
        sqlx::query("ROLLBACK")
            .execute(&mut conn)
            .await
            .map_err(database_error(path))?;
        // Closing checkpoints and removes the old write-ahead log.
        conn.close().await.map_err(database_error(path))?;
        if has_data && !force {
            return Err(BackupError::Refused(format!(
                "{} already holds data: restoring replaces all of it; add --force to do so",
                path.display()
            )));
        }
    }
    let dir_context = || format!("replacing {}", path.display());
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::File::open(copy))
        .and_then(|f| f.sync_all())
        .map_err(|source| BackupError::Io {
            context: dir_context(),
            source,
        })?;
    // A log left from the old file must not be applied to the new one.
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BackupError::Io {
                    context: dir_context(),
                    source,
                })
            }
        }
    }
    std::fs::rename(copy, path).map_err(|source| BackupError::Io {
        context: dir_context(),
        source,
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::archive::sync_dir(dir).map_err(|source| BackupError::Io {
            context: dir_context(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    async fn live(path: &Path) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE _sqlx_migrations (version INTEGER, success BOOLEAN)",
            "INSERT INTO _sqlx_migrations VALUES (1, 1), (2, 1)",
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, payload TEXT)",
            "CREATE TABLE ledger (order_id INTEGER NOT NULL, amount INTEGER NOT NULL)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool
    }

    /// Writers insert an order and its ledger line in one transaction, as fast as
    /// they can, while snapshots are taken: every snapshot passes the integrity check
    /// and holds exactly as many ledger lines as orders (no transaction half in).
    #[tokio::test]
    async fn snapshots_under_concurrent_writes_are_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let pool = live(&path).await;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for w in 0..3 {
            let (pool, stop, written) = (pool.clone(), stop.clone(), written.clone());
            writers.push(tokio::spawn(async move {
                let payload = "x".repeat(2000);
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = pool.begin().await.unwrap();
                    let id: i64 =
                        sqlx::query_scalar("INSERT INTO orders (payload) VALUES (?) RETURNING id")
                            .bind(&payload)
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                    sqlx::query("INSERT INTO ledger VALUES (?, ?)")
                        .bind(id)
                        .bind(w)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut seen = Vec::new();
        for i in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let out = dir.path().join(format!("copy{i}.db"));
            assert_eq!(snapshot(&path, &out).await.unwrap(), 2);
            let mut conn = open(&out, true).await.unwrap();
            let (orders, ledger): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM ledger)",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(orders, ledger, "snapshot {i}");
            seen.push(orders);
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "writes went on during the snapshots: {seen:?}"
        );
        assert!(written.load(Ordering::Relaxed) as i64 > seen[4]);
    }

    #[tokio::test]
    async fn restore_is_refused_while_open_or_holding_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let pool = live(&path).await;
        let copy = dir.path().join("copy.db");
        snapshot(&path, &copy).await.unwrap();
        let r = restore(&path, &copy, true).await;
        assert!(
            matches!(&r, Err(BackupError::Refused(m)) if m.contains("in use")),
            "{r:?}"
        );
        sqlx::query("INSERT INTO orders (payload) VALUES ('a')")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let r = restore(&path, &copy, false).await;
        assert!(
            matches!(&r, Err(BackupError::Refused(m)) if m.contains("--force")),
            "{r:?}"
        );
        restore(&path, &copy, true).await.unwrap();
        let mut conn = open(&path, true).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "the copy was taken before the insert");
        assert!(!copy.exists());
    }

    #[tokio::test]
    async fn damaged_copies_fail_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let pool = live(&path).await;
        for i in 0..200 {
            sqlx::query("INSERT INTO orders (payload) VALUES (?)")
                .bind(format!("{i:0>3000}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        snapshot(&path, &copy).await.unwrap();
        let mut bytes = std::fs::read(&copy).unwrap();
        // The header of a b-tree page in the middle.
        let mid = bytes.len() / 2 / 4096 * 4096;
        for b in &mut bytes[mid..mid + 64] {
            *b = 0xff;
        }
        let bad = dir.path().join("bad.db");
        std::fs::write(&bad, &bytes).unwrap();
        assert!(matches!(verify(&bad).await, Err(BackupError::Invalid(_))));
        std::fs::write(&bad, b"not a database at all").unwrap();
        assert!(matches!(verify(&bad).await, Err(BackupError::Invalid(_))));
    }
}
