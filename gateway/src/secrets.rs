//! Secrets the embedded default generates on first start and keeps under the data
//! directory, readable by the owner only.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads the secret stored at `path`, or creates it with `bytes` random bytes (hex) and
/// mode 0600.
pub fn load_or_create(path: &Path, bytes: usize) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("{} is empty", path.display()),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(hex.as_bytes())?;
    file.sync_all()?;
    Ok(hex)
}

/// A secret setting's value, or when the setting is empty, the secret generated under
/// `data_dir` in the file `name` (created on first use, 32 random bytes as hex).
pub fn configured_or_generated(
    configured: &auth::Secret<String>,
    data_dir: &Path,
    name: &str,
) -> std::io::Result<String> {
    if configured.expose().is_empty() {
        load_or_create(&data_dir.join(name), 32)
    } else {
        Ok(configured.expose().clone())
    }
}

/// Bytes from hex digits, or `None` for anything else.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// `accounts.encryption_keys` (`id:hexkey,...`) as (id, key) pairs; the error says
/// what is wrong.
pub fn parse_encryption_keys(value: &str) -> Result<Vec<(String, Vec<u8>)>, &'static str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (id, hex) = entry.split_once(':').ok_or("entries are id:hexkey")?;
            let key = decode_hex(hex).ok_or("keys are 64 hex digits")?;
            Ok((id.to_string(), key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_secret");
        let a = load_or_create(&path, 32).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(&path, 32).unwrap(), a);
        assert_ne!(load_or_create(&dir.path().join("other"), 32).unwrap(), a);
        std::fs::write(&path, "").unwrap();
        assert!(load_or_create(&path, 32).is_err());
    }
}
