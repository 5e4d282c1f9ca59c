//! Secrets the server must read back in clear (TOTP seeds) are kept sealed with
//! AES-256-GCM under a named key.
//!
//! A [`Keyring`] holds every key still needed to open old rows and names the one new
//! rows are sealed with; each [`Sealed`] value records its key id, so rotating means
//! adding a key, making it current, re-sealing at leisure and finally dropping the
//! old one. Associated data binds a ciphertext to its row (for TOTP, the user id), so
//! copying one user's sealed secret onto another does not open.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::AuthError;
use crate::secret::Secret;

/// Key length in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (GCM's standard 96 bits).
pub const NONCE_LEN: usize = 12;
/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A value sealed by [`Keyring::seal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed it.
    pub key_id: String,
    /// Random per value.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Keys by id, and the id new values are sealed with.
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring sealing with `current`, which must be one of `keys`. Key ids are 1 to
    /// 64 characters of `[A-Za-z0-9._-]`; keys are exactly 32 bytes.
    pub fn new(
        current: impl Into<String>,
        keys: impl IntoIterator<Item = (String, Secret<Vec<u8>>)>,
    ) -> Result<Self, AuthError> {
        let current = current.into();
        let mut ciphers = BTreeMap::new();
        for (id, key) in keys {
            if !valid_key_id(&id) {
                return Err(AuthError::Config(
                    "encryption key ids must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                ));
            }
            if key.expose().len() != KEY_LEN {
                return Err(AuthError::Config(
                    "encryption keys must be exactly 32 bytes",
                ));
            }
            let cipher = Aes256Gcm::new_from_slice(key.expose())
                .map_err(|_| AuthError::Config("encryption key is unusable"))?;
            if ciphers.insert(id, cipher).is_some() {
                return Err(AuthError::Config("encryption key ids must be unique"));
            }
        }
        if !ciphers.contains_key(&current) {
            return Err(AuthError::Config(
                "the current encryption key id names no configured key",
            ));
        }
        Ok(Self {
            current,
            keys: ciphers,
        })
    }

    /// The id new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Whether a value sealed under `key_id` should be re-sealed under the current key.
    pub fn is_stale(&self, key_id: &str) -> bool {
        key_id != self.current
    }

    /// Encrypts `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Sealed, AuthError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or(AuthError::Crypto("current key missing"))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(AuthError::Random)?;
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| AuthError::Crypto("encryption failed"))?;
        Ok(Sealed {
            key_id: self.current.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts `sealed` with the key it names. Fails for an unknown key id, a
    /// malformed nonce, or any change to the ciphertext, key or associated data.
    pub fn open(
        &self,
        sealed: &Sealed,
        associated_data: &[u8],
    ) -> Result<Secret<Vec<u8>>, AuthError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or(AuthError::Crypto("unknown key id"))?;
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::Crypto("malformed nonce"))?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: associated_data,
                },
            )
            .map(Secret::new)
            .map_err(|_| AuthError::Crypto("decryption failed"))
    }

    /// Opens `sealed` and seals it again under the current key (for key rotation).
    pub fn reseal(&self, sealed: &Sealed, associated_data: &[u8]) -> Result<Sealed, AuthError> {
        let plain = self.open(sealed, associated_data)?;
        self.seal(plain.expose(), associated_data)
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret<Vec<u8>> {
        Secret::new(vec![byte; KEY_LEN])
    }

    fn ring(current: &str, ids: &[(&str, u8)]) -> Keyring {
        Keyring::new(current, ids.iter().map(|(id, b)| (id.to_string(), key(*b)))).unwrap()
    }

    #[test]
    fn seals_and_opens_with_random_nonces() {
        let ring = ring("k1", &[("k1", 1)]);
        let a = ring.seal(b"totp seed", b"user-1").unwrap();
        let b = ring.seal(b"totp seed", b"user-1").unwrap();
        assert_eq!(a.key_id, "k1");
        assert_eq!(a.nonce.len(), NONCE_LEN);
        assert_eq!(a.ciphertext.len(), b"totp seed".len() + 16);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(ring.open(&a, b"user-1").unwrap().expose(), b"totp seed");
        assert_eq!(ring.open(&b, b"user-1").unwrap().expose(), b"totp seed");
    }

    #[test]
    fn tampering_wrong_context_or_wrong_key_fails() {
        let ring1 = ring("k1", &[("k1", 1)]);
        let sealed = ring1.seal(b"secret", b"user-1").unwrap();
        assert!(ring1.open(&sealed, b"user-2").is_err());
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(ring1.open(&flipped, b"user-1").is_err());
        let mut short_nonce = sealed.clone();
        short_nonce.nonce.pop();
        assert!(ring1.open(&short_nonce, b"user-1").is_err());
        // Same id, other key material.
        let impostor = ring("k1", &[("k1", 2)]);
        assert!(impostor.open(&sealed, b"user-1").is_err());
        let other = ring("k2", &[("k2", 1)]);
        assert!(matches!(
            other.open(&sealed, b"user-1"),
            Err(AuthError::Crypto("unknown key id"))
        ));
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_under_the_new_key() {
        let old = ring("2024", &[("2024", 1)]);
        let sealed = old.seal(b"seed", b"ctx").unwrap();
        let rotated = ring("2025", &[("2024", 1), ("2025", 9)]);
        assert_eq!(rotated.current_key_id(), "2025");
        assert!(rotated.is_stale(&sealed.key_id));
        assert_eq!(rotated.open(&sealed, b"ctx").unwrap().expose(), b"seed");
        let resealed = rotated.reseal(&sealed, b"ctx").unwrap();
        assert_eq!(resealed.key_id, "2025");
        assert!(!rotated.is_stale(&resealed.key_id));
        let new_only = ring("2025", &[("2025", 9)]);
        assert_eq!(new_only.open(&resealed, b"ctx").unwrap().expose(), b"seed");
        assert!(new_only.open(&sealed, b"ctx").is_err());
    }

    #[test]
    fn bad_configuration_is_refused_and_debug_hides_keys() {
        let bad = |current: &str, keys: Vec<(String, Secret<Vec<u8>>)>| {
            matches!(Keyring::new(current, keys), Err(AuthError::Config(_)))
        };
        assert!(bad("k", vec![("k".into(), Secret::new(vec![0; 31]))]));
        assert!(bad("missing", vec![("k".into(), key(1))]));
        assert!(bad("", vec![("".into(), key(1))]));
        assert!(bad("a b", vec![("a b".into(), key(1))]));
        assert!(bad("k", vec![("k".into(), key(1)), ("k".into(), key(2))]));
        let ring = ring("k1", &[("k1", 0xAB)]);
        let debug = format!("{ring:?}");
        assert!(debug.contains("k1"));
        assert!(!debug.contains("171") && !debug.to_lowercase().contains("ab, "));
    }
}
