//! The cached access token (`auth login`): `token.json` in the config directory,
//! readable by its owner only (0600), tied to the server URL it was issued by.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simutrador_client::protocol::Plan;
use simutrador_client::{now_unix, Client, Connection, Token};

use crate::error::CliError;
use crate::settings::Settings;

/// A cached token is reused while it stays valid for longer than this (the official
/// SDK's margin).
pub const FRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The file's contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedToken {
    /// Server the token is for.
    pub url: String,
    /// The JWT.
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Token owner.
    pub user_id: String,
    /// Owner's plan.
    pub plan: Plan,
}

impl CachedToken {
    /// The SDK token.
    pub fn token(&self) -> Token {
        Token::new(
            self.access_token.clone(),
            self.expires_at,
            self.user_id.clone(),
            self.plan,
        )
    }
}

/// The cache file of `settings`.
pub fn path(settings: &Settings) -> PathBuf {
    settings.config_dir.join("token.json")
}

/// The cached token, if the file exists and is readable.
pub fn load(path: &Path) -> Result<Option<CachedToken>, CliError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(format!("reading {}", path.display()))(e)),
    }
}

/// Writes the token with mode 0600 (via a fresh temporary file and a rename, so the
/// token is never readable by others, even briefly, and a crash leaves no half file).
pub fn save(path: &Path, url: &str, token: &Token) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(CliError::io(format!("creating {}", dir.display())))?;
        }
    }
    let cached = CachedToken {
        url: url.to_string(),
        access_token: token.access_token().to_string(),
        expires_at: token.expires_at,
        user_id: token.user_id.clone(),
        plan: token.plan,
    };
    let text = serde_json::to_vec_pretty(&cached).map_err(|e| CliError::Config(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask could only have removed bits; make the mode exact anyway.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(CliError::io(format!("writing {}", path.display())))
}

/// Deletes the cache; true if there was one.
pub fn remove(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::io(format!("deleting {}", path.display()))(e)),
    }
}

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The cache file.
    Cache,
    /// A fresh exchange of the API key.
    ApiKey,
}

/// A token for `settings.url`: the cached one while it is fresh, else a new one from
/// the API key (which refreshes the cache when the user is logged in).
pub async fn token(settings: &Settings, client: &Client) -> Result<(Token, Origin), CliError> {
    let file = path(settings);
    let cached = load(&file)?;
    if let Some(c) = &cached {
        let t = c.token();
        if c.url == settings.url && t.is_fresh(now_unix(), FRESH_MARGIN) {
            return Ok((t, Origin::Cache));
        }
    }
    let token = fresh(settings, client).await?;
    if cached.is_some() {
        save(&file, &settings.url, &token)?;
    }
    Ok((token, Origin::ApiKey))
}

/// A new token from the API key.
pub async fn fresh(settings: &Settings, client: &Client) -> Result<Token, CliError> {
    let (key, _) = settings
        .api_key
        .as_ref()
        .ok_or_else(|| CliError::NoApiKey(settings.config_file().display().to_string()))?;
    Ok(client.authenticate(key).await?)
}

/// A connection with the cached or a fresh token; a cached token the server refuses
/// (e.g. after a secret rotation) is replaced once from the API key.
pub async fn connect(settings: &Settings, client: &Client) -> Result<Connection, CliError> {
    let (token, origin) = token(settings, client).await?;
    match client.connect(&token).await {
        Err(simutrador_client::Error::AuthFailed(_))
            if origin == Origin::Cache && settings.api_key.is_some() =>
        {
            let token = fresh(settings, client).await?;
            save(&path(settings), &settings.url, &token)?;
            Ok(client.connect(&token).await?)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_tokens_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/token.json");
        let token = Token::new("a.b.c", 123, "u1", Plan::Professional);
        save(&file, "http://x:1", &token).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        // Overwriting an existing, too-open file still leaves it 0600.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        save(&file, "http://x:1", &token).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = load(&file).unwrap().unwrap();
        assert_eq!(back.token(), token);
        assert_eq!(back.url, "http://x:1");
        assert!(remove(&file).unwrap());
        assert!(!remove(&file).unwrap());
        assert!(load(&file).unwrap().is_none());
    }
}
