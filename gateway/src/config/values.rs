//! Setting values with a type of their own, parsed once when the configuration loads:
//! a bad value is refused at start with the key it was given under, never later.

use std::fmt;
use std::net::IpAddr;

use auth::Secret;
use serde::{Deserialize, Deserializer};

/// An IP address or a CIDR block (`10.0.0.0/8`, `::1/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// A comma-separated list of addresses and blocks (`rate_limits.trusted_proxies`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressList(Vec<IpNet>);

impl std::ops::Deref for AddressList {
    type Target = [IpNet];
    fn deref(&self) -> &[IpNet] {
        &self.0
    }
}

impl std::str::FromStr for AddressList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(AddressList)
    }
}

/// Deserialises a value from its text with `FromStr`, the error naming what is wrong.
fn from_text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// A value read from its text, or `None` when the text is not one (for settings that
/// are checked only when another one makes them matter).
pub(super) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
{
    Ok(String::deserialize(d)?.parse().ok())
}

impl<'de> Deserialize<'de> for AddressList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `log.format`: `text`, `json`, or empty for the mode's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogFormatSetting(pub Option<LogFormat>);

impl std::str::FromStr for LogFormatSetting {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Ok(Self(None)),
            "text" => Ok(Self(Some(LogFormat::Text))),
            "json" => Ok(Self(Some(LogFormat::Json))),
            _ => Err("must be `text` or `json`"),
        }
    }
}

impl<'de> Deserialize<'de> for LogFormatSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

/// How the connection to the mail server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text.
    None,
    /// `STARTTLS` after connecting; the mail is not sent without it.
    Starttls,
    /// TLS from the start (implicit TLS, usually port 465).
    Tls,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpSecurity::None),
            "starttls" => Ok(SmtpSecurity::Starttls),
            "tls" => Ok(SmtpSecurity::Tls),
            _ => Err("must be `none`, `starttls` or `tls`"),
        }
    }
}

impl<'de> Deserialize<'de> for SmtpSecurity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

/// `accounts.encryption_keys`: `id:hexkey,...` (32-byte keys, 64 hex digits), parsed
/// at load. `Debug` shows the key ids only.
#[derive(Clone, Default)]
pub struct EncryptionKeys {
    text: Secret<String>,
    keys: Vec<(String, Secret<Vec<u8>>)>,
}

impl EncryptionKeys {
    /// (id, key) pairs in the order configured.
    pub fn keys(&self) -> &[(String, Secret<Vec<u8>>)] {
        &self.keys
    }

    /// The setting as written (backups fingerprint it).
    pub fn text(&self) -> &str {
        self.text.expose()
    }
}

impl fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

impl std::str::FromStr for EncryptionKeys {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let keys = crate::secrets::parse_encryption_keys(s)?;
        let keys: Vec<(String, Secret<Vec<u8>>)> = keys
            .into_iter()
            .map(|(id, key)| (id, Secret::new(key)))
            .collect();
        // The key ring's own checks (ids, 32-byte keys, no id twice), now rather than
        // when the server first seals a secret.
        if let Some((last, _)) = keys.last() {
            auth::Keyring::new(last.clone(), keys.clone()).map_err(|e| match e {
                auth::AuthError::Config(message) => message,
                _ => "encryption keys are unusable",
            })?;
        }
        Ok(Self {
            text: Secret::new(s.to_string()),
            keys,
        })
    }
}

impl<'de> Deserialize<'de> for EncryptionKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

/// `console.public_url`: the origin people open the console at
/// (`https://app.example.com`), or none. Only an origin: an `http` or `https` scheme, a
/// host and an optional port, without user, path, query or fragment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicUrl(Option<String>);

impl PublicUrl {
    /// The origin (`scheme://host[:port]`, no trailing slash), if one is configured.
    pub fn origin(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(None));
        }
        let url = url::Url::parse(s)
            .map_err(|e| format!("`{s}` is not a URL ({e}); e.g. https://app.example.com"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "`{s}` must be an http or https address, e.g. https://app.example.com"
            ));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(format!(
                "`{s}` must be an origin only (scheme, host and port), without user, path or query"
            ));
        }
        Ok(Self(Some(url.origin().ascii_serialization())))
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

/// The URL of a service that may carry a password (`database.url`,
/// `session_store.redis_url`); `Debug` hides the password, in the user part or in a
/// `password=` query parameter.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// The URL as configured, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the setting is empty (the service is not used).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for ServiceUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for ServiceUrl {
    fn from(url: &str) -> Self {
        Self(url.to_string())
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        // `scheme://user:password@host/...`: between the first `:` of the user part and
        // the last `@` before the path is the password.
        let mut shown = match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(end);
                match authority.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                        let hidden = if userinfo.contains(':') {
                            ":[redacted]"
                        } else {
                            ""
                        };
                        format!("{scheme}://{user}{hidden}@{host}{tail}")
                    }
                    None => url.clone(),
                }
            }
            None => url.clone(),
        };
        if let Some((base, query)) = shown.split_once('?') {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                    _ => pair.to_string(),
                })
                .collect();
            shown = format!("{base}?{}", query.join("&"));
        }
        write!(f, "{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_database_password() {
        let url = ServiceUrl::from("postgres://simutrador:s3cr3t@db:5432/simutrador");
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("simutrador:[redacted]@db:5432/simutrador"),
            "{shown}"
        );
        assert_eq!(
            url.expose(),
            "postgres://simutrador:s3cr3t@db:5432/simutrador"
        );
        // Nothing to hide without a password.
        let plain = ServiceUrl::from("sqlite://./data/simutrador.db?mode=rwc");
        assert_eq!(
            format!("{plain:?}"),
            "\"sqlite://./data/simutrador.db?mode=rwc\""
        );
    }

    #[test]
    fn encryption_keys_show_their_ids_only() {
        let hex = "ab".repeat(32);
        let keys: EncryptionKeys = format!("k1:{hex},k2:{hex}").parse().unwrap();
        assert_eq!(format!("{keys:?}"), r#"["k1", "k2"]"#);
        assert_eq!(keys.keys().len(), 2);
        assert!("k1:abcd".parse::<EncryptionKeys>().is_err());
    }

    #[test]
    fn a_public_url_is_an_origin() {
        let url: PublicUrl = " https://App.Example.com/ ".parse().unwrap();
        assert_eq!(url.origin(), Some("https://app.example.com"));
        let url: PublicUrl = "http://127.0.0.1:8003".parse().unwrap();
        assert_eq!(url.origin(), Some("http://127.0.0.1:8003"));
        assert_eq!("".parse::<PublicUrl>().unwrap().origin(), None);
        for bad in [
            "app.example.com",
            "ftp://example.com",
            "https://example.com/console",
            "https://user:pw@example.com",
            "https://example.com/?a=1",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_and_formats_parse_once() {
        let list: AddressList = " 10.0.0.0/8, ::1 ,".parse().unwrap();
        assert_eq!(list.len(), 2);
        assert!("10.0.0.0/8, nginx".parse::<AddressList>().is_err());
        assert_eq!("".parse::<LogFormatSetting>(), Ok(LogFormatSetting(None)));
        assert_eq!(
            "json".parse::<LogFormatSetting>(),
            Ok(LogFormatSetting(Some(LogFormat::Json)))
        );
        assert!("xml".parse::<LogFormatSetting>().is_err());
        assert_eq!(
            " STARTTLS ".parse::<SmtpSecurity>(),
            Ok(SmtpSecurity::Starttls)
        );
    }
}
