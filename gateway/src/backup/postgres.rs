//! Postgres: `pg_dump` (one consistent snapshot, taken while the server writes) in
//! its custom format, and a restore that first turns the dump into SQL with
//! `pg_restore` (reading every byte of it, so a damaged dump fails before anything
//! changes), then drops the old tables and loads the dump in ONE transaction with
//! `psql --single-transaction`: on any error nothing changes.
//!
//! The tools get the URL without its password; a password moves to `PGPASSWORD` in
//! their environment, which other users cannot read (`ps` shows command lines).

use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::BackupError;

/// A database URL split for the client tools.
#[derive(Debug, PartialEq, Eq)]
pub struct ToolTarget {
    /// The URL with no password in it.
    pub url: String,
    /// The password, decoded, for `PGPASSWORD`.
    pub password: Option<String>,
}

/// Splits the password (user-info or `?password=`) off `url`.
pub fn tool_target(url: &str) -> Result<ToolTarget, BackupError> {
    let bad = |m: String| BackupError::Refused(format!("database.url: {m}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut password = parsed
        .password()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .map(|p| p.into_owned())
                .map_err(|_| bad("the password is not UTF-8".into()))
        })
        .transpose()?;
    if password.is_some() {
        parsed
            .set_password(None)
            .map_err(|_| bad("cannot remove the password".into()))?;
    }
    let (from_query, rest): (Vec<_>, Vec<_>) = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .partition(|(k, _)| k == "password");
    if let Some((_, p)) = from_query.into_iter().last() {
        password = Some(p);
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
    }
    Ok(ToolTarget {
        url: parsed.into(),
        password,
    })
}

/// `tool` set up for `target`: never prompts, password in the environment.
fn command(tool: &str, target: &ToolTarget) -> Command {
    let mut cmd = Command::new(tool);
    cmd.arg("--no-password").stdin(Stdio::null());
    if let Some(p) = &target.password {
        cmd.env("PGPASSWORD", p);
    }
    cmd
}

/// Runs `cmd` off the async threads; its standard output, or its error output as a
/// [`BackupError::Tool`].
async fn run(tool: &'static str, mut cmd: Command) -> Result<String, BackupError> {
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| BackupError::Tool {
            tool,
            message: e.to_string(),
        })?
        .map_err(|e| BackupError::Tool {
            tool,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "not found on PATH: install the PostgreSQL client tools (Debian: postgresql-client), of the server's major version or newer".into()
            } else {
                e.to_string()
            },
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BackupError::Tool {
            tool,
            message: format!("{} ({})", stderr.trim(), output.status),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn connect(url: &str) -> Result<PgConnection, BackupError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| BackupError::Refused(format!("database.url: {e}")))?;
    PgConnection::connect_with(&options).await.map_err(|e| {
        BackupError::Database(format!("cannot connect to the configured database: {e}"))
    })
}

/// Dumps the database at `url` into `out`; (schema version, `pg_dump --version`).
pub async fn dump(url: &str, out: &Path) -> Result<(i64, String), BackupError> {
    let mut conn = connect(url).await?;
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| {
                BackupError::Database(format!(
                    "no migration history in the configured database (run `migrate` first?): {e}"
                ))
            })?;
    let _ = conn.close().await;
    let target = tool_target(url)?;
    let mut probe = Command::new("pg_dump");
    probe.arg("--version").stdin(Stdio::null());
    let tool = run("pg_dump", probe).await?.trim().to_string();
    let mut cmd = command("pg_dump", &target);
    cmd.arg("--format=custom")
        .arg("--file")
        .arg(out)
        .arg("--dbname")
        .arg(&target.url);
    run("pg_dump", cmd).await?;
    Ok((version, tool))
}

/// Turns the dump into the SQL script `script` (no owners or grants: the restoring
/// role owns what it creates), reading all of it; a damaged dump is
/// [`BackupError::Invalid`].
pub async fn verify(dump: &Path, script: &Path) -> Result<(), BackupError> {
    let mut cmd = Command::new("pg_restore");
    cmd.stdin(Stdio::null())
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--exit-on-error")
        .arg("--file")
        .arg(script)
        .arg(dump);
    match run("pg_restore", cmd).await {
        Ok(_) => Ok(()),
        Err(BackupError::Tool { message, .. }) if !message.contains("not found on PATH") => Err(
            BackupError::Invalid(format!("the database dump is damaged: {message}")),
        ),
        Err(e) => Err(e),
    }
}

/// The tables of the schema the gateway uses (the connection's current schema).
async fn tables(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         ORDER BY table_name",
    )
    .fetch_all(conn)
    .await
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Replaces everything in the database at `url` with `script` (from [`verify`]), in
/// one transaction. Without `force`, refused when any table but the migration
/// history has a row.
pub async fn restore(
    url: &str,
    script: &Path,
    scratch: &Path,
    force: bool,
) -> Result<(), BackupError> {
    let failed = |e: sqlx::Error| BackupError::Database(e.to_string());
    let mut conn = connect(url).await?;
    let existing = tables(&mut conn).await.map_err(failed)?;
    let mut has_data = false;
    for (schema, table) in existing.iter().filter(|(_, t)| t != "_sqlx_migrations") {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {}.{})",
            quote(schema),
            quote(table)
        );
        if sqlx::query_scalar::<_, bool>(&sql)
            .fetch_one(&mut conn)
            .await
            .map_err(failed)?
        {
            has_data = true;
            break;
        }
    }
    let _ = conn.close().await;
    if has_data && !force {
        return Err(BackupError::Refused(
            "the configured database already holds data: restoring replaces all of it; add --force to do so".into(),
        ));
    }
    // Tables of the current schema go first (in the same transaction as the load), so
    // tables of a newer schema than the backup's cannot linger next to it.
    let drops: String = existing
        .iter()
        .map(|(s, t)| format!("DROP TABLE IF EXISTS {}.{} CASCADE;\n", quote(s), quote(t)))
        .collect();
    let preamble = scratch.join("drop.sql");
    std::fs::write(&preamble, drops).map_err(|source| BackupError::Io {
        context: format!("{}", preamble.display()),
        source,
    })?;
    let target = tool_target(url)?;
    let mut cmd = command("psql", &target);
    cmd.arg("--no-psqlrc")
        .arg("--quiet")
        .arg("--single-transaction")
        .arg("--set")
        .arg("ON_ERROR_STOP=1")
        .arg("--dbname")
        .arg(&target.url)
        .arg("--file")
        .arg(&preamble)
        .arg("--file")
        .arg(script)
        .stdout(Stdio::null());
    run("psql", cmd).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        let t = tool_target("postgres://app:p%40ss%2Fw@db.example:5432/simutrador?sslmode=require")
            .unwrap();
        assert_eq!(
            t,
            ToolTarget {
                url: "postgres://app@db.example:5432/simutrador?sslmode=require".into(),
                password: Some("p@ss/w".into()),
            }
        );
        let t = tool_target("postgresql://app@db/x?password=s3cret&application_name=gw").unwrap();
        assert_eq!(t.url, "postgresql://app@db/x?application_name=gw");
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        let t = tool_target("postgres://db/x?password=only").unwrap();
        assert_eq!(
            (t.url.as_str(), t.password.as_deref()),
            ("postgres://db/x", Some("only"))
        );
        let t = tool_target("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(t.url, "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(t.password, None);
    }
}
