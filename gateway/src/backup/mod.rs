//! `admin backup` and `admin restore`: one file holding the database and the secrets
//! recovery needs besides it (see [`archive`] for the layout).
//!
//! The database decides what a secret protects: API keys, refresh tokens, recovery
//! codes and emailed links are stored as HMACs under `api_key_pepper`; TOTP secrets
//! are sealed with the accounts encryption keys; tokens are signed with `jwt_secret`.
//! Secrets generated into `data_dir` are included; secrets set in the configuration
//! are not (the configuration is kept elsewhere) but are fingerprinted, so a restore
//! can tell the operator what must be set.

pub mod archive;
mod postgres;
mod sqlite;

use std::io::Write;
use std::path::{Path, PathBuf};

use auth::{Backend, Secret, StoreOptions, UserStore};
use chrono::Utc;

pub use archive::{DatabaseKind, Manifest, SecretRecord, SecretSource};

use crate::config::{Mode, Settings};

/// Why a backup or restore did not happen (or, for `Database` after a restore,
/// did not finish).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The backup file is damaged, truncated or not a backup.
    #[error("the backup is not usable, nothing was changed: {0}")]
    Invalid(String),
    /// The operation is refused as things stand (wrong database kind, data present
    /// without --force, database in use, newer format).
    #[error("{0}")]
    Refused(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// `pg_dump`, `pg_restore` or `psql` failed.
    #[error("{tool}: {message}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its error output.
        message: String,
    },
}

/// One secret the database depends on.
struct Spec {
    /// File name under `data_dir` and name in the manifest.
    name: &'static str,
    /// The setting that replaces the generated file.
    setting: &'static str,
    /// What breaks without the right value.
    without: &'static str,
}

const JWT: Spec = Spec {
    name: "jwt_secret",
    setting: "jwt.secret",
    without: "access tokens issued before are refused (clients get new ones with their API keys or by logging in)",
};
const PEPPER: Spec = Spec {
    name: "api_key_pepper",
    setting: "auth.api_key_pepper",
    without: "no API key, refresh token, recovery code or emailed link made before works",
};
const ENCRYPTION: Spec = Spec {
    name: "encryption_key",
    setting: "accounts.encryption_keys",
    without: "users with TOTP cannot pass the second factor until an operator resets it (POST /admin/users/{id}/reset-2fa)",
};

fn configured<'a>(settings: &'a Settings, spec: &Spec) -> &'a str {
    match spec.name {
        "jwt_secret" => settings.jwt.secret.expose(),
        "api_key_pepper" => settings.auth.api_key_pepper.expose(),
        _ => settings.accounts.encryption_keys.text(),
    }
}

/// `accounts.encryption_keys` as (id, key) pairs (parsed when the settings loaded).
fn configured_keys(settings: &Settings) -> Vec<(String, Vec<u8>)> {
    settings
        .accounts
        .encryption_keys
        .keys()
        .iter()
        .map(|(id, key)| (id.clone(), key.expose().clone()))
        .collect()
}

fn secret_file(settings: &Settings, spec: &Spec) -> Result<Option<Vec<u8>>, BackupError> {
    let path = settings.data_dir.join(spec.name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BackupError::Io {
            context: format!("{}", path.display()),
            source,
        }),
    }
}

