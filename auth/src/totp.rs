//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits,
//! the way every authenticator app reads an `otpauth://` URI.
//!
//! A code is accepted for the step it was made in and one step either side, so a
//! phone clock a little off still works; the caller keeps the last accepted step so a
//! code cannot be used twice (see [`verify`]).

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::AuthError;
use crate::secret::Secret;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub const WINDOW: i64 = 1;
/// Secret length in bytes (160 bits, RFC 4226's recommendation for SHA-1).
pub const SECRET_LEN: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh random secret.
pub fn generate_secret() -> Result<Secret<Vec<u8>>, AuthError> {
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(AuthError::Random)?;
    Ok(Secret::new(secret))
}

/// The step containing `unix_seconds`.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The HOTP value (RFC 4226) of `secret` at `counter`, with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    let modulus = 10u64.pow(digits);
    format!(
        "{:0width$}",
        u64::from(binary) % modulus,
        width = digits as usize
    )
}

/// The 6-digit code of `secret` at `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    // Steps before 1970 do not occur; clamp rather than wrap.
    let step = u64::try_from(step_at(unix_seconds)).unwrap_or(0);
    hotp(secret, step, DIGITS)
}

/// Checks `code` at `unix_seconds` and returns the step it matched.
///
/// Steps at or before `last_used_step` are not accepted, so a code (or an older one)
/// cannot be replayed. Spaces in the code are ignored; anything but 6 digits fails.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_seconds: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    let mut matched = None;
    // Every candidate is computed and compared, so timing does not tell which matched.
    for step in (now - WINDOW)..=(now + WINDOW) {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let fresh = last_used_step.is_none_or(|last| step > last);
        if constant_time_eq(hotp(secret, counter, DIGITS).as_bytes(), code.as_bytes())
            && fresh
            && matched.is_none()
        {
            matched = Some(step);
        }
    }
    matched
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32, ignoring case, spaces and `=` padding; `None` for other characters.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let c = c.to_ascii_uppercase();
        let value = BASE32.iter().position(|&b| char::from(b) == c)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://totp/...` URI an authenticator app scans, for `account` (usually
/// the email) at `issuer` (the service name).
pub fn provisioning_uri(issuer: &str, account: &str, secret: &[u8]) -> Secret<String> {
    let issuer = percent_encode(issuer);
    Secret::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        account = percent_encode(account),
        secret = base32_encode(secret),
    ))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = u64::try_from(step_at(time)).unwrap();
            assert_eq!(hotp(RFC_SECRET, step, 8), expected, "t={time}");
            // The 6-digit code is the same value modulo 10^6.
            assert_eq!(code_at(RFC_SECRET, time), expected[2..], "t={time}");
        }
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *code);
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_no_further() {
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, t);
        let step = step_at(t);
        assert_eq!(verify(RFC_SECRET, &code, t, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t + 30, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t - 30, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t + 60, None), None);
        assert_eq!(verify(RFC_SECRET, &code, t - 60, None), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(RFC_SECRET, &spaced, t, None), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "89005924"] {
            assert_eq!(verify(RFC_SECRET, bad, t, None), None, "{bad}");
        }
        assert_eq!(verify(b"another secret", &code, t, None), None);
    }

    #[test]
    fn used_steps_cannot_be_replayed() {
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, t);
        let step = verify(RFC_SECRET, &code, t, None).unwrap();
        assert_eq!(verify(RFC_SECRET, &code, t, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &code, t + 30, Some(step)), None);
        // The next step's code is still good.
        let next = code_at(RFC_SECRET, t + 30);
        assert_eq!(
            verify(RFC_SECRET, &next, t + 30, Some(step)),
            Some(step + 1)
        );
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), raw.as_bytes());
        }
        assert_eq!(
            base32_encode(RFC_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(),
            RFC_SECRET
        );
        assert_eq!(base32_decode("MZXW6==="), Some(b"foo".to_vec()));
        assert_eq!(base32_decode("MZXW1"), None);
        let secret = generate_secret().unwrap();
        assert_eq!(secret.expose().len(), SECRET_LEN);
        assert_eq!(
            base32_decode(&base32_encode(secret.expose())).unwrap(),
            *secret.expose()
        );
    }

    #[test]
    fn provisioning_uri_is_escaped() {
        let uri = provisioning_uri("Simu Trador", "ann+x@example.com", RFC_SECRET);
        assert_eq!(
            uri.expose(),
            "otpauth://totp/Simu%20Trador:ann%2Bx%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Simu%20Trador\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{uri:?}"), "[redacted]");
    }
}
