//! Email normalisation: the one place that decides when two emails are the same and
//! which strings are addresses at all.

use email_address::{EmailAddress, Error as Syntax, Options};

use crate::error::AuthError;

/// Longest accepted address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Trims and lowercases `raw`, and refuses values that are not a plain address.
///
/// The syntax is checked by the `email_address` crate (RFC 5322 `addr-spec`) with
/// display names (`Name <a@b.c>`) and IP-literal domains turned off and a dot required
/// in the domain. On top of the grammar, quoted local parts (`"a b"@x.io`) and domain
/// labels with anything but letters, digits and `-` are refused: they are valid on
/// paper but what a typo or an injection attempt looks like, not a real mailbox.
/// `+` tags, apostrophes and non-ASCII letters pass; whether a mailbox exists is
/// proved by sending mail, not here.
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
    let options = Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld();
    let parsed =
        EmailAddress::parse_with_options(&email, options).map_err(|e| invalid(reason(&e)))?;
    if parsed.local_part().starts_with('"') {
        return Err(invalid(
            "must not have a quoted name part (no quotes or spaces before the @)",
        ));
    }
    let domain_ok = parsed
        .domain()
        .split('.')
        .all(|label| label.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if !domain_ok {
        return Err(invalid(
            "has a domain with characters other than letters, digits, `-` and `.`",
        ));
    }
    Ok(email)
}

/// Client-facing words for a syntax error.
fn reason(e: &Syntax) -> &'static str {
    match e {
        Syntax::InvalidCharacter | Syntax::UnbalancedQuotes | Syntax::InvalidComment => {
            "contains a character not allowed in an address (such as a space, quote, comma, \
             semicolon, bracket or control character)"
        }
        Syntax::MissingSeparator => "must look like name@domain",
        Syntax::LocalPartEmpty => "must have a name before the @",
        Syntax::LocalPartTooLong => "has a name part longer than 64 characters",
        Syntax::DomainEmpty => "must have a domain after the @",
        Syntax::DomainTooLong | Syntax::SubDomainTooLong => "has a domain that is too long",
        Syntax::SubDomainEmpty | Syntax::DomainInvalidSeparator => {
            "has an empty part in its domain (two dots, or a dot at an end)"
        }
        Syntax::DomainTooFew => "must have a domain with a dot, like name@example.com",
        Syntax::UnsupportedDomainLiteral | Syntax::InvalidIPAddress => {
            "must have a domain name, not an IP address"
        }
        Syntax::UnsupportedDisplayName | Syntax::MissingDisplayName | Syntax::MissingEndBracket => {
            "must be a bare address, without a display name or angle brackets"
        }
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
    fn accepts_real_addresses() {
        for good in [
            "a@b.co",
            "alice@example.com",
            "alice.smith+tag@mail.example.co.uk",
            "o'brien@example.ie",
            "first_last-1@sub-domain.example.org",
            "user%ops@example.com",
            "x{y}|z~@example.com",
            "müller@bücher.de",
            "1234@123.example",
        ] {
            assert!(normalise_email(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn refuses_non_addresses() {
        for bad in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a\u{0}b@c.de",
            "alice smith@example.com",
            "alice@exa mple.com",
            "\"alice smith\"@example.com",
            "\"alice\"@example.com",
            "alice\"@example.com",
            "alice;drop@example.com",
            "alice@example.com;bob@example.com",
            "alice,bob@example.com",
            "alice@example.com, bob@example.com",
            "Alice <alice@example.com>",
            "<alice@example.com>",
            "alice@[127.0.0.1]",
            "alice@@example.com",
            "alice@example..com",
            "alice@.example.com",
            "alice@example.com.",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice(comment)@example.com",
            "alice@exa_mple.com",
            "alice@exa$mple.com",
            "alice@-example.com",
            "alice\\bob@example.com",
            "alice\r\n@example.com",
        ] {
            assert!(
                matches!(
                    normalise_email(bad),
                    Err(AuthError::InvalidInput { field: "email", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(normalise_email(&format!("{}@x.io", "a".repeat(260))).is_err());
        assert!(normalise_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let message = |raw: &str| normalise_email(raw).unwrap_err().to_string();
        assert!(message("a b@example.com").contains("space"));
        assert!(message("a;b@example.com").contains("semicolon"));
        assert!(message("\"a\"@example.com").contains("quoted"));
        assert!(message("a@localhost").contains("dot"));
        assert!(message("Alice <a@example.com>").contains("display name"));
    }
}