/// Where each secret comes from under `settings`, and the generated ones' contents.
fn collect_secrets(
    settings: &Settings,
) -> Result<(Vec<SecretRecord>, Vec<archive::Payload>), BackupError> {
    let mut records = Vec::new();
    let mut payloads = Vec::new();
    for spec in [&JWT, &PEPPER, &ENCRYPTION] {
        let value = configured(settings, spec);
        let source = if !value.is_empty() {
            if spec.name == ENCRYPTION.name {
                let keys = configured_keys(settings)
                    .into_iter()
                    .map(|(id, key)| archive::KeyFingerprint {
                        id,
                        fingerprint: archive::fingerprint(&key),
                    })
                    .collect();
                SecretSource::ConfiguredKeys {
                    setting: spec.setting.into(),
                    keys,
                }
            } else {
                SecretSource::Configuration {
                    setting: spec.setting.into(),
                    fingerprint: archive::fingerprint(value.as_bytes()),
                }
            }
        } else if spec.name == ENCRYPTION.name && settings.mode == Mode::Production {
            // Production without keys: TOTP enrolment is refused, nothing is sealed.
            SecretSource::Absent
        } else {
            match secret_file(settings, spec)? {
                Some(data) => {
                    let entry = format!("{}{}", archive::SECRETS_DIR, spec.name);
                    payloads.push(archive::Payload::Bytes {
                        name: entry.clone(),
                        data,
                    });
                    SecretSource::File { entry }
                }
                // Every command that opens the database creates the pepper: without
                // it, this is not the server's data_dir and the backup would be useless.
                None if spec.name == PEPPER.name => {
                    return Err(BackupError::Refused(format!(
                    "{} not found: run the backup with the server's configuration (data_dir = {})",
                    settings.data_dir.join(spec.name).display(),
                    settings.data_dir.display()
                )))
                }
                None => SecretSource::Absent,
            }
        };
        records.push(SecretRecord {
            name: spec.name.into(),
            source,
        });
    }
    Ok((records, payloads))
}

fn kind_of(url: &str) -> Result<DatabaseKind, BackupError> {
    match Backend::from_url(url) {
        Ok(Backend::Sqlite) => Ok(DatabaseKind::Sqlite),
        Ok(Backend::Postgres) => Ok(DatabaseKind::Postgres),
        Err(e) => Err(BackupError::Refused(format!("database.url: {e}"))),
    }
}

fn backend(kind: DatabaseKind) -> Backend {
    match kind {
        DatabaseKind::Sqlite => Backend::Sqlite,
        DatabaseKind::Postgres => Backend::Postgres,
    }
}

/// A private (0700) scratch directory in `dir`, removed when dropped.
fn scratch_in(dir: &Path) -> Result<tempfile::TempDir, BackupError> {
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            tempfile::Builder::new()
                .prefix(".simutrador-backup-")
                .tempdir_in(dir)
        })
        .map_err(|source| BackupError::Io {
            context: format!("scratch directory in {}", dir.display()),
            source,
        })
}

/// What [`backup`] wrote.
#[derive(Debug)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Writes a backup of the configured database and secrets to `to` (a new file,
/// mode 0600), while the gateway may be serving.
pub async fn backup(settings: &Settings, to: &Path) -> Result<BackupReport, BackupError> {
    let url = settings.database_url();
    let kind = kind_of(&url)?;
    let (secrets, mut payloads) = collect_secrets(settings)?;
    if to.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: backups are never overwritten, choose a new name",
            to.display()
        )));
    }
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let scratch = scratch_in(dir)?;
    let (entry, format, copy, schema_version, tool) = match kind {
        DatabaseKind::Sqlite => {
            let copy = scratch.path().join("simutrador.db");
            let version = sqlite::snapshot(&sqlite::database_path(&url)?, &copy).await?;
            ("database/simutrador.db", "sqlite3", copy, version, None)
        }
        DatabaseKind::Postgres => {
            let copy = scratch.path().join("simutrador.pgdump");
            let (version, tool) = postgres::dump(&url, &copy).await?;
            let entry = "database/simutrador.pgdump";
            (entry, "pg_dump-custom", copy, version, Some(tool))
        }
    };
    payloads.insert(
        0,
        archive::Payload::File {
            name: entry.into(),
            path: copy,
        },
    );
    let mut manifest = Manifest {
        format: archive::FORMAT.into(),
        format_version: archive::FORMAT_VERSION,
        created_at: crate::translate::rfc3339(Utc::now()),
        node: settings.node_id(),
        gateway_version: env!("CARGO_PKG_VERSION").into(),
        database: archive::DatabaseInfo {
            kind,
            schema_version,
            entry: entry.into(),
            format: format.into(),
            tool,
        },
        secrets,
        files: Vec::new(),
    };
    let bytes = archive::write(to, &mut manifest, &payloads)?;
    Ok(BackupReport {
        path: to.to_path_buf(),
        bytes,
        manifest,
    })
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct RestoreReport {
    /// The restored backup's manifest.
    pub manifest: Manifest,
    /// Secret files written into `data_dir`.
    pub restored_secrets: Vec<PathBuf>,
    /// What the operator must still do (settings to set), one sentence each.
    pub actions: Vec<String>,
    /// Users in the restored database.
    pub users: u64,
}

