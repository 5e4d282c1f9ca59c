//! The web console's login session in the browser: the cookies that carry it, the
//! CSRF token that guards what they authenticate, and the checks made of a request
//! that comes with them. Page scripts never see a token.
//!
//! A console login (`POST /auth/login` with `X-Auth-Mode: cookie`) and a refresh made
//! with the refresh cookie answer with three cookies instead of tokens in the body, all
//! `SameSite=Strict`:
//! - [`ACCESS_COOKIE`]: the access token, `HttpOnly`, `Path=/`;
//! - [`REFRESH_COOKIE`]: the refresh token, `HttpOnly`, `Path=/auth/refresh`, so no
//!   other request carries it;
//! - [`CSRF_COOKIE`]: the CSRF token, readable by the console's scripts, `Path=/`.
//!
//! They are `Secure` when the request came over HTTPS ([`is_https`]) or
//! `console.secure_cookies` is on. An unsafe request (POST, PUT, PATCH, DELETE)
//! authenticated by the access cookie must repeat the CSRF token in `X-CSRF-Token`,
//! and its `Origin`, when it has one, must be this server's ([`check_unsafe`]); a
//! request with a Bearer token needs neither (nothing sends that header on its own).
//! The CSRF token is an HMAC of the login session's id under a key derived from the
//! JWT secret: every node of a cluster checks it without storing anything, and the
//! token of one login session is worthless for another.

use actix_web::cookie::time::Duration as CookieAge;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, Method};
use actix_web::HttpRequest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::Settings;
use crate::errors::HttpError;

/// The access token's cookie (`HttpOnly`, `Path=/`).
pub const ACCESS_COOKIE: &str = "st_access";
/// The refresh token's cookie (`HttpOnly`, `Path=/auth/refresh`).
pub const REFRESH_COOKIE: &str = "st_refresh";
/// The CSRF token's cookie (readable by scripts, `Path=/`).
pub const CSRF_COOKIE: &str = "st_csrf";
/// The header an unsafe cookie-authenticated request repeats the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header a login sends (`X-Auth-Mode: cookie`) to be answered with cookies.
pub const MODE_HEADER: &str = "x-auth-mode";
/// The only path the refresh cookie is sent to.
pub const REFRESH_PATH: &str = "/auth/refresh";

/// The key CSRF tokens are derived with. `Debug` shows nothing of it.
pub struct CsrfKey(auth::Secret<Vec<u8>>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl CsrfKey {
    /// The key of a cluster whose nodes share `jwt_secret` (so any node checks a
    /// token another issued), kept apart from the token signatures by its label.
    pub fn derive(jwt_secret: &[u8]) -> Self {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(jwt_secret).expect("HMAC takes keys of any length");
        mac.update(b"simutrador console csrf v1");
        Self(auth::Secret::new(mac.finalize().into_bytes().to_vec()))
    }

    /// The CSRF token of a login session: 64 hex digits.
    pub fn token(&self, session: Uuid) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.expose())
            .expect("HMAC takes keys of any length");
        mac.update(session.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `presented` is the token of `session` (compared in constant time).
    pub fn matches(&self, session: Uuid, presented: &str) -> bool {
        constant_time_eq(self.token(session).as_bytes(), presented.as_bytes())
    }
}

/// Byte-wise equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a login asks to be answered with cookies (`X-Auth-Mode: cookie`).
pub fn wants_cookies(req: &HttpRequest) -> bool {
    req.headers()
        .get(MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("cookie"))
}

/// The value of the request's cookie `name`, if it has a non-empty one.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether the request carries any of the console's cookies.
pub fn has_session_cookie(req: &HttpRequest) -> bool {
    [ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE]
        .iter()
        .any(|name| req.cookie(name).is_some())
}

/// Whether the request came over HTTPS: TLS on this listener, or a peer in
/// `rate_limits.trusted_proxies` (the load balancer) saying `X-Forwarded-Proto: https`.
/// The header of any other peer is not believed.
pub fn is_https(req: &HttpRequest, settings: &Settings) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let trusted = req.peer_addr().is_some_and(|peer| {
        settings
            .rate_limits
            .trusted_proxies
            .iter()
            .any(|n| n.contains(peer.ip()))
    });
    trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            // The nearest proxy's word is the last one.
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Whether the cookies set in answer to `req` are `Secure`.
pub fn secure_cookies(req: &HttpRequest, settings: &Settings) -> bool {
    settings.console.secure_cookies || is_https(req, settings)
}

/// This server's origin as the request addressed it (`http(s)://` and its `Host`).
fn request_origin(req: &HttpRequest, settings: &Settings) -> Option<String> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let scheme = if is_https(req, settings) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{}", host.trim()))
}

