//! Opaque one-use and rotating tokens: refresh tokens, email-verification tokens and
//! TOTP recovery codes.
//!
//! Like API keys they are random, shown once, and stored only as an HMAC-SHA256 under
//! the server's pepper (see [`crate::api_key`]): their entropy makes a slow hash
//! pointless, and the pepper means a copy of the tables alone cannot check guesses,
//! which matters for the shorter recovery codes.

use crate::api_key::random_base62;
use crate::error::AuthError;
use crate::secret::Secret;

/// Refresh tokens read `srt_<43 base62>` (about 256 bits).
pub const REFRESH_PREFIX: &str = "srt_";
/// Email-verification tokens read `sev_<43 base62>`.
pub const VERIFICATION_PREFIX: &str = "sev_";
/// Password tokens (a reset, or an invitation) read `spw_<43 base62>`.
pub const PASSWORD_PREFIX: &str = "spw_";
/// Random characters after the prefix.
pub const TOKEN_SECRET_LEN: usize = 43;
/// Characters in a recovery code (shown as two groups of five).
pub const RECOVERY_CODE_LEN: usize = 10;

// Lowercase base32: no 0/1/8/9, so no O/0 or l/1 confusion when typed from paper.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new token `<prefix><43 random base62 characters>`.
pub fn generate(prefix: &str) -> Result<Secret<String>, AuthError> {
    Ok(Secret::new(format!(
        "{prefix}{}",
        random_base62(TOKEN_SECRET_LEN)?
    )))
}

/// Whether `presented` has the shape of a token with `prefix`; others are refused
/// without a lookup.
pub fn well_formed(presented: &str, prefix: &str) -> bool {
    presented.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == TOKEN_SECRET_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A new recovery code, `xxxxx-xxxxx` (50 bits).
pub fn generate_recovery_code() -> Result<Secret<String>, AuthError> {
    let mut bytes = [0u8; RECOVERY_CODE_LEN];
    getrandom::fill(&mut bytes).map_err(AuthError::Random)?;
    // 256 is a multiple of 32: masking keeps the distribution uniform.
    let chars: String = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(Secret::new(format!("{}-{}", &chars[..5], &chars[5..])))
}

/// The canonical form of a typed recovery code (lowercase, without dashes and
/// spaces), or `None` if it cannot be one.
pub fn normalise_recovery_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid =
        code.len() == RECOVERY_CODE_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tokens_have_their_prefix_and_do_not_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let token = generate(REFRESH_PREFIX).unwrap().into_inner();
            assert!(well_formed(&token, REFRESH_PREFIX), "{token}");
            assert!(!well_formed(&token, VERIFICATION_PREFIX));
            assert!(seen.insert(token));
        }
        let good = generate(VERIFICATION_PREFIX).unwrap().into_inner();
        for bad in [
            String::new(),
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            good.replace("sev_", "sev-"),
            format!("sev_{}'", "a".repeat(42)),
        ] {
            assert!(!well_formed(&bad, VERIFICATION_PREFIX), "{bad}");
        }
    }

    #[test]
    fn recovery_codes_normalise_as_typed() {
        let code = generate_recovery_code().unwrap().into_inner();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        let canonical = normalise_recovery_code(&code).unwrap();
        assert_eq!(canonical, code.replace('-', ""));
        assert_eq!(
            normalise_recovery_code(&format!(" {} ", code.to_uppercase().replace('-', " "))),
            Some(canonical)
        );
        for bad in [
            "",
            "abcde-fghi",
            "abcde-fghij-k",
            "abcde-fgh1j",
            "abcde-fghi'",
        ] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad}");
        }
    }
}