/// A generated secret ready to be moved into `data_dir`.
struct Staged {
    file: tempfile::NamedTempFile,
    path: PathBuf,
}

/// Checks the generated secret `data` and writes it, mode 0600, next to where it goes.
fn stage(settings: &Settings, spec: &Spec, data: &[u8]) -> Result<Staged, BackupError> {
    let text = std::str::from_utf8(data).map(str::trim).unwrap_or("");
    let sound = match spec.name {
        "encryption_key" => crate::secrets::decode_hex(text).is_some_and(|k| k.len() == 32),
        _ => !text.is_empty(),
    };
    if !sound {
        return Err(BackupError::Invalid(format!(
            "the backed-up {} is damaged",
            spec.name
        )));
    }
    let dir = &settings.data_dir;
    let io = |source| BackupError::Io {
        context: format!("writing into {}", dir.display()),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{}-", spec.name))
        .tempfile_in(dir)
        .map_err(io)?;
    file.write_all(data).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    Ok(Staged {
        file,
        path: dir.join(spec.name),
    })
}

/// What the operator must set for `record` to hold under `settings`, if anything;
/// `restored` is the generated file's contents when the backup has it.
fn action(
    settings: &Settings,
    spec: &Spec,
    record: &SecretSource,
    restored: Option<&[u8]>,
) -> Option<String> {
    let value = configured(settings, spec);
    let file = settings.data_dir.join(spec.name);
    match record {
        SecretSource::File { .. } if spec.name == ENCRYPTION.name => {
            let key =
                restored.and_then(|d| crate::secrets::decode_hex(std::str::from_utf8(d).ok()?))?;
            let has_it = configured_keys(settings).iter().any(|(_, k)| *k == key);
            if has_it {
                None
            } else if !value.is_empty() || settings.mode == Mode::Production {
                Some(format!(
                    "the generated encryption key was restored to {}, but it is read only in development mode with {} unset: add `generated:<the file's contents>` to {}, or {}",
                    file.display(), spec.setting, spec.setting, spec.without
                ))
            } else {
                None
            }
        }
        SecretSource::File { .. } => {
            let restored = restored
                .and_then(|d| std::str::from_utf8(d).ok())
                .map(str::trim);
            if value.is_empty() || Some(value) == restored {
                None
            } else {
                Some(format!(
                    "{} is set and overrides the restored {}: unset it (or set it to the file's contents), or {}",
                    spec.setting,
                    file.display(),
                    spec.without
                ))
            }
        }
        SecretSource::Configuration {
            setting,
            fingerprint,
        } => {
            if value.is_empty() {
                Some(format!(
                    "set {setting} to the value it had when the backup was taken (fingerprint {fingerprint}), or {}",
                    spec.without
                ))
            } else if archive::fingerprint(value.as_bytes()) != *fingerprint {
                Some(format!(
                    "{setting} differs from its value when the backup was taken (fingerprint {fingerprint}): set that value, or {}",
                    spec.without
                ))
            } else {
                None
            }
        }
        SecretSource::ConfiguredKeys { setting, keys } => {
            let current = configured_keys(settings);
            let missing: Vec<&str> = keys
                .iter()
                .filter(|k| {
                    !current
                        .iter()
                        .any(|(id, key)| *id == k.id && archive::fingerprint(key) == k.fingerprint)
                })
                .map(|k| k.id.as_str())
                .collect();
            if missing.is_empty() {
                None
            } else {
                Some(format!(
                    "{setting} lacks the key(s) {} it had when the backup was taken (same ids and values): add them, or {}",
                    missing.join(", "),
                    spec.without
                ))
            }
        }
        SecretSource::Absent => None,
    }
}

/// Restores the backup at `from` into the configured database and `data_dir`, after
/// checking all of it. Refused when the database holds data, unless `force`; the
/// gateways using the database must be stopped.
pub async fn restore(
    settings: &Settings,
    from: &Path,
    force: bool,
) -> Result<RestoreReport, BackupError> {
    let url = settings.database_url();
    let kind = kind_of(&url)?;
    let sqlite_path = match kind {
        DatabaseKind::Sqlite => Some(sqlite::database_path(&url)?),
        DatabaseKind::Postgres => None,
    };
    // SQLite: next to the database, so the verified copy is renamed into place.
    let scratch_dir = match &sqlite_path {
        Some(p) => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        None => settings.data_dir.clone(),
    };
    let scratch = scratch_in(&scratch_dir)?;
    let extracted = archive::read(from, scratch.path())?;
    let manifest = extracted.manifest;
    if manifest.database.kind != kind {
        return Err(BackupError::Refused(format!(
            "the backup holds a {} database but the configured one (database.url) is {}: nothing was changed",
            manifest.database.kind.as_str(),
            kind.as_str()
        )));
    }
    let known = backend(kind).schema_version();
    if manifest.database.schema_version > known {
        return Err(BackupError::Refused(format!(
            "the backup's schema (migration {}) is newer than this gateway's ({known}): restore it with gateway {} or later",
            manifest.database.schema_version, manifest.gateway_version
        )));
    }
    // Every check of the content before anything changes.
    let mut staged = Vec::new();
    let mut actions = Vec::new();
    for record in &manifest.secrets {
        let spec = [&JWT, &PEPPER, &ENCRYPTION]
            .into_iter()
            .find(|s| s.name == record.name)
            .ok_or_else(|| BackupError::Invalid(format!("unknown secret `{}`", record.name)))?;
        let restored = match &record.source {
            SecretSource::File { entry } => {
                let data = extracted
                    .secrets
                    .get(entry)
                    .ok_or_else(|| BackupError::Invalid(format!("`{entry}` is missing")))?;
                staged.push(stage(settings, spec, data)?);
                Some(data.as_slice())
            }
            _ => None,
        };
        actions.extend(action(settings, spec, &record.source, restored));
    }
    let script = scratch.path().join("restore.sql");
    match kind {
        DatabaseKind::Sqlite => {
            let version = sqlite::verify(&extracted.database).await?;
            if version != manifest.database.schema_version {
                return Err(BackupError::Invalid(format!(
                    "the database copy is at migration {version}, the manifest says {}",
                    manifest.database.schema_version
                )));
            }
        }
        DatabaseKind::Postgres => postgres::verify(&extracted.database, &script).await?,
    }
    // Changes start here.
    match &sqlite_path {
        Some(path) => sqlite::restore(path, &extracted.database, force).await?,
        None => postgres::restore(&url, &script, scratch.path(), force).await?,
    }
    let mut restored_secrets = Vec::new();
    for s in staged {
        s.file.persist(&s.path).map_err(|e| BackupError::Io {
            context: format!(
                "the database was restored, but writing {} failed",
                s.path.display()
            ),
            source: e.error,
        })?;
        restored_secrets.push(s.path);
    }
    if !restored_secrets.is_empty() {
        archive::sync_dir(&settings.data_dir).map_err(|source| BackupError::Io {
            context: format!("{}", settings.data_dir.display()),
            source,
        })?;
    }
    let users = migrate(settings, &url).await?;
    Ok(RestoreReport {
        manifest,
        restored_secrets,
        actions,
        users,
    })
}

/// Applies this build's migrations to the restored database; its user count.
async fn migrate(settings: &Settings, url: &str) -> Result<u64, BackupError> {
    let after = |m: String| BackupError::Database(format!("restored, but {m}"));
    let pepper = crate::secrets::configured_or_generated(
        &settings.auth.api_key_pepper,
        &settings.data_dir,
        PEPPER.name,
    )
    .map_err(|e| after(format!("reading the pepper failed: {e}")))?;
    let options = StoreOptions::new(Secret::new(pepper.into_bytes())).max_connections(1);
    let db = auth::connect(url, options)
        .await
        .map_err(|e| after(format!("migrating failed: {e}")))?;
    let users = db
        .count_users()
        .await
        .map_err(|e| after(format!("reading it failed: {e}")));
    db.close().await;
    users
}