/// Whether the request's `Origin`, if it has one, is this server's: the origin the
/// request itself addressed, or `console.public_url`. A request without `Origin` (not
/// sent by browsers on same-origin `GET`s, nor by programs) passes.
pub fn origin_allowed(req: &HttpRequest, settings: &Settings) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim();
    let same = |own: &str| own.eq_ignore_ascii_case(origin);
    request_origin(req, settings).is_some_and(|own| same(&own))
        || settings.console.public_url.origin().is_some_and(same)
}

/// Whether `method` can change something (everything but GET, HEAD, OPTIONS, TRACE).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The checks of a request authenticated by the console's cookies, for unsafe
/// methods: its `Origin` (when present) is this server's, and `X-CSRF-Token` equals
/// the CSRF cookie and, with `session` (the login session the access cookie belongs
/// to), that session's token. 403 `FORBIDDEN` saying which failed.
pub fn check_unsafe(
    req: &HttpRequest,
    settings: &Settings,
    key: &CsrfKey,
    session: Option<Uuid>,
) -> Result<(), HttpError> {
    if !is_unsafe(req.method()) {
        return Ok(());
    }
    if !origin_allowed(req, settings) {
        tracing::info!("cookie-authenticated request from another origin refused");
        return Err(HttpError::forbidden(
            "cross-origin request refused: a request signed in with the console's cookie must come from this server's own pages",
        ));
    }
    let header = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            HttpError::forbidden(
                "missing X-CSRF-Token header: a request signed in with the console's cookie must repeat the st_csrf cookie in it",
            )
        })?;
    let cookie = cookie(req, CSRF_COOKIE).ok_or_else(|| {
        HttpError::forbidden("no st_csrf cookie came with the request: sign in again")
    })?;
    if !constant_time_eq(header.as_bytes(), cookie.as_bytes()) {
        return Err(HttpError::forbidden(
            "X-CSRF-Token does not match the st_csrf cookie",
        ));
    }
    if let Some(session) = session {
        if !key.matches(session, header) {
            return Err(HttpError::forbidden(
                "X-CSRF-Token belongs to another login session: sign in again",
            ));
        }
    }
    Ok(())
}

/// What a console login or refresh sets.
#[derive(Debug)]
pub struct SessionCookies<'a> {
    /// The access token.
    pub access_token: &'a str,
    /// Seconds until it expires.
    pub access_max_age: i64,
    /// The refresh token.
    pub refresh_token: &'a str,
    /// Seconds until it (and the login session) ends.
    pub refresh_max_age: i64,
    /// The login session's CSRF token.
    pub csrf_token: &'a str,
    /// Whether the cookies are `Secure`.
    pub secure: bool,
}

fn build(
    name: &str,
    value: String,
    path: &str,
    http_only: bool,
    max_age: i64,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name.to_string(), value)
        .path(path.to_string())
        .http_only(http_only)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieAge::seconds(max_age.max(0)))
        .finish()
}

impl SessionCookies<'_> {
    /// The three cookies: access, refresh, CSRF.
    pub fn cookies(&self) -> [Cookie<'static>; 3] {
        [
            build(
                ACCESS_COOKIE,
                self.access_token.to_string(),
                "/",
                true,
                self.access_max_age,
                self.secure,
            ),
            build(
                REFRESH_COOKIE,
                self.refresh_token.to_string(),
                REFRESH_PATH,
                true,
                self.refresh_max_age,
                self.secure,
            ),
            build(
                CSRF_COOKIE,
                self.csrf_token.to_string(),
                "/",
                false,
                self.refresh_max_age,
                self.secure,
            ),
        ]
    }
}

