//! The backup file: a plain tar (`tar tvf FILE` lists it) of
//!
//! 1. `manifest.json`: what the archive holds ([`Manifest`]), with the size and SHA-256
//!    of every other entry;
//! 2. the database (`database/...`) and the generated secrets (`secrets/...`), in the
//!    manifest's order;
//! 3. `manifest.sha256`: the SHA-256 of the manifest's bytes, last, so a file cut off
//!    anywhere (even between entries) or with a damaged manifest is recognised.
//!
//! Reading checks all of it ([`read`]) before a restore changes anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

/// `format` of every SimuTrador backup's manifest.
pub const FORMAT: &str = "simutrador-backup";
/// The manifest layout this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the first entry.
pub const MANIFEST: &str = "manifest.json";
/// Name of the last entry.
pub const SEAL: &str = "manifest.sha256";
/// Entries under this folder are generated secrets, read into memory.
pub const SECRETS_DIR: &str = "secrets/";
/// Larger manifests or secrets are not ours (ours are a few KiB and 64 bytes).
const MAX_SMALL_ENTRY: u64 = 1 << 20;

/// What a backup holds, written first in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// When the backup was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The node that took it (`server.node_id`, or host and process id).
    pub node: String,
    /// The gateway version that took it.
    pub gateway_version: String,
    /// The database copy.
    pub database: DatabaseInfo,
    /// Where each secret recovery needs came from, and whether it is included.
    pub secrets: Vec<SecretRecord>,
    /// Every entry after the manifest (but the seal), in archive order.
    pub files: Vec<FileEntry>,
}

/// Which database a backup is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// A SQLite file, copied whole.
    Sqlite,
    /// A Postgres database, as a `pg_dump` custom-format archive.
    Postgres,
}

impl DatabaseKind {
    /// The name used in messages and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// The database copy inside a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// SQLite or Postgres.
    pub kind: DatabaseKind,
    /// The newest applied migration (`_sqlx_migrations`) at backup time.
    pub schema_version: i64,
    /// The entry holding it.
    pub entry: String,
    /// How it is stored: `sqlite3` (a database file) or `pg_dump-custom`.
    pub format: String,
    /// The tool that made it (`pg_dump --version`), for Postgres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

/// One secret the database depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// `jwt_secret`, `api_key_pepper` or `encryption_key`.
    pub name: String,
    /// Where it came from.
    #[serde(flatten)]
    pub source: SecretSource,
}

/// Where a secret came from when the backup was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SecretSource {
    /// Generated into `data_dir`; included as `entry`.
    File {
        /// The archive entry holding the file's contents.
        entry: String,
    },
    /// Set in the configuration, so not included; the fingerprint (the start of a
    /// SHA-256) lets a restore tell whether the current configuration has it.
    Configuration {
        /// Dotted settings key.
        setting: String,
        /// 16 hex digits.
        fingerprint: String,
    },
    /// Keys set in the configuration (`accounts.encryption_keys`), by id.
    ConfiguredKeys {
        /// Dotted settings key.
        setting: String,
        /// Each configured key.
        keys: Vec<KeyFingerprint>,
    },
    /// Neither configured nor generated yet (nothing depends on it).
    Absent,
}

/// A configured key's id and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFingerprint {
    /// The id before the colon.
    pub id: String,
    /// 16 hex digits.
    pub fingerprint: String,
}

/// One entry after the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the archive.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// What goes into the archive after the manifest.
pub enum Payload {
    /// A file on disk (the database copy), streamed.
    File {
        /// Entry name.
        name: String,
        /// Where it is.
        path: PathBuf,
    },
    /// Bytes in memory (a secret).
    Bytes {
        /// Entry name.
        name: String,
        /// Contents.
        data: Vec<u8>,
    },
}

