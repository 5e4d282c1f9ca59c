//! API-key format, generation and hashing.
//!
//! A key reads `stk_<prefix>_<secret>`: the 8-character prefix is public, unique and
//! indexed, so a presented key is found with one lookup; the 40-character secret
//! (about 238 bits) comes from the operating system's RNG. Only an HMAC-SHA256 of
//! the whole key under a server-side pepper is stored. A slow password hash would buy
//! nothing here because the secret is already random, and it would make 10,000 token
//! exchanges per second cost whole CPU cores; the pepper means a stolen table alone
//! cannot even be used to check guesses.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{AuthError, KeyRejection};
use crate::secret::Secret;

/// Every key starts with this, so leaked keys are easy to recognise (and to scan for).
pub const KEY_PREFIX: &str = "stk_";
/// Length of the public, indexed part.
pub const PREFIX_LEN: usize = 8;
/// Length of the secret part.
pub const SECRET_LEN: usize = 40;
/// Length of a whole key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + PREFIX_LEN + 1 + SECRET_LEN;
/// The smallest pepper accepted: as long as the HMAC-SHA256 output.
pub const MIN_PEPPER_LEN: usize = 32;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key, before it is stored.
pub(crate) struct GeneratedKey {
    /// The public part, without `stk_`.
    pub prefix: String,
    /// The whole key.
    pub full: Secret<String>,
}

/// Makes a new random key.
pub(crate) fn generate() -> Result<GeneratedKey, AuthError> {
    let prefix = random_base62(PREFIX_LEN)?;
    let secret = random_base62(SECRET_LEN)?;
    let full = format!("{KEY_PREFIX}{prefix}_{secret}");
    Ok(GeneratedKey {
        prefix,
        full: Secret::new(full),
    })
}

/// Splits a presented key and returns its prefix, or why it cannot be a key of ours.
pub(crate) fn parse_prefix(presented: &str) -> Result<&str, KeyRejection> {
    let rest = presented
        .strip_prefix(KEY_PREFIX)
        .ok_or(KeyRejection::Malformed)?;
    if presented.len() != KEY_LEN {
        return Err(KeyRejection::Malformed);
    }
    let (prefix, rest) = rest
        .split_at_checked(PREFIX_LEN)
        .ok_or(KeyRejection::Malformed)?;
    let secret = rest.strip_prefix('_').ok_or(KeyRejection::Malformed)?;
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if secret.len() != SECRET_LEN || !base62(prefix) || !base62(secret) {
        return Err(KeyRejection::Malformed);
    }
    Ok(prefix)
}

/// Uniform base62 characters from the OS RNG (rejection sampling, so no modulo bias).
pub(crate) fn random_base62(len: usize) -> Result<String, AuthError> {
    // 248 = 4 * 62: bytes at or above it are discarded.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(AuthError::Random)?;
        for &byte in buf.iter().filter(|&&b| b < LIMIT) {
            if out.len() == len {
                break;
            }
            out.push(char::from(BASE62[usize::from(byte % 62)]));
        }
    }
    Ok(out)
}

/// Computes and checks the stored form of keys: HMAC-SHA256 under the pepper.
#[derive(Clone)]
pub(crate) struct ApiKeyHasher {
    // Keyed once; cloning the keyed state is cheaper than re-keying per request.
    mac: Hmac<Sha256>,
}

impl ApiKeyHasher {
    /// A hasher keyed with `pepper`, which must be at least [`MIN_PEPPER_LEN`] bytes.
    pub(crate) fn new(pepper: &Secret<Vec<u8>>) -> Result<Self, AuthError> {
        if pepper.expose().len() < MIN_PEPPER_LEN {
            return Err(AuthError::Config(
                "api key pepper must be at least 32 bytes",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(pepper.expose())
            .map_err(|_| AuthError::Config("api key pepper is unusable"))?;
        Ok(Self { mac })
    }

    /// The value to store for `full_key`.
    pub(crate) fn hash(&self, full_key: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(full_key.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `full_key` matches `stored`, compared in constant time.
    pub(crate) fn verify(&self, full_key: &str, stored: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(full_key.as_bytes());
        mac.verify_slice(stored).is_ok()
    }
}

impl std::fmt::Debug for ApiKeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyHasher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn hasher(pepper: &[u8]) -> ApiKeyHasher {
        ApiKeyHasher::new(&Secret::new(pepper.to_vec())).unwrap()
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate().unwrap();
        let full = key.full.expose();
        assert_eq!(full.len(), KEY_LEN);
        assert!(full.starts_with("stk_"));
        assert_eq!(&full[4..12], key.prefix);
        assert_eq!(&full[12..13], "_");
        assert!(full[13..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(parse_prefix(full), Ok(key.prefix.as_str()));
    }

    #[test]
    fn generated_keys_do_not_repeat_and_use_the_whole_alphabet() {
        let mut seen = HashSet::new();
        let mut chars = HashSet::new();
        for _ in 0..2000 {
            let key = generate().unwrap();
            chars.extend(key.full.expose()[13..].bytes());
            assert!(seen.insert(key.full.into_inner()));
        }
        assert_eq!(chars.len(), 62);
    }

    #[test]
    fn parse_rejects_anything_else() {
        let good = format!("stk_{}_{}", "A".repeat(8), "b".repeat(40));
        assert!(parse_prefix(&good).is_ok());
        for bad in [
            String::new(),
            "stk_".into(),
            good.replace("stk_", "sk__"),
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            good.replacen('_', "-", 2),
            format!("stk_{}_{}", "A".repeat(7), "b".repeat(41)),
            format!("stk_{}-{}", "A".repeat(8), "b".repeat(40)),
            format!(
                "stk_{}_{}",
                "A'--;OR1".chars().collect::<String>(),
                "b".repeat(40)
            ),
            format!("stk_{}_{}é", "A".repeat(8), "b".repeat(38)),
        ] {
            assert_eq!(parse_prefix(&bad), Err(KeyRejection::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn hash_verifies_only_the_same_key_under_the_same_pepper() {
        let a = hasher(&[1; 32]);
        let b = hasher(&[2; 32]);
        let key = generate().unwrap();
        let other = generate().unwrap();
        let stored = a.hash(key.full.expose());
        assert_eq!(stored.len(), 32);
        assert!(a.verify(key.full.expose(), &stored));
        assert!(!a.verify(other.full.expose(), &stored));
        assert!(!b.verify(key.full.expose(), &stored));
        assert!(!a.verify(key.full.expose(), &stored[..31]));
    }

    #[test]
    fn short_pepper_is_refused_and_debug_redacts() {
        assert!(matches!(
            ApiKeyHasher::new(&Secret::new(vec![0; 31])),
            Err(AuthError::Config(_))
        ));
        assert_eq!(
            format!("{:?}", hasher(&[7; 32])),
            "ApiKeyHasher([redacted])"
        );
    }
}