/// The three cookies emptied with `Max-Age=0`, so the browser drops them (logout, a
/// refused refresh).
pub fn cleared_cookies(secure: bool) -> [Cookie<'static>; 3] {
    [
        build(ACCESS_COOKIE, String::new(), "/", true, 0, secure),
        build(REFRESH_COOKIE, String::new(), REFRESH_PATH, true, 0, secure),
        build(CSRF_COOKIE, String::new(), "/", false, 0, secure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn settings() -> Settings {
        Settings::load_from(None, Vec::<(String, String)>::new()).unwrap()
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_and_one_key() {
        let key = CsrfKey::derive(b"a jwt secret of the cluster");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let token = key.token(a);
        assert_eq!(token.len(), 64);
        assert!(key.matches(a, &token));
        assert!(!key.matches(b, &token));
        assert!(!key.matches(a, &token[1..]));
        assert!(!CsrfKey::derive(b"another secret").matches(a, &token));
        assert_eq!(format!("{key:?}"), "CsrfKey([redacted])");
    }

    #[test]
    fn unsafe_requests_need_the_token_and_their_own_origin() {
        let s = settings();
        let key = CsrfKey::derive(b"secret");
        let session = Uuid::new_v4();
        let token = key.token(session);
        let cookie = format!("{CSRF_COOKIE}={token}");
        let post = || {
            TestRequest::post()
                .uri("/api/keys")
                .insert_header((header::HOST, "127.0.0.1:8003"))
                .insert_header((header::COOKIE, cookie.clone()))
        };
        let check =
            |req: TestRequest| check_unsafe(&req.to_http_request(), &s, &key, Some(session));
        assert!(check(post().insert_header((CSRF_HEADER, token.clone()))).is_ok());
        assert!(check(
            post()
                .insert_header((CSRF_HEADER, token.clone()))
                .insert_header((header::ORIGIN, "http://127.0.0.1:8003"))
        )
        .is_ok());
        let refused = |req: TestRequest| {
            let e = check(req).unwrap_err();
            assert_eq!(e.status, 403);
            e.message
        };
        assert!(refused(post()).contains("missing X-CSRF-Token"));
        assert!(
            refused(post().insert_header((CSRF_HEADER, "0".repeat(64)))).contains("does not match")
        );
        assert!(refused(
            post()
                .insert_header((CSRF_HEADER, token.clone()))
                .insert_header((header::ORIGIN, "http://127.0.0.1:9999"))
        )
        .contains("cross-origin"));
        assert!(refused(
            post()
                .insert_header((CSRF_HEADER, token.clone()))
                .insert_header((header::ORIGIN, "null"))
        )
        .contains("cross-origin"));
        // Another session's token, in both places.
        let other = key.token(Uuid::new_v4());
        let req = TestRequest::post()
            .insert_header((header::HOST, "127.0.0.1:8003"))
            .insert_header((header::COOKIE, format!("{CSRF_COOKIE}={other}")))
            .insert_header((CSRF_HEADER, other));
        assert!(refused(req).contains("another login session"));
        // Reading needs nothing.
        let get = TestRequest::get().to_http_request();
        assert!(check_unsafe(&get, &s, &key, Some(session)).is_ok());
    }

    #[test]
    fn forwarded_https_is_believed_from_trusted_proxies_only() {
        let mut s = settings();
        let req = |peer: &str| {
            TestRequest::get()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("x-forwarded-proto", "https"))
                .to_http_request()
        };
        assert!(!is_https(&req("10.0.0.5:4000"), &s));
        s.rate_limits.trusted_proxies = "10.0.0.0/8".parse().unwrap();
        assert!(is_https(&req("10.0.0.5:4000"), &s));
        assert!(!is_https(&req("192.0.2.1:4000"), &s));
        assert!(secure_cookies(&req("10.0.0.5:4000"), &s));
        assert!(!secure_cookies(&req("192.0.2.1:4000"), &s));
        s.console.secure_cookies = true;
        assert!(secure_cookies(&req("192.0.2.1:4000"), &s));
    }

    #[test]
    fn cookies_are_strict_and_scoped() {
        let set = SessionCookies {
            access_token: "a",
            access_max_age: 2700,
            refresh_token: "r",
            refresh_max_age: 43200,
            csrf_token: "c",
            secure: false,
        }
        .cookies()
        .map(|c| c.to_string());
        assert_eq!(
            set[0],
            "st_access=a; HttpOnly; SameSite=Strict; Path=/; Max-Age=2700"
        );
        assert_eq!(
            set[1],
            "st_refresh=r; HttpOnly; SameSite=Strict; Path=/auth/refresh; Max-Age=43200"
        );
        assert_eq!(set[2], "st_csrf=c; SameSite=Strict; Path=/; Max-Age=43200");
        let cleared = cleared_cookies(true).map(|c| c.to_string());
        assert_eq!(
            cleared[1],
            "st_refresh=; HttpOnly; SameSite=Strict; Secure; Path=/auth/refresh; Max-Age=0"
        );
    }
}