impl Payload {
    fn name(&self) -> &str {
        match self {
            Payload::File { name, .. } | Payload::Bytes { name, .. } => name,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short, one-way fingerprint of a secret: enough to tell two values apart, far too
/// little to recover or test guesses of a random 32-byte secret.
pub fn fingerprint(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"simutrador-backup fingerprint\0");
    h.update(secret);
    hex(&h.finalize()[..8])
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// SHA-256 and length of everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.count, hex(&self.hasher.finalize()))
    }
}

fn describe(payload: &Payload) -> Result<FileEntry, BackupError> {
    let (size, sha256) = match payload {
        Payload::File { path, .. } => {
            let file = File::open(path).map_err(io(format!("{}", path.display())))?;
            let mut reader = Hashing::new(BufReader::new(file));
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(io(format!("{}", path.display())))?;
            reader.finish()
        }
        Payload::Bytes { data, .. } => (data.len() as u64, hex(&Sha256::digest(data))),
    };
    Ok(FileEntry {
        name: payload.name().to_string(),
        size,
        sha256,
    })
}

fn header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Writes the archive to `to` (which must not exist): into a file created with mode
/// 0600 next to it, synced, then renamed, so `to` never holds a partial backup and
/// is never readable by others. Fills in `manifest.files`; returns the bytes written.
pub fn write(to: &Path, manifest: &mut Manifest, payloads: &[Payload]) -> Result<u64, BackupError> {
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if to.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: backups are never overwritten, choose a new name",
            to.display()
        )));
    }
    manifest.files = payloads.iter().map(describe).collect::<Result<_, _>>()?;
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
    let seal = format!("{}\n", hex(&Sha256::digest(&manifest_bytes)));
    let context = format!("writing {}", to.display());
    // NamedTempFile creates the file with mode 0600 (O_EXCL) and removes it on error.
    let partial = tempfile::Builder::new()
        .prefix(".simutrador-backup-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io(context.clone()))?;
    let mut builder = tar::Builder::new(BufWriter::new(partial.as_file()));
    let at = DateTime::parse_from_rfc3339(&manifest.created_at)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .unwrap_or(0);
    builder
        .append_data(
            &mut header(manifest_bytes.len() as u64, at),
            MANIFEST,
            manifest_bytes.as_slice(),
        )
        .map_err(io(context.clone()))?;
    for (payload, entry) in payloads.iter().zip(&manifest.files) {
        let mut h = header(entry.size, at);
        match payload {
            Payload::File { path, .. } => {
                let file = File::open(path).map_err(io(format!("{}", path.display())))?;
                // Exactly the bytes hashed: a file that changed since would not verify.
                let mut reader = Hashing::new(BufReader::new(file).take(entry.size));
                builder
                    .append_data(&mut h, &entry.name, &mut reader)
                    .map_err(io(context.clone()))?;
                if reader.finish() != (entry.size, entry.sha256.clone()) {
                    return Err(BackupError::Io {
                        context,
                        source: std::io::Error::other(format!(
                            "{} changed while it was being archived",
                            path.display()
                        )),
                    });
                }
            }
            Payload::Bytes { data, .. } => builder
                .append_data(&mut h, &entry.name, data.as_slice())
                .map_err(io(context.clone()))?,
        }
    }
    builder
        .append_data(&mut header(seal.len() as u64, at), SEAL, seal.as_bytes())
        .map_err(io(context.clone()))?;
    let mut out = builder.into_inner().map_err(io(context.clone()))?;
    out.flush().map_err(io(context.clone()))?;
    drop(out);
    partial.as_file().sync_all().map_err(io(context.clone()))?;
    let bytes = partial
        .as_file()
        .metadata()
        .map_err(io(context.clone()))?
        .len();
    partial.persist_noclobber(to).map_err(|e| BackupError::Io {
        context: context.clone(),
        source: e.error,
    })?;
    sync_dir(dir).map_err(io(context))?;
    Ok(bytes)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A backup read and checked in full: every entry present, complete and matching its
/// checksum.
#[derive(Debug)]
pub struct Extracted {
    /// The manifest.
    pub manifest: Manifest,
    /// The database entry, written to the scratch directory given to [`read`].
    pub database: PathBuf,
    /// The generated secrets, by entry name.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

fn invalid(message: impl Into<String>) -> BackupError {
    BackupError::Invalid(message.into())
}

/// Checks the manifest's own consistency: known format, one database entry, secrets
/// entries only under `secrets/`, no name twice.
fn check_manifest(m: &Manifest) -> Result<(), BackupError> {
    if m.format != FORMAT {
        return Err(invalid(format!(
            "not a SimuTrador backup (format `{}`)",
            m.format
        )));
    }
    if m.format_version > FORMAT_VERSION {
        return Err(BackupError::Refused(format!(
            "the backup was written by a newer gateway (format {}; this one reads up to {}): restore it with that version",
            m.format_version, FORMAT_VERSION
        )));
    }
    let mut names = BTreeSet::new();
    for f in &m.files {
        if !names.insert(f.name.as_str()) || f.name == MANIFEST || f.name == SEAL {
            return Err(invalid(format!("manifest lists `{}` twice", f.name)));
        }
        if f.name.starts_with(SECRETS_DIR) && f.size > MAX_SMALL_ENTRY {
            return Err(invalid(format!("secret `{}` is too large", f.name)));
        }
    }
    if m.database.entry.starts_with(SECRETS_DIR) || !names.contains(m.database.entry.as_str()) {
        return Err(invalid("manifest does not list the database entry"));
    }
    for s in &m.secrets {
        if let SecretSource::File { entry } = &s.source {
            if !entry.starts_with(SECRETS_DIR) || !names.contains(entry.as_str()) {
                return Err(invalid(format!(
                    "manifest does not list the entry of secret `{}`",
                    s.name
                )));
            }
        }
    }
    Ok(())
}

/// Reads `from` in full, writing the database entry into `scratch` (a private
/// directory) and checking everything: the manifest, each entry's size and SHA-256,
/// that nothing is missing, extra or out of order, and the closing seal. Any problem is
/// [`BackupError::Invalid`] (or `Refused` for a newer format).
pub fn read(from: &Path, scratch: &Path) -> Result<Extracted, BackupError> {
    let file = File::open(from).map_err(io(format!("{}", from.display())))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let damaged = |e: std::io::Error| invalid(format!("damaged or truncated archive: {e}"));
    let mut entries = archive.entries().map_err(damaged)?;

    let mut first = match entries.next() {
        Some(e) => e.map_err(damaged)?,
        None => return Err(invalid("empty file: not a SimuTrador backup")),
    };
    if first.path_bytes().as_ref() != MANIFEST.as_bytes() || first.size() > MAX_SMALL_ENTRY {
        return Err(invalid("not a SimuTrador backup (no manifest first)"));
    }
    let mut manifest_bytes = Vec::new();
    first.read_to_end(&mut manifest_bytes).map_err(damaged)?;
    if manifest_bytes.len() as u64 != first.size() {
        return Err(invalid("truncated in the manifest"));
    }
    drop(first);
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("unreadable manifest: {e}")))?;
    check_manifest(&manifest)?;

    let database = scratch.join("database");
    let mut secrets = BTreeMap::new();
    let mut expected = manifest.files.iter();
    let mut sealed = false;
    for entry in entries {
        let mut entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if sealed {
            return Err(invalid(format!("unexpected entry `{name}` after the seal")));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("entry `{name}` is not a regular file")));
        }
        if name == SEAL {
            let mut seal = String::new();
            (&mut entry)
                .take(256)
                .read_to_string(&mut seal)
                .map_err(|_| invalid("damaged seal"))?;
            if seal.trim() != hex(&Sha256::digest(&manifest_bytes)) {
                return Err(invalid(
                    "the manifest does not match its checksum (damaged file)",
                ));
            }
            sealed = true;
            continue;
        }
        let Some(want) = expected.next() else {
            return Err(invalid(format!("entry `{name}` is not in the manifest")));
        };
        if want.name != name {
            return Err(invalid(format!(
                "entry `{name}` where the manifest has `{}`",
                want.name
            )));
        }
        if entry.size() != want.size {
            return Err(invalid(format!(
                "`{name}` is {} bytes in the archive but {} in the manifest",
                entry.size(),
                want.size
            )));
        }
        let mut reader = Hashing::new(&mut entry);
        if name == manifest.database.entry {
            let out = File::create(&database).map_err(io(format!("{}", database.display())))?;
            let mut out = BufWriter::new(out);
            std::io::copy(&mut reader, &mut out).map_err(damaged)?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(io(format!("{}", database.display())))?;
        } else {
            let mut data = Vec::new();
            (&mut reader)
                .take(MAX_SMALL_ENTRY)
                .read_to_end(&mut data)
                .map_err(damaged)?;
            secrets.insert(name.clone(), data);
        }
        let (size, sha256) = reader.finish();
        if size != want.size {
            return Err(invalid(format!(
                "truncated: `{name}` has {size} of its {} bytes",
                want.size
            )));
        }
        if sha256 != want.sha256 {
            return Err(invalid(format!(
                "`{name}` does not match its checksum (damaged file)"
            )));
        }
    }
    if let Some(missing) = expected.next() {
        return Err(invalid(format!(
            "truncated: `{}` and what follows are missing",
            missing.name
        )));
    }
    if !sealed {
        return Err(invalid("truncated: the closing checksum is missing"));
    }
    Ok(Extracted {
        manifest,
        database,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            created_at: "2024-05-06T07:08:09Z".into(),
            node: "n1".into(),
            gateway_version: "0.1.0".into(),
            database: DatabaseInfo {
                kind: DatabaseKind::Sqlite,
                schema_version: 4,
                entry: "database/simutrador.db".into(),
                format: "sqlite3".into(),
                tool: None,
            },
            secrets: vec![
                SecretRecord {
                    name: "api_key_pepper".into(),
                    source: SecretSource::File {
                        entry: "secrets/api_key_pepper".into(),
                    },
                },
                SecretRecord {
                    name: "jwt_secret".into(),
                    source: SecretSource::Configuration {
                        setting: "jwt.secret".into(),
                        fingerprint: fingerprint(b"x"),
                    },
                },
            ],
            files: Vec::new(),
        }
    }

    /// A written archive of a 300 KB "database" and one secret; (dir, archive path).
    fn written() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let db: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let db_path = dir.path().join("db");
        std::fs::write(&db_path, &db).unwrap();
        let to = dir.path().join("b.tar");
        let payloads = [
            Payload::File {
                name: "database/simutrador.db".into(),
                path: db_path,
            },
            Payload::Bytes {
                name: "secrets/api_key_pepper".into(),
                data: b"abcd".to_vec(),
            },
        ];
        let mut m = manifest();
        write(&to, &mut m, &payloads).unwrap();
        (dir, to, db)
    }

    fn read_in(dir: &Path, path: &Path) -> Result<Extracted, BackupError> {
        let scratch = tempfile::tempdir_in(dir).unwrap();
        let r = read(path, scratch.path());
        if let Ok(e) = &r {
            // Keep the scratch copy readable for the caller.
            let kept = dir.join("extracted-db");
            std::fs::copy(&e.database, &kept).unwrap();
            return Ok(Extracted {
                database: kept,
                manifest: e.manifest.clone(),
                secrets: e.secrets.clone(),
            });
        }
        r
    }

    #[test]
    fn round_trip_owner_only_and_never_overwritten() {
        let (dir, to, db) = written();
        assert_eq!(
            std::fs::metadata(&to).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = read_in(dir.path(), &to).unwrap();
        assert_eq!(std::fs::read(&e.database).unwrap(), db);
        assert_eq!(e.secrets["secrets/api_key_pepper"], b"abcd");
        assert_eq!(e.manifest.files.len(), 2);
        assert_eq!(e.manifest.secrets, manifest().secrets);
        let mut m = manifest();
        let again = write(&to, &mut m, &[]);
        assert!(matches!(again, Err(BackupError::Refused(_))), "{again:?}");
        // No partial files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    }

    #[test]
    fn truncation_anywhere_is_refused() {
        let (dir, to, _) = written();
        let full = std::fs::read(&to).unwrap();
        let cut = dir.path().join("cut.tar");
        // Block boundaries around the manifest and at the end (the secret and the
        // seal), and places inside blocks. Only tar's two closing zero blocks carry
        // nothing: without them every entry is still complete and checked.
        let data_end = full.len() - 1024;
        let mut lengths: Vec<usize> = (0..4096).step_by(512).collect();
        lengths.extend((data_end - 4096..data_end).step_by(512));
        lengths.extend([1, 100, 700, full.len() / 2 + 3, data_end - 1]);
        for len in lengths {
            std::fs::write(&cut, &full[..len]).unwrap();
            let r = read_in(dir.path(), &cut);
            assert!(
                matches!(r, Err(BackupError::Invalid(_))),
                "cut at {len} of {}: {r:?}",
                full.len()
            );
        }
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let (dir, to, _) = written();
        let full = std::fs::read(&to).unwrap();
        let bad = dir.path().join("bad.tar");
        // Bytes in the manifest, the database, the secret and the seal. (Tar's zero
        // padding and end blocks carry no data, so changes there do not matter.)
        let text = String::from_utf8_lossy(&full).into_owned();
        let manifest_at = text.find("\"node\"").unwrap();
        let seal_header = full.len() - 1024 - 1024;
        let seal_at = seal_header + 512 + 10;
        for at in [manifest_at + 2, 1536 + 4096, 1536 + 200_000, seal_at] {
            let mut copy = full.clone();
            copy[at] ^= 0x20;
            std::fs::write(&bad, &copy).unwrap();
            let r = read_in(dir.path(), &bad);
            assert!(matches!(r, Err(BackupError::Invalid(_))), "at {at}: {r:?}");
        }
    }

    #[test]
    fn other_files_are_not_backups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        for content in [&b""[..], b"hello", &[0u8; 4096]] {
            std::fs::write(&p, content).unwrap();
            assert!(matches!(
                read_in(dir.path(), &p),
                Err(BackupError::Invalid(_))
            ));
        }
    }
}
