//! Email normalisation: the one place that decides when two emails are the same.

use crate::error::AuthError;

/// Longest accepted address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Trims and lowercases `raw`, and refuses values that cannot be an address.
///
/// Deliberately permissive beyond that (quotes, apostrophes, `+` tags all pass):
/// whether a mailbox exists is proved by sending mail, not by a regex.
pub fn normalise_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let invalid = |reason| AuthError::InvalidInput {
        field: "email",
        reason,
    };
    if email.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(invalid("is too long"));
    }
    if email.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(invalid("must look like name@domain")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            normalise_email("  Alice.Smith+Test@Example.COM \t\n").unwrap(),
            "alice.smith+test@example.com"
        );
        assert_eq!(
            normalise_email("ÉLODIE@exemple.fr").unwrap(),
            "élodie@exemple.fr"
        );
    }

    #[test]
    fn refuses_non_addresses() {
        for bad in ["", "   ", "alice", "@example.com", "alice@", "a\u{0}b@c.d"] {
            assert!(
                matches!(
                    normalise_email(bad),
                    Err(AuthError::InvalidInput { field: "email", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(normalise_email(&format!("{}@x.io", "a".repeat(260))).is_err());
    }
}
