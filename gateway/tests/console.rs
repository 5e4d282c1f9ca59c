//! The web console against the real gateway: its pages and assets (security headers,
//! no inline script, the vendored files as their manifest says), the cookie login
//! session (HttpOnly, SameSite=Strict, CSRF, origin checks, refresh, logout,
//! revocation, a disabled user), and in a real browser (headless Chromium over
//! WebDriver) signing in, the TOTP step, the account page, the session ending with
//! logout, revocation and refresh-token theft, a cross-origin form refused, and the
//! New backtest page (its form from the API, a run to its results, bad input, cancel).
//!
//! The results page of a server-side backtest and of a WebSocket session: every key
//! figure, the trades, the charts drawn, the CSV download.
//!
//! `screenshots` (ignored; `scripts/screenshots.sh` runs it) writes the PNGs of
//! docs/screenshots/.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::cookie::Cookie;
use actix_web::http::{header, Method};
use auth::{AccountStore, Plan, UserStore};
use gateway::console::{Access, PAGES};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::browser::Browser;
use support::{Backend, TestApp};

const PASSWORD: &str = "a long and careful passphrase";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

fn console_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A gateway with a second server to choose at login.
async fn spawn() -> TestApp {
    support::spawn_app_with(Backend::Sqlite, |s| {
        s.servers.insert(
            "paper".into(),
            gateway::config::ServerChoice {
                name: "Paper trading".into(),
            },
        );
    })
    .await
}

/// The console's cookies of one login session, as a browser would hold them.
#[derive(Clone, Debug)]
struct CookieSession {
    access: String,
    refresh: String,
    csrf: String,
    session_id: String,
}

impl CookieSession {
    /// The `Cookie` header a browser sends to paths under `/` (not the refresh cookie,
    /// which goes to /auth/refresh only).
    fn header(&self) -> String {
        format!("st_access={}; st_csrf={}", self.access, self.csrf)
    }
}

/// The `Set-Cookie` headers of an answer, by name.
fn set_cookies(res: &awc::ClientResponse<impl Sized>) -> BTreeMap<String, Cookie<'static>> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .map(|v| Cookie::parse(v.to_str().unwrap().to_string()).unwrap())
        .map(|c| (c.name().to_string(), c))
        .collect()
}

/// Signs in as the console does (`X-Auth-Mode: cookie`).
async fn cookie_login(app: &TestApp, email: &str) -> CookieSession {
    let mut res = client()
        .post(app.url("/auth/login"))
        .insert_header(("X-Auth-Mode", "cookie"))
        .send_json(&json!({"email": email, "password": PASSWORD, "server": "default"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    let body: Value = res.json().await.unwrap();
    CookieSession {
        access: cookies["st_access"].value().to_string(),
        refresh: cookies["st_refresh"].value().to_string(),
        csrf: cookies["st_csrf"].value().to_string(),
        session_id: body["session_id"].as_str().unwrap().to_string(),
    }
}

/// A request with a session's cookies (and, when given, an `X-CSRF-Token` and an
/// `Origin`): the status, the answer's cookies and the JSON body.
async fn with_cookies(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &CookieSession,
    csrf: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
) -> (u16, BTreeMap<String, Cookie<'static>>, Value) {
    let mut req = client()
        .request(method, app.url(path))
        .insert_header((header::COOKIE, session.header()));
    if let Some(token) = csrf {
        req = req.insert_header(("X-CSRF-Token", token));
    }
    if let Some(origin) = origin {
        req = req.insert_header((header::ORIGIN, origin));
    }
    let mut res = match body {
        Some(b) => req.send_json(&b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let cookies = set_cookies(&res);
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (res.status().as_u16(), cookies, body)
}

/// Whether the access cookie of `session` is refused (401 on `GET /api/keys`) within
/// a second, the time revocations take to reach every node.
async fn cookie_refused_within_a_second(app: &TestApp, session: &CookieSession) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (status, _, _) =
            with_cookies(app, Method::GET, "/api/keys", session, None, None, None).await;
        if status == 401 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that shows redirects instead of following them.
fn client() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}

/// A plain GET (redirects not followed): status, headers and body text.
async fn fetch(url: &str, cookie: Option<&str>) -> (u16, header::HeaderMap, String) {
    let mut req = client().get(url);
    if let Some(c) = cookie {
        req = req.insert_header((header::COOKIE, c));
    }
    let mut res = req.send().await.unwrap();
    let mut headers = header::HeaderMap::new();
    for (k, v) in res.headers() {
        headers.append(k.clone(), v.clone());
    }
    let body = res.body().limit(4 << 20).await.unwrap();
    (
        res.status().as_u16(),
        headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn assert_security_headers(what: &str, headers: &header::HeaderMap) {
    let value = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        value("content-security-policy").as_deref(),
        Some(CSP),
        "{what}"
    );
    assert_eq!(
        value("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(value("x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(
        value("referrer-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(
        value("cross-origin-opener-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
}

/// What a page must not hold under the CSP: inline script, event handler attributes,
/// `javascript:` URLs, `style` attributes. The offending snippet, if any.
fn inline_code(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let snippet = |at: usize| lower[at..(at + 80).min(lower.len())].to_string();
    for (at, _) in lower.match_indices("<script") {
        let tag_end = lower[at..].find('>').map_or(lower.len(), |e| at + e);
        if !lower[at..tag_end].contains(" src=") {
            return Some(snippet(at));
        }
    }
    if let Some(at) = lower.find("javascript:") {
        return Some(snippet(at));
    }
    if let Some(at) = lower.find(" style=") {
        return Some(snippet(at));
    }
    // ` onclick=`, ` onload=`, ...: an attribute starting with `on` inside a tag.
    let bytes = lower.as_bytes();
    let mut in_tag = false;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'<' => in_tag = true,
            b'>' => in_tag = false,
            b' ' | b'\n' | b'\t' if in_tag && lower[i + 1..].starts_with("on") => {
                let name: String = lower[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if lower[i + 1 + name.len()..].trim_start().starts_with('=') {
                    return Some(snippet(i));
                }
            }
            _ => {}
        }
    }
    None
}

#[test]
fn the_inline_code_scan_finds_what_it_looks_for() {
    assert_eq!(
        inline_code("<script src=\"/assets/x.js\"></script><p>onward</p>"),
        None
    );
    for bad in [
        "<script>alert(1)</script>",
        "<button onclick=\"go()\">",
        "<body\nonload = x>",
        "<a href=\"javascript:go()\">",
        "<div style=\"color:red\">",
    ] {
        assert!(inline_code(bad).is_some(), "{bad}");
    }
}

#[test]
fn vendored_files_match_their_manifest() {
    let vendor = console_dir().join("vendor");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(vendor.join("vendor.json")).unwrap())
            .unwrap();
    let notes = std::fs::read_to_string(vendor.join("VENDOR.md")).unwrap();
    let mut listed = Vec::new();
    let packages = manifest["packages"].as_array().unwrap();
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lightweight-charts", "qrcode-generator"]);
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let version = package["version"].as_str().unwrap();
        assert!(
            package["integrity"]
                .as_str()
                .unwrap()
                .starts_with("sha512-"),
            "{name}"
        );
        assert!(!package["license"].as_str().unwrap().is_empty(), "{name}");
        assert!(
            notes.contains(&format!("| `{name}` | {version} |")),
            "{name} in VENDOR.md"
        );
        let files = package["files"].as_array().unwrap();
        assert!(
            files.iter().any(|f| f["path"] == format!("{name}/LICENSE")),
            "{name} ships its licence"
        );
        for file in files {
            let path = file["path"].as_str().unwrap();
            let bytes = std::fs::read(vendor.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            let sha: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(file["sha256"], sha, "{path} differs from vendor.json");
            assert!(notes.contains(&sha), "{path}'s sha256 in VENDOR.md");
            // And the binary serves exactly these bytes.
            let embedded = gateway::console::asset(&format!("vendor/{path}")).unwrap();
            assert_eq!(embedded.bytes(), &bytes[..], "{path} embedded");
            listed.push(path.to_string());
        }
    }
    assert!(manifest["packages"][0]["version"]
        .as_str()
        .unwrap()
        .starts_with("5."));
    // Nothing unlisted sits in a package folder.
    let mut present: Vec<String> = files_under(&vendor)
        .into_iter()
        .filter(|p| p.contains('/'))
        .collect();
    present.sort();
    listed.sort();
    assert_eq!(present, listed);
}

#[actix_web::test]
async fn pages_and_assets_carry_the_security_headers_and_no_inline_script() {
    let app = spawn().await;
    app.register_verified("ann@example.com", PASSWORD).await;
    let session = cookie_login(&app, "ann@example.com").await;
    let cookie = session.header();
    for page in PAGES {
        if page.path.contains('{') {
            continue;
        }
        // Signed out: public pages render, the others send to the sign-in page.
        let (status, headers, html) = fetch(&app.url(page.path), None).await;
        assert_security_headers(page.path, &headers);
        assert_eq!(
            headers.get(header::CACHE_CONTROL).unwrap(),
            "no-store",
            "{}",
            page.path
        );
        match page.access {
            Access::SignedIn => {
                assert_eq!(status, 303, "{}", page.path);
            }
            _ => {
                assert_eq!(status, 200, "{}", page.path);
                assert_eq!(
                    headers.get(header::CONTENT_TYPE).unwrap(),
                    "text/html; charset=utf-8"
                );
                assert_eq!(inline_code(&html), None, "{}", page.path);
            }
        }
        // Signed in: every page but the sign-in page renders.
        let (status, headers, html) = fetch(&app.url(page.path), Some(&cookie)).await;
        assert_security_headers(page.path, &headers);
        if page.access == Access::SignIn {
            assert_eq!(status, 303, "{}", page.path);
            continue;
        }
        assert_eq!(status, 200, "{}", page.path);
        assert!(html.starts_with("<!doctype html>"), "{}", page.path);
        assert_eq!(inline_code(&html), None, "{}", page.path);
        assert!(
            html.contains(&format!("<title>{} · SimuTrador</title>", page.title)),
            "{}",
            page.path
        );
    }

    // Every file browsers load, with its type and ETag; page bodies are not served.
    let dir = console_dir();
    let mut served = 0;
    for path in files_under(&dir) {
        let url = app.url(&format!("/assets/{path}"));
        let (status, headers, body) = fetch(&url, None).await;
        let browser_file = ["css/", "js/", "img/", "vendor/"]
            .iter()
            .any(|f| path.starts_with(f));
        if !browser_file {
            assert_eq!(status, 404, "{path} must not be served");
            continue;
        }
        served += 1;
        assert_eq!(status, 200, "{path}");
        assert_security_headers(&path, &headers);
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap(),
            gateway::console::content_type(&path),
            "{path}"
        );
        assert_eq!(
            headers.get(header::CACHE_CONTROL).unwrap(),
            "no-cache",
            "{path}"
        );
        let etag = headers
            .get(header::ETAG)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            body.len(),
            std::fs::read(dir.join(&path)).unwrap().len(),
            "{path}"
        );
        // Our own scripts build pages with DOM calls only.
        if path.starts_with("js/") {
            for banned in [
                "innerhtml",
                "insertadjacenthtml",
                "eval(",
                "new function",
                "document.write",
            ] {
                assert!(
                    !body.to_ascii_lowercase().contains(banned),
                    "{path} uses {banned}"
                );
            }
        }
        if path.ends_with(".svg") {
            assert_eq!(inline_code(&body), None, "{path}");
        }
        let res = client()
            .get(&url)
            .insert_header((header::IF_NONE_MATCH, etag.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304, "{path}");
    }
    assert!(served > 15, "{served} assets");
    for missing in [
        "/assets/css/nothing.css",
        "/assets/../Cargo.toml",
        "/assets/",
    ] {
        assert_eq!(fetch(&app.url(missing), None).await.0, 404, "{missing}");
    }
    // API answers carry them too.
    let (status, headers, _) = fetch(&app.url("/auth/servers"), None).await;
    assert_eq!(status, 200);
    assert_security_headers("/auth/servers", &headers);
    let (status, headers, _) = fetch(&app.url("/no/such/route"), None).await;
    assert_eq!(status, 404);
    assert_security_headers("a 404", &headers);
    app.cleanup().await;
}

#[actix_web::test]
async fn pages_send_signed_out_people_to_the_sign_in_page_and_back() {
    let app = spawn().await;
    app.register_verified("bea@example.com", PASSWORD).await;
    let location = |headers: &header::HeaderMap| {
        headers
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let (status, headers, _) = fetch(&app.url("/"), None).await;
    assert_eq!(
        (status, location(&headers).as_str()),
        (303, "/login?next=%2F")
    );
    let (_, headers, _) = fetch(&app.url("/account?tab=keys"), None).await;
    assert_eq!(location(&headers), "/login?next=%2Faccount%3Ftab%3Dkeys");
    // A token that is not a login cookie does not open a page.
    let (status, _, _) = fetch(&app.url("/account"), Some("st_access=not-a-token")).await;
    assert_eq!(status, 303);
    let session = cookie_login(&app, "bea@example.com").await;
    let cookie = session.header();
    assert_eq!(fetch(&app.url("/account"), Some(&cookie)).await.0, 200);
    // Signed in, the sign-in page sends on to `next` when it is a path of this site.
    for (next, to) in [
        ("", "/"),
        ("?next=%2Faccount", "/account"),
        ("?next=%2F%2Fevil.example%2Fx", "/"),
        ("?next=https%3A%2F%2Fevil.example%2F", "/"),
        ("?next=%2F%5Cevil.example", "/"),
    ] {
        let (status, headers, _) = fetch(&app.url(&format!("/login{next}")), Some(&cookie)).await;
        assert_eq!((status, location(&headers).as_str()), (303, to), "{next}");
    }
    // HEAD as GET, without the body.
    let res = client()
        .head(app.url("/assets/css/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key(header::ETAG));
    // Pages take GET and HEAD only.
    let res = client().post(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_console_login_answers_with_strict_http_only_cookies() {
    let app = support::spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    app.register_verified("cal@example.com", PASSWORD).await;
    let login = |mode: Option<&'static str>, extra: Option<(&'static str, &'static str)>| {
        let mut req = client().post(app.url("/auth/login"));
        if let Some(mode) = mode {
            req = req.insert_header(("X-Auth-Mode", mode));
        }
        if let Some(h) = extra {
            req = req.insert_header(h);
        }
        async move {
            let mut res = req
                .send_json(
                    &json!({"email": "cal@example.com", "password": PASSWORD, "server": "default"}),
                )
                .await
                .unwrap();
            let cookies = set_cookies(&res);
            let body: Value = res.json().await.unwrap();
            (res.status().as_u16(), cookies, body)
        }
    };
    let (status, cookies, body) = login(Some("cookie"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "cookie");
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
    for field in [
        "session_id",
        "user_id",
        "plan",
        "expires_in",
        "refresh_expires_at",
    ] {
        assert!(body.get(field).is_some(), "{field} in {body}");
    }
    let strict = Some(actix_web::cookie::SameSite::Strict);
    let flag = |f: Option<bool>| f.unwrap_or(false);
    let access = &cookies["st_access"];
    assert_eq!(
        (
            flag(access.http_only()),
            access.same_site(),
            access.path(),
            flag(access.secure())
        ),
        (true, strict, Some("/"), false)
    );
    assert_eq!(access.max_age().unwrap().whole_seconds(), 2700);
    let refresh = &cookies["st_refresh"];
    assert_eq!(
        (
            flag(refresh.http_only()),
            refresh.same_site(),
            refresh.path()
        ),
        (true, strict, Some("/auth/refresh"))
    );
    let csrf = &cookies["st_csrf"];
    assert_eq!(
        (flag(csrf.http_only()), csrf.same_site(), csrf.path()),
        (false, strict, Some("/"))
    );
    assert_eq!(csrf.value().len(), 64);
    // The access cookie is a working token.
    let (status, _) = app
        .call(Method::GET, "/api/keys", Some(access.value()), None)
        .await;
    assert_eq!(status, 200);

    // Over HTTPS (the trusted proxy says so) they are Secure; another peer's word is
    // not taken (the next test app trusts nobody).
    let (_, cookies, _) = login(Some("cookie"), Some(("X-Forwarded-Proto", "https"))).await;
    assert!(cookies.values().all(|c| c.secure() == Some(true)));
    // Programs get tokens in the body, as before, and no cookies.
    let (status, cookies, body) = login(None, None).await;
    assert_eq!(status, 200);
    assert!(cookies.is_empty());
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    // Another site's page cannot sign anyone in.
    let (status, cookies, body) =
        login(Some("cookie"), Some(("Origin", "http://evil.example"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );
    assert!(cookies.is_empty());
    app.cleanup().await;

    let app = support::spawn_app_with(Backend::Sqlite, |s| {
        s.console.secure_cookies = true;
    })
    .await;
    app.register_verified("cal@example.com", PASSWORD).await;
    let mut res = client()
        .post(app.url("/auth/login"))
        .insert_header(("X-Auth-Mode", "cookie"))
        .insert_header(("X-Forwarded-Proto", "http"))
        .send_json(&json!({"email": "cal@example.com", "password": PASSWORD, "server": "default"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    assert!(
        cookies.values().all(|c| c.secure() == Some(true)),
        "console.secure_cookies"
    );
    let _ = res.body().await;
    // Untrusted X-Forwarded-Proto: plain.
    let plain = support::spawn_app(Backend::Sqlite).await;
    plain.register_verified("cal@example.com", PASSWORD).await;
    let res = client()
        .post(plain.url("/auth/login"))
        .insert_header(("X-Auth-Mode", "cookie"))
        .insert_header(("X-Forwarded-Proto", "https"))
        .send_json(&json!({"email": "cal@example.com", "password": PASSWORD, "server": "default"}))
        .await
        .unwrap();
    assert!(set_cookies(&res).values().all(|c| c.secure() != Some(true)));
    app.cleanup().await;
    plain.cleanup().await;
}

#[actix_web::test]
async fn cookie_requests_that_change_something_need_the_csrf_token() {
    let app = spawn().await;
    app.register_verified("dan@example.com", PASSWORD).await;
    let session = cookie_login(&app, "dan@example.com").await;
    let own = app.url("");
    let create = || Some(json!({"name": "from the console"}));
    // Reading needs no token.
    let (status, _, _) =
        with_cookies(&app, Method::GET, "/api/keys", &session, None, None, None).await;
    assert_eq!(status, 200);
    // Changing does.
    let (status, _, body) = with_cookies(
        &app,
        Method::POST,
        "/api/keys",
        &session,
        None,
        None,
        create(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("X-CSRF-Token"),
        "{body}"
    );
    let wrong = "0".repeat(64);
    let (status, _, body) = with_cookies(
        &app,
        Method::POST,
        "/api/keys",
        &session,
        Some(&wrong),
        None,
        create(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // The right token from another origin.
    let (status, _, body) = with_cookies(
        &app,
        Method::POST,
        "/api/keys",
        &session,
        Some(&session.csrf),
        Some("http://127.0.0.1:1"),
        create(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("cross-origin"),
        "{body}"
    );
    // The right token from this origin.
    let (status, _, created) = with_cookies(
        &app,
        Method::POST,
        "/api/keys",
        &session,
        Some(&session.csrf),
        Some(&own),
        create(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // DELETE too.
    let path = format!("/api/keys/{id}");
    let (status, _, _) =
        with_cookies(&app, Method::DELETE, &path, &session, None, None, None).await;
    assert_eq!(status, 403);
    // Another login session's token (cookie and header alike) is refused.
    let other = cookie_login(&app, "dan@example.com").await;
    let mixed = CookieSession {
        csrf: other.csrf.clone(),
        ..session.clone()
    };
    let (status, _, body) = with_cookies(
        &app,
        Method::DELETE,
        &path,
        &mixed,
        Some(&other.csrf),
        None,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another login session"),
        "{body}"
    );
    let (status, _, _) = with_cookies(
        &app,
        Method::DELETE,
        &path,
        &session,
        Some(&session.csrf),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    // Bearer requests need no token: nothing sends that header on its own.
    let (status, _) = app
        .call(Method::POST, "/api/keys", Some(&session.access), create())
        .await;
    assert_eq!(status, 201);
    app.cleanup().await;
}

#[actix_web::test]
async fn refresh_logout_and_a_disabled_user_end_the_cookie_session() {
    let app = spawn().await;
    app.register_verified("eve@example.com", PASSWORD).await;
    let session = cookie_login(&app, "eve@example.com").await;
    let refresh = |token: Option<&str>, csrf: Option<&str>, body: Value| {
        let mut req = client().post(app.url("/auth/refresh"));
        if let Some(t) = token {
            req = req.insert_header((header::COOKIE, format!("st_refresh={t}")));
        }
        if let Some(c) = csrf {
            req = req.insert_header((
                header::COOKIE,
                format!("st_refresh={}; st_csrf={c}", token.unwrap_or("")),
            ));
            req = req.insert_header(("X-CSRF-Token", c));
        }
        async move {
            let mut res = req.send_json(&body).await.unwrap();
            let cookies = set_cookies(&res);
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (res.status().as_u16(), cookies, body)
        }
    };
    // Without a token in the body nor a cookie: 400.
    assert_eq!(refresh(None, None, json!({})).await.0, 400);
    // The cookie without the CSRF token: 403, and the refresh token is not used up.
    let (status, _, _) = refresh(Some(&session.refresh), None, json!({})).await;
    assert_eq!(status, 403);
    let (status, cookies, body) =
        refresh(Some(&session.refresh), Some(&session.csrf), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("access_token").is_none());
    assert_eq!(body["session_id"], session.session_id.as_str());
    let renewed = CookieSession {
        access: cookies["st_access"].value().to_string(),
        refresh: cookies["st_refresh"].value().to_string(),
        csrf: cookies["st_csrf"].value().to_string(),
        session_id: session.session_id.clone(),
    };
    assert_ne!(renewed.refresh, session.refresh);
    assert_eq!(
        renewed.csrf, session.csrf,
        "one CSRF token per login session"
    );

    // Logging out ends it and clears the cookies.
    let (status, cookies, _) = with_cookies(
        &app,
        Method::POST,
        "/auth/logout",
        &renewed,
        Some(&renewed.csrf),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    for name in ["st_access", "st_refresh", "st_csrf"] {
        let c = &cookies[name];
        assert_eq!(
            (c.value(), c.max_age().map(|a| a.whole_seconds())),
            ("", Some(0)),
            "{name}"
        );
    }
    assert_eq!(cookies["st_refresh"].path(), Some("/auth/refresh"));
    assert!(cookie_refused_within_a_second(&app, &renewed).await);
    // Its refresh cookie is refused, and the answer clears the cookies.
    let (status, cookies, _) =
        refresh(Some(&renewed.refresh), Some(&renewed.csrf), json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(cookies["st_access"].max_age().unwrap().whole_seconds(), 0);

    // Disabling the user ends the next session too, pages included.
    let session = cookie_login(&app, "eve@example.com").await;
    let user = app.db.user_by_email("eve@example.com").await.unwrap();
    let admin = app.token(&app.admin_key).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/users/{}", user.id),
            Some(&admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(cookie_refused_within_a_second(&app, &session).await);
    assert_eq!(
        fetch(&app.url("/account"), Some(&session.header())).await.0,
        303
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn the_signed_in_user_as_the_console_shows_them() {
    let app = spawn().await;
    app.register_verified("fay@example.com", PASSWORD).await;
    let session = cookie_login(&app, "fay@example.com").await;
    let (status, _, me) =
        with_cookies(&app, Method::GET, "/auth/me", &session, None, None, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "fay@example.com");
    assert_eq!(me["plan"], "free");
    assert_eq!(me["role"], "user");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["totp_enabled"], false);
    assert_eq!(me["session_id"], session.session_id.as_str());
    // Not for API-key tokens, like the rest of the account.
    let key = app.user_with_key("gus@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    assert_eq!(
        app.call(Method::GET, "/auth/me", Some(&token), None)
            .await
            .0,
        403
    );
    app.cleanup().await;
}

// ---- In a real browser ---------------------------------------------------------

#[actix_web::test]
async fn signing_in_through_the_form_and_logging_out() {
    let app = spawn().await;
    app.register_verified("hal@example.com", PASSWORD).await;
    let base = app.url("");
    let browser = Browser::open().await;
    // A protected page sends to the sign-in page, and back after.
    browser.goto(&format!("{base}/account")).await;
    let url = browser.wait_path("/login").await;
    assert_eq!(url.query(), Some("next=%2Faccount"));
    browser.wait_server_choices().await;
    let options = browser
        .run("return [...document.querySelectorAll('select[name=server] option')].map(o => [o.value, o.textContent]);")
        .await;
    assert_eq!(
        options,
        json!([["default", "SimuTrador"], ["paper", "Paper trading"]])
    );
    // A wrong password: the message everybody gets.
    browser.fill("input[name=email]", "hal@example.com").await;
    browser
        .fill("input[name=password]", "not the password")
        .await;
    browser.click("#login-submit").await;
    let said = browser
        .wait_text("#login-message", "Invalid email or password")
        .await;
    assert_eq!(
        browser
            .find("#login-message")
            .await
            .attr("role")
            .await
            .unwrap()
            .as_deref(),
        Some("alert")
    );
    // An unknown address says exactly the same.
    browser
        .fill("input[name=email]", "nobody@example.com")
        .await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.click("#login-submit").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.wait_text("#login-message", "Invalid").await, said);
    // The right one, on the second server.
    browser.fill("input[name=email]", "hal@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.select("select[name=server]", "paper").await;
    browser.click("#login-submit").await;
    browser.wait_path("/account").await;
    browser.wait_text("#user-email", "hal@example.com").await;
    browser.wait_text("#profile-email", "hal@example.com").await;

    // The tokens are in HttpOnly cookies: WebDriver sees them, the page does not.
    let access = browser
        .cookie("st_access")
        .await
        .expect("the access cookie");
    let refresh = browser.cookie("st_refresh").await;
    assert!(
        refresh.is_none(),
        "the refresh cookie belongs to /auth/refresh only"
    );
    let visible = browser.run("return document.cookie;").await;
    let visible = visible.as_str().unwrap();
    assert!(
        visible.contains("st_csrf=") && !visible.contains("st_access"),
        "{visible}"
    );
    assert!(!visible.contains(&access));
    let (status, _) = app
        .call(Method::GET, "/api/keys", Some(&access), None)
        .await;
    assert_eq!(status, 200);

    // The vendored chart library, through the console's chart module, draws under
    // the page's Content-Security-Policy without a single violation (the library's
    // own logo would inject an inline <style>), and credits TradingView.
    let drawn = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const violations = [];
             document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective + ' ' + e.blockedURI));
             import('/assets/js/charts.js').then(({ chart, lc }) => {
               const box = document.createElement('div');
               document.querySelector('main').append(box);
               const c = chart(box);
               c.addSeries(lc.LineSeries).setData([
                 { time: '2024-01-02', value: 100 }, { time: '2024-01-03', value: 102.5 }, { time: '2024-01-04', value: 101 },
               ]);
               setTimeout(() => done({
                 canvases: box.querySelectorAll('canvas').length,
                 credit: box.querySelector('a.chart-credit').href,
                 width: box.querySelector('.chart-canvas').clientWidth,
                 violations,
               }), 300);
             }, (e) => done({ error: String(e), violations }));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(drawn["violations"], json!([]), "{drawn}");
    assert!(drawn["canvases"].as_u64().unwrap_or(0) > 0, "{drawn}");
    assert!(drawn["width"].as_u64().unwrap_or(0) > 300, "{drawn}");
    assert_eq!(drawn["credit"], "https://www.tradingview.com/", "{drawn}");

    // Log out: the page goes to /login, and the cookie it held is refused.
    browser.click("#logout").await;
    browser.wait_path("/login").await;
    browser.wait_text("#login-message", "signed out").await;
    assert!(app.refused_within_a_second("/api/keys", &access).await);
    assert!(browser.cookie("st_access").await.is_none());
    // Signing in again with a `next` off this site lands on this site's dashboard.
    browser
        .goto(&format!("{base}/login?next=%2F%2Fevil.example%2Fsteal"))
        .await;
    browser.fill("input[name=email]", "hal@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.wait_server_choices().await;
    browser.click("#login-submit").await;
    let url = browser.wait_path("/").await;
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn the_sign_in_page_explains_unverified_addresses_rate_limits_and_a_server_down() {
    let app = support::spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.auth = gateway::config::RateRule {
            requests: 6,
            period_sec: 60,
        };
    })
    .await;
    // Registered, not verified (one `/auth/*` request).
    let (status, _) = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": "ned@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 202);
    let base = app.url("");
    let browser = Browser::open().await;
    browser.goto(&format!("{base}/login")).await;
    browser.wait_server_choices().await;
    browser.fill("input[name=email]", "ned@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.click("#login-submit").await;
    browser
        .wait_text("#login-message", "Verify your email address first")
        .await;
    browser.click("#login-message button").await;
    browser
        .wait_text("#login-message", "a new link is on its way")
        .await;
    // Then the auth limit: the wait comes from Retry-After, and the button waits too.
    browser.fill("input[name=password]", "wrong password").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        browser.click("#login-submit").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let said = browser.text("#login-message").await;
        if said.contains("Too many sign-in attempts") {
            assert!(said.contains("Try again in"), "{said}");
            break;
        }
        assert!(Instant::now() < deadline, "never rate limited: {said}");
    }
    assert!(!browser
        .find("#login-submit")
        .await
        .is_enabled()
        .await
        .unwrap());
    app.cleanup().await;

    // A server that went away.
    let app = spawn().await;
    let base = app.url("");
    browser.goto(&format!("{base}/login")).await;
    browser.wait_server_choices().await;
    browser.fill("input[name=email]", "ned@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    app.shutdown.shutdown();
    let mut app = app;
    if let Some(stopped) = app.stopped.take() {
        let _ = stopped.await;
    }
    browser.click("#login-submit").await;
    browser
        .wait_text("#login-message", "cannot be reached")
        .await;
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn the_dashboard_follows_a_live_session_without_a_reload() {
    let app = spawn().await;
    app.register_verified("ola@example.com", PASSWORD).await;
    let (_, login) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "ola@example.com", "password": PASSWORD, "server": "default"})),
        )
        .await;
    let bearer = login["access_token"].as_str().unwrap().to_string();
    // The browser first (it may wait for a free slot), then the run.
    let browser = Browser::open().await;
    browser
        .sign_in(&app.url(""), "ola@example.com", PASSWORD)
        .await;
    browser.visible("#sessions-empty").await;
    let mut ws = support::WsClient::connect(&app, &bearer).await;
    ws.until("connection_ready").await;
    let mut sma = support::sma::Sma::default();
    let sid = ws.start_session(support::sma::goog_start()).await;
    assert!(sma.drive(&mut ws, &sid, |seq| seq == 50).await.is_none());
    browser.click("#refresh-sessions").await;
    let row = format!("#sessions-body tr[data-session='{sid}']");
    browser.wait_text(&row, "running").await;
    browser.wait_text(&row, "50 of").await;
    let marker = browser.run("window.notReloaded = true; return true;").await;
    assert_eq!(marker, json!(true));
    // The run goes on; the page follows within its polling period.
    sma.answer_pending(&mut ws, &sid).await;
    assert!(sma.drive(&mut ws, &sid, |seq| seq == 400).await.is_none());
    browser.wait_text(&row, "400 of").await;
    assert_eq!(
        browser.run("return window.notReloaded === true;").await,
        json!(true)
    );
    // And shows the result when it ends.
    sma.answer_pending(&mut ws, &sid).await;
    sma.drive(&mut ws, &sid, |_| false)
        .await
        .expect("the run ends");
    browser.wait_text(&row, "completed").await;
    browser.wait_text(&row, "%").await;
    browser.close().await;
    app.cleanup().await;
}

/// Registers `email` and turns on TOTP for it over the API; its secret and recovery
/// codes.
async fn with_totp(app: &TestApp, email: &str) -> (Vec<u8>, Vec<String>) {
    app.register_verified(email, PASSWORD).await;
    let (_, login) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": email, "password": PASSWORD, "server": "default"})),
        )
        .await;
    let access = login["access_token"].as_str().unwrap().to_string();
    let (_, enrolment) = app
        .call(
            Method::POST,
            "/auth/totp/enrol",
            Some(&access),
            Some(json!({})),
        )
        .await;
    let secret = auth::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let code = auth::totp::code_at(&secret, chrono::Utc::now().timestamp() - 30);
    let (status, confirmed) = app
        .call(
            Method::POST,
            "/auth/totp/confirm",
            Some(&access),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

#[actix_web::test]
async fn the_totp_step_of_signing_in() {
    let app = spawn().await;
    let (secret, recovery) = with_totp(&app, "ida@example.com").await;
    let base = app.url("");
    let browser = Browser::open().await;
    browser.goto(&format!("{base}/login")).await;
    browser.fill("input[name=email]", "ida@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.wait_server_choices().await;
    assert!(!browser
        .find("input[name=totp_code]")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.click("#login-submit").await;
    // The second step.
    browser.visible("input[name=totp_code]").await;
    browser
        .wait_text("#page-title", "Two-step verification")
        .await;
    browser.fill("input[name=totp_code]", "000000").await;
    browser.click("#login-submit").await;
    browser.wait_text("#login-message", "not valid").await;
    let code = auth::totp::code_at(&secret, chrono::Utc::now().timestamp());
    browser.fill("input[name=totp_code]", &code).await;
    browser.click("#login-submit").await;
    browser.wait_path("/").await;
    browser.wait_text("#user-email", "ida@example.com").await;
    // Again with a recovery code.
    browser.click("#logout").await;
    browser.wait_path("/login").await;
    browser.fill("input[name=email]", "ida@example.com").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.wait_server_choices().await;
    browser.click("#login-submit").await;
    browser.click("#use-recovery").await;
    browser
        .fill("input[name=recovery_code]", &recovery[0])
        .await;
    browser.click("#login-submit").await;
    browser.wait_path("/").await;
    browser.close().await;
    app.cleanup().await;
}

/// The id of `email`'s login session that `bearer`'s is not.
async fn other_session(app: &TestApp, bearer: &str) -> String {
    let (status, body) = app
        .call(Method::GET, "/auth/sessions", Some(bearer), None)
        .await;
    assert_eq!(status, 200);
    let others: Vec<&Value> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == false)
        .collect();
    assert_eq!(others.len(), 1, "{body}");
    others[0]["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn revocation_and_refresh_token_theft_end_the_browser_session() {
    let app = spawn().await;
    app.register_verified("jo@example.com", PASSWORD).await;
    let base = app.url("");
    let browser = Browser::open().await;

    // Ended from another login: the page's next API call lands on /login.
    browser.sign_in(&base, "jo@example.com", PASSWORD).await;
    let (_, other) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "jo@example.com", "password": PASSWORD, "server": "default"})),
        )
        .await;
    let other = other["access_token"].as_str().unwrap().to_string();
    let browser_session = other_session(&app, &other).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/auth/sessions/{browser_session}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(600)).await;
    browser.click("#refresh-sessions").await;
    let url = browser.wait_path("/login").await;
    assert_eq!(url.query(), Some("next=%2F"));

    // A stolen refresh token: the thief uses it first; when the browser then presents
    // it (its access cookie expired), the whole session ends for both.
    browser.sign_in(&base, "jo@example.com", PASSWORD).await;
    let stolen = browser.cookie("st_refresh").await;
    assert!(stolen.is_none(), "not visible from `/`");
    // The WebDriver cookie API lists cookies of the current page's path: read it where
    // it is sent.
    browser.goto(&format!("{base}/auth/refresh")).await;
    let stolen = browser
        .cookie("st_refresh")
        .await
        .expect("the refresh cookie");
    browser.goto(&format!("{base}/")).await;
    browser.wait_text("#user-email", "jo@example.com").await;
    let (status, thief) = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": stolen})),
        )
        .await;
    assert_eq!(status, 200, "{thief}");
    let thief = thief["access_token"].as_str().unwrap().to_string();
    browser.client.delete_cookie("st_access").await.unwrap();
    browser.click("#refresh-sessions").await;
    browser.wait_path("/login").await;
    assert!(app.refused_within_a_second("/api/keys", &thief).await);
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn api_keys_and_two_step_sign_in_on_the_account_page() {
    let app = spawn().await;
    app.register_verified("kim@example.com", PASSWORD).await;
    let base = app.url("");
    let browser = Browser::open().await;
    browser.sign_in(&base, "kim@example.com", PASSWORD).await;
    browser.click("a.nav-link[href='/account']").await;
    browser.wait_path("/account").await;
    browser.wait_text("#profile-email", "kim@example.com").await;

    // Create a key: its secret is shown once, and works.
    browser.fill("#key-name", "research laptop").await;
    browser.select("#key-expiry", "30").await;
    browser.click("#key-submit").await;
    let secret = browser.wait_text("#new-key-secret", "stk_").await;
    let token = app.token(&secret).await;
    assert_eq!(
        app.call(Method::GET, "/api/limits", Some(&token), None)
            .await
            .0,
        200
    );
    browser
        .wait_text("#keys-body tr[data-key-name='research laptop']", "active")
        .await;
    browser.click("#new-key-done").await;
    assert_eq!(browser.text("#new-key-secret").await, "");
    // Revoke it: the row says so, and its token is refused.
    browser
        .click("#keys-body tr[data-key-name='research laptop'] button[data-action=revoke]")
        .await;
    browser.click("dialog button[data-confirm]").await;
    browser
        .wait_text("#keys-body tr[data-key-name='research laptop']", "revoked")
        .await;
    assert!(app.refused_within_a_second("/api/limits", &token).await);
    let res = client()
        .post(app.url("/auth/token"))
        .insert_header(("X-API-Key", secret.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Two-step sign-in: a QR code on the canvas, the key as text, a code confirms it,
    // and the recovery codes are shown once.
    browser.click("#totp-start").await;
    browser.visible("#totp-enrol").await;
    let key = browser.text("#totp-secret").await;
    assert!(!key.is_empty(), "the key is shown as text");
    let dark = browser
        .run(
            "const c = document.getElementById('totp-qr'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 80) dark++; return [c.width, dark];",
        )
        .await;
    let (width, dark) = (dark[0].as_u64().unwrap(), dark[1].as_u64().unwrap());
    assert!(
        width >= 200 && dark > width * width / 8,
        "a QR code is drawn: {width} {dark}"
    );
    let secret = auth::totp::base32_decode(&key.replace(' ', "")).expect("the key is base32");
    let code = auth::totp::code_at(&secret, chrono::Utc::now().timestamp());
    browser.fill("#totp-code", &code).await;
    browser.click("#totp-confirm").await;
    browser.visible("#totp-codes").await;
    let codes = browser
        .run("return document.querySelectorAll('#recovery-codes li').length;")
        .await;
    assert_eq!(codes, json!(10));
    browser.wait_text("#totp-status", "on").await;
    let user = app.db.user_by_email("kim@example.com").await.unwrap();
    assert!(app.db.account(user.id).await.unwrap().totp_enabled);
    browser.click("#recovery-done").await;
    browser.visible("#totp-disable-form").await;

    // The current session is marked; the account page's log-out works too.
    browser.wait_text("#logins-body", "This browser").await;
    browser.click("#account-logout").await;
    browser.wait_path("/login").await;
    browser.close().await;
    app.cleanup().await;
}

/// Another site on another port of this machine (same site for cookies, another
/// origin): `/?action=URL` is a page whose script (a file, as its CSP would want)
/// posts a form to URL as soon as it loads.
async fn hostile_site() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            actix_web::rt::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (kind, body) = if target.starts_with("/post.js") {
                    (
                        "text/javascript",
                        "document.getElementById('f').submit();".to_string(),
                    )
                } else {
                    let action: String = url::form_urlencoded::parse(
                        target.split_once('?').map_or("", |(_, q)| q).as_bytes(),
                    )
                    .find(|(k, _)| k == "action")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                    (
                        "text/html",
                        format!(
                            "<!doctype html><title>Win a prize</title>\
                             <form id=\"f\" method=\"post\" action=\"{action}\">\
                             <input type=\"hidden\" name=\"name\" value=\"attacker\"></form>\
                             <script src=\"/post.js\"></script>"
                        ),
                    )
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[actix_web::test]
async fn a_cross_origin_form_post_is_refused() {
    let app = spawn().await;
    app.register_verified("lou@example.com", PASSWORD).await;
    let base = app.url("");
    let (_, login) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "lou@example.com", "password": PASSWORD, "server": "default"})),
        )
        .await;
    let bearer = login["access_token"].as_str().unwrap().to_string();
    let (status, key) = app
        .call(
            Method::POST,
            "/api/keys",
            Some(&bearer),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, 201);
    let key_id = key["id"].as_str().unwrap().to_string();
    let evil = hostile_site().await;
    let browser = Browser::open().await;
    browser.sign_in(&base, "lou@example.com", PASSWORD).await;
    for target in [
        format!("{base}/api/keys/{key_id}/rotate"),
        format!("{base}/auth/logout"),
        format!("{base}/api/keys"),
    ] {
        let action: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        browser
            .goto(&format!("http://127.0.0.1:{evil}/?action={action}"))
            .await;
        // The form lands on the gateway's refusal.
        let deadline = Instant::now() + Duration::from_secs(10);
        let page = loop {
            let url = browser.url().await;
            if url.port() == Some(app.port) {
                break browser.client.source().await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the form was never posted: {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            page.contains("FORBIDDEN")
                || page.contains("AUTH_FAILED")
                || page.contains("UNSUPPORTED_MEDIA_TYPE"),
            "{target}: {page}"
        );
        assert!(!page.contains("\"key\""), "{target}: {page}");
    }
    // Nothing changed: one key, not rotated, and the browser is still signed in.
    let (_, keys) = app
        .call(Method::GET, "/api/keys", Some(&bearer), None)
        .await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    assert!(
        keys["keys"][0]["expires_at"].is_null(),
        "not rotated: {keys}"
    );
    browser.goto(&format!("{base}/")).await;
    browser.wait_path("/").await;
    browser.wait_text("#user-email", "lou@example.com").await;
    let access = browser.cookie("st_access").await.unwrap();
    assert_eq!(
        app.call(Method::GET, "/api/keys", Some(&access), None)
            .await
            .0,
        200
    );
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn registering_verifying_and_resetting_a_password_in_the_browser() {
    let app = spawn().await;
    let base = app.url("");
    let browser = Browser::open().await;
    browser.goto(&format!("{base}/register")).await;
    browser.fill("#email", "max@example.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#confirm", "something else").await;
    browser.click("#register-submit").await;
    browser.wait_text("#register-message", "do not match").await;
    browser.fill("#confirm", PASSWORD).await;
    browser.click("#register-submit").await;
    browser.wait_text("#register-done", "max@example.com").await;
    // The link of the mail (made here from the database: no mail in tests).
    let user = app.db.user_by_email("max@example.com").await.unwrap();
    let token = app.db.create_email_verification(user.id).await.unwrap();
    browser
        .goto(&format!(
            "{base}/verify-email?token={}",
            token.token.expose()
        ))
        .await;
    browser.wait_text("#verify-message", "is verified").await;
    let url = browser.url().await;
    assert_eq!(url.query(), None, "the token leaves the address bar");
    // Used up now.
    browser
        .goto(&format!(
            "{base}/verify-email?token={}",
            token.token.expose()
        ))
        .await;
    browser.wait_text("#verify-message", "invalid").await;
    browser.visible("#resend-form").await;

    // Forgot and reset. The token the mail would carry is made here first (the
    // forgot request's own comes at most once a minute, so it makes none now).
    let reset = app
        .db
        .create_password_token(user.id, auth::PasswordTokenPurpose::Reset)
        .await
        .unwrap()
        .expect("a password token")
        .token
        .expose()
        .clone();
    browser.goto(&format!("{base}/forgot-password")).await;
    browser.fill("#email", "max@example.com").await;
    browser.click("#forgot-submit").await;
    browser
        .wait_text("#forgot-message", "If max@example.com has an account")
        .await;
    browser
        .goto(&format!("{base}/reset-password?token={reset}"))
        .await;
    browser.fill("#password", "a brand new passphrase").await;
    browser.fill("#confirm", "a brand new passphrase").await;
    browser.click("#reset-submit").await;
    browser
        .wait_text("#reset-message", "max@example.com is set")
        .await;
    browser.click("#reset-continue").await;
    browser.wait_path("/login").await;
    browser.fill("input[name=email]", "max@example.com").await;
    browser
        .fill("input[name=password]", "a brand new passphrase")
        .await;
    browser.wait_server_choices().await;
    browser.click("#login-submit").await;
    browser.wait_path("/").await;
    browser.close().await;
    app.cleanup().await;
}

// ---- Screenshots ---------------------------------------------------------------

/// Writes docs/screenshots/<page>-<width>x<height>.png (`scripts/screenshots.sh`).
#[actix_web::test]
#[ignore = "writes docs/screenshots/; run by scripts/screenshots.sh"]
async fn screenshots() {
    let out = std::env::var("SCREENSHOT_DIR").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&out).unwrap();
    let app = spawn().await;
    app.register_verified("ann.lee@example.com", PASSWORD).await;
    let user = app.db.user_by_email("ann.lee@example.com").await.unwrap();
    let admin = app.token(&app.admin_key).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/users/{}", user.id),
            Some(&admin),
            Some(json!({"plan": "professional"})),
        )
        .await;
    assert_eq!(status, 200);
    // A few keys and finished sessions, so the pages show what they are for.
    let (_, login) = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(
                json!({"email": "ann.lee@example.com", "password": PASSWORD, "server": "default"}),
            ),
        )
        .await;
    let bearer = login["access_token"].as_str().unwrap().to_string();
    for (name, days) in [("research laptop", Some(90)), ("nightly CI", None)] {
        let mut body = json!({ "name": name });
        if let Some(d) = days {
            body["expires_in_days"] = json!(d);
        }
        let (status, _) = app
            .call(Method::POST, "/api/keys", Some(&bearer), Some(body))
            .await;
        assert_eq!(status, 201);
    }
    // Two finished runs (one trading SMA(10,20), one holding cash) and one live.
    let mut ws = support::WsClient::connect(&app, &bearer).await;
    ws.until("connection_ready").await;
    ws.send(
        "start_simulation",
        json!({"symbols": ["EURUSD"], "start_date": "2017-01-02", "end_date": "2017-06-30",
               "initial_capital": "50000", "timeframe": "1h", "flow_control": false}),
        None,
    )
    .await;
    ws.until("simulation_end").await;
    let mut sma = support::sma::Sma::default();
    let sid = ws.start_session(support::sma::goog_start()).await;
    sma.drive(&mut ws, &sid, |_| false)
        .await
        .expect("the run ends");
    let mut live = support::sma::Sma::default();
    let live_id = ws.start_session(support::sma::goog_start()).await;
    assert!(live
        .drive(&mut ws, &live_id, |seq| seq == 820)
        .await
        .is_none());
    let base = app.url("");
    for (width, height) in [(1280, 800), (390, 844)] {
        let browser = Browser::sized(width, height).await;
        browser.goto(&format!("{base}/login")).await;
        browser.wait_server_choices().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let shot = |name: &str| out.join(format!("{name}-{width}x{height}.png"));
        std::fs::write(shot("login"), browser.screenshot().await).unwrap();
        browser
            .sign_in(&base, "ann.lee@example.com", PASSWORD)
            .await;
        browser.wait_content("#sessions-body", "completed").await;
        browser.wait_content("#sessions-body", "running").await;
        browser.wait_content("#stat-plan", "Professional").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("dashboard"), browser.screenshot().await).unwrap();
        browser.goto(&format!("{base}/account")).await;
        browser.wait_content("#keys-body", "nightly CI").await;
        browser.wait_content("#logins-body", "This browser").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("account"), browser.screenshot().await).unwrap();
        browser.goto(&format!("{base}/backtests/new")).await;
        browser.find("#backtest-form[data-ready]").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("new-backtest"), browser.screenshot().await).unwrap();
        browser.goto(&format!("{base}/results/{sid}")).await;
        browser.find("#results[data-rendered='true']").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("results"), browser.screenshot().await).unwrap();
        browser
            .run("document.getElementById('panel-candles').scrollIntoView(); return true;")
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("results-charts"), browser.screenshot().await).unwrap();
        browser
            .run("document.getElementById('panel-periods').scrollIntoView(); return true;")
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(shot("results-returns"), browser.screenshot().await).unwrap();
        browser.close().await;
    }
    app.cleanup().await;
}

// ---------------------------------------------------------------------------
// The results page.

/// SMA(10,20) with 100 shares on GOOG daily over the whole sample, run on the server.
async fn goog_backtest(app: &TestApp, bearer: &str) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/backtests",
            Some(bearer),
            Some(json!({
                "strategy": "sma_crossover", "params": {"fast": 10, "slow": 20},
                "symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
                "initial_capital": "100000", "timeframe": "daily"
            })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["session_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = app
            .call(
                Method::GET,
                &format!("/api/backtests/{id}"),
                Some(bearer),
                None,
            )
            .await;
        if status["state"] == "completed" {
            return id;
        }
        assert!(
            matches!(status["state"].as_str(), Some("queued" | "running")),
            "{status}"
        );
        assert!(Instant::now() < deadline, "the backtest did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether some canvas inside `css` has a pixel of roughly `rgb` (within `tolerance`
/// on each channel): the chart drew its series, not only an empty frame.
async fn canvas_has_colour(browser: &Browser, css: &str, rgb: [u8; 3], tolerance: u8) -> bool {
    let script = format!(
        "const [r, g, b] = {rgb:?}; const t = {tolerance};
         for (const c of document.querySelectorAll({css} + ' canvas')) {{
           if (!c.width || !c.height) continue;
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           for (let i = 0; i < d.length; i += 4) {{
             if (d[i + 3] > 200 && Math.abs(d[i] - r) <= t && Math.abs(d[i + 1] - g) <= t && Math.abs(d[i + 2] - b) <= t) return true;
           }}
         }}
         return false;",
        css = serde_json::to_string(css).unwrap()
    );
    browser.run(&script).await == json!(true)
}

/// The trades CSV as the page's own download link fetches it (with the login cookie).
async fn csv_from_page(browser: &Browser) -> Vec<BTreeMap<String, String>> {
    let text = browser
        .run(
            "const a = document.getElementById('trades-csv');
             return fetch(a.href, {credentials: 'same-origin'})
               .then(r => r.text().then(t => [r.status, r.headers.get('content-type'), t]));",
        )
        .await;
    assert_eq!(text[0], 200, "{text}");
    assert_eq!(text[1], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(text[2].as_str().unwrap().as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The results page of the finished session `id` shows what `GET /api/sessions/{id}`
/// holds: every key figure with its exact wire text, one row per trade (sortable),
/// the equity, drawdown, candle and trade-return charts drawn, the monthly heatmap
/// and the yearly returns, the parameters, and a CSV download of the same trades.
async fn assert_results_page(browser: &Browser, app: &TestApp, bearer: &str, id: &str) {
    let (status, detail) = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}"),
            Some(bearer),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    if browser.url().await.path() != format!("/results/{id}") {
        browser.goto(&app.url(&format!("/results/{id}"))).await;
    }
    browser.find("#results[data-rendered='true']").await;

    // Key figures: each simulation_end field shown with the server's exact text.
    let metrics = detail["metrics"].as_object().expect("metrics");
    let shown = browser
        .run(
            "const out = {}; for (const e of document.querySelectorAll('[data-metric]')) out[e.dataset.metric] = e.textContent; return out;",
        )
        .await;
    for field in [
        "final_equity",
        "total_return_pct",
        "cagr_pct",
        "volatility_ann_pct",
        "sharpe_ratio",
        "sortino_ratio",
        "calmar_ratio",
        "max_drawdown_pct",
        "max_drawdown_duration_bars",
        "win_rate",
        "profit_factor",
        "avg_trade_pct",
        "total_trades",
        "exposure_pct",
        "total_commission",
        "buy_and_hold_return_pct",
    ] {
        let want = match &metrics[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(shown[field], json!(want), "data-metric={field}");
    }

    // Trades: one row each (the page shows 100 at a time), sortable.
    let trades = detail["trades"].as_array().expect("trades");
    let rows = browser
        .run("return document.querySelectorAll('#trades-body tr[data-trade]').length;")
        .await;
    assert_eq!(rows, json!(trades.len().min(100)));
    let first_pnl =
        "return document.querySelector('#trades-body tr[data-trade] td:nth-child(9)').textContent;";
    let max_pnl = trades
        .iter()
        .map(|t| t["pnl"].as_str().unwrap())
        .max_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()))
        .unwrap();
    let min_pnl = trades
        .iter()
        .map(|t| t["pnl"].as_str().unwrap())
        .min_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()))
        .unwrap();
    browser.click("th[data-key='pnl'] button").await;
    assert_eq!(
        browser
            .run("return document.querySelector(\"th[data-key='pnl']\").getAttribute('aria-sort');")
            .await,
        json!("descending")
    );
    assert_eq!(browser.run(first_pnl).await, json!(max_pnl));
    browser.click("th[data-key='pnl'] button").await;
    assert_eq!(browser.run(first_pnl).await, json!(min_pnl));
    browser.click("th[data-key='index'] button").await;

    // The charts drew their series: the equity line's blue, candles' green and red,
    // the drawdown's red, the histogram's bars.
    for (css, rgb) in [
        ("[data-chart='equity']", [0x29, 0x47, 0xd6]),
        ("[data-chart='candles']", [0x12, 0xb7, 0x6a]),
        ("[data-chart='candles']", [0xf0, 0x44, 0x38]),
        ("[data-chart='drawdown']", [0xf0, 0x44, 0x38]),
        ("[data-chart='trade-returns']", [0x12, 0xb7, 0x6a]),
    ] {
        assert!(
            canvas_has_colour(browser, css, rgb, 12).await,
            "{css} has no pixel of {rgb:?}"
        );
    }
    let symbols = detail["params"]["symbols"].as_array().unwrap().len();
    let charts = browser
        .run("return document.querySelectorAll(\"[data-chart='candles']\").length;")
        .await;
    assert_eq!(charts, json!(symbols));
    // The log-scale toggle redraws without losing the line.
    browser.click("#equity-log").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(canvas_has_colour(browser, "[data-chart='equity']", [0x29, 0x47, 0xd6], 12).await);

    // The monthly heatmap and the yearly returns, coloured by sign.
    let analytics = &detail["analytics"];
    let months = analytics["monthly_returns"].as_array().unwrap();
    let cells = browser
        .run(
            "return [...document.querySelectorAll(\"[data-chart='monthly'] td[data-period]\")].map(td => [td.dataset.period, td.className]);",
        )
        .await;
    let cells: BTreeMap<String, String> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().into(), c[1].as_str().unwrap().into()))
        .collect();
    let years = analytics["yearly_returns"].as_array().unwrap();
    assert_eq!(cells.len(), months.len() + years.len());
    for m in months.iter().chain(years) {
        let class = &cells[m["period"].as_str().unwrap()];
        let r: f64 = m["return_pct"].as_str().unwrap().parse().unwrap();
        let want = if r > 0.0 {
            "heat-p"
        } else if r < 0.0 {
            "heat-n"
        } else {
            "heat-0"
        };
        assert!(class.contains(want), "{m} is shown as {class}");
    }
    let yearly = browser
        .run("return document.querySelectorAll(\"[data-chart='yearly'] [data-period]\").length;")
        .await;
    assert_eq!(yearly, json!(years.len()));

    // The parameters, and the trades as CSV: the same as the API's.
    browser
        .wait_content("#params", detail["params"]["start_date"].as_str().unwrap())
        .await;
    let csv = csv_from_page(browser).await;
    assert_eq!(csv.len(), trades.len());
    for (row, trade) in csv.iter().zip(trades) {
        let trade = trade.as_object().unwrap();
        assert_eq!(
            row.keys().collect::<std::collections::BTreeSet<_>>(),
            trade.keys().collect(),
            "the CSV has every field"
        );
        for (k, v) in trade {
            let want = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            assert_eq!(row[k], want, "{k}");
        }
    }
}

#[actix_web::test]
async fn the_results_page_of_a_server_side_backtest() {
    let app = spawn().await;
    app.register_verified("rui@example.com", PASSWORD).await;
    let bearer = app.login_token("rui@example.com", PASSWORD).await;
    let id = goog_backtest(&app, &bearer).await;
    let browser = Browser::open().await;
    browser
        .sign_in(&app.url(""), "rui@example.com", PASSWORD)
        .await;
    // From the dashboard's list to the results.
    let link = format!("#sessions-body tr[data-session='{id}'] a");
    browser.click(&link).await;
    browser.wait_path(&format!("/results/{id}")).await;
    assert_results_page(&browser, &app, &bearer, &id).await;
    assert_eq!(
        browser.text("[data-metric='final_equity']").await,
        "194777.00"
    );
    assert_eq!(browser.text("[data-metric='total_trades']").await, "46");
    assert_eq!(
        browser
            .run("return document.querySelectorAll('tr[data-trade]').length;")
            .await,
        json!(46)
    );
    browser.wait_content("#params", "sma_crossover").await;
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_websocket_session_is_followed_then_shown_on_the_results_page() {
    let app = spawn().await;
    app.register_verified("mia@example.com", PASSWORD).await;
    let bearer = app.login_token("mia@example.com", PASSWORD).await;
    let mut ws = support::WsClient::connect(&app, &bearer).await;
    ws.until("connection_ready").await;
    let mut sma = support::sma::Sma::default();
    let sid = ws.start_session(support::sma::goog_start()).await;
    assert!(sma.drive(&mut ws, &sid, |seq| seq == 50).await.is_none());
    let browser = Browser::open().await;
    browser
        .sign_in(&app.url(""), "mia@example.com", PASSWORD)
        .await;
    browser.goto(&app.url(&format!("/results/{sid}"))).await;
    // Live: the page shows the progress and waits.
    browser.wait_text("[data-progress]", "50 of").await;
    sma.answer_pending(&mut ws, &sid).await;
    let end = sma
        .drive(&mut ws, &sid, |_| false)
        .await
        .expect("the run ends");
    // Then shows the results by itself, as the WebSocket client got them.
    browser.find("#results[data-rendered='true']").await;
    assert_eq!(
        browser.text("[data-metric='final_equity']").await,
        end["data"]["final_equity"].as_str().unwrap()
    );
    assert_results_page(&browser, &app, &bearer, &sid).await;
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn the_results_page_of_an_unknown_or_someone_elses_session() {
    let app = spawn().await;
    app.register_verified("kai@example.com", PASSWORD).await;
    let theirs = app.login_token("kai@example.com", PASSWORD).await;
    let id = goog_backtest(&app, &theirs).await;
    app.register_verified("lee@example.com", PASSWORD).await;
    let browser = Browser::open().await;
    browser
        .sign_in(&app.url(""), "lee@example.com", PASSWORD)
        .await;
    for unknown in [id.as_str(), "no-such-session"] {
        browser.goto(&app.url(&format!("/results/{unknown}"))).await;
        browser.find("#results[data-failed='true']").await;
        browser
            .wait_text("#results-message", "no such session")
            .await;
        assert_eq!(
            browser
                .run("return document.querySelectorAll('[data-metric], tr[data-trade]').length;")
                .await,
            json!(0)
        );
    }
    browser.close().await;
    app.cleanup().await;
}

/// Opens the New backtest page and waits for its form to be filled from the API.
async fn new_backtest_page(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/backtests/new")).await;
    browser.find("#backtest-form[data-ready]").await;
}

/// Registers `email`, signs in through the login form in a new browser, and keeps a
/// login's bearer token to check over the API what the browser did.
async fn signed_in_browser(app: &TestApp, email: &str) -> (String, Browser) {
    app.register_verified(email, PASSWORD).await;
    let bearer = app.login_token(email, PASSWORD).await;
    let browser = Browser::open().await;
    browser.sign_in(&app.url(""), email, PASSWORD).await;
    (bearer, browser)
}

/// Waits until the browser is at `/results/<id>`; the id.
async fn wait_results_path(browser: &Browser) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = browser.url().await;
        if let Some(id) = url.path().strip_prefix("/results/") {
            return id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the browser stayed at {url}: {}",
            browser.text("#backtest-message").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_new_backtest_form_offers_what_the_catalog_and_the_strategies_hold() {
    let app = spawn().await;
    app.register_verified("nia@example.com", PASSWORD).await;
    let bearer = app.login_token("nia@example.com", PASSWORD).await;
    let (_, strategies) = app
        .call(Method::GET, "/api/strategies", Some(&bearer), None)
        .await;
    let (_, catalog) = app
        .call(Method::GET, "/api/market-data", Some(&bearer), None)
        .await;
    let browser = Browser::open().await;
    browser
        .sign_in(&app.url(""), "nia@example.com", PASSWORD)
        .await;
    // The dashboard leads there.
    browser.click("#new-backtest").await;
    browser.wait_path("/backtests/new").await;
    browser.find("#backtest-form[data-ready]").await;

    let ids: Vec<Value> = strategies["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    let offered = browser
        .run("return [...document.querySelectorAll('#bt-strategy option')].map(o => o.value);")
        .await;
    assert_eq!(offered, Value::Array(ids));
    assert_eq!(
        browser
            .run("return document.getElementById('bt-strategy').value;")
            .await,
        "sma_crossover"
    );
    // Each parameter of the strategy is an input with its default and bounds.
    let sma = strategies["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "sma_crossover")
        .unwrap();
    for p in sma["params"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let input = browser
            .run(&format!(
                "const i = document.querySelector('input[name=\"param.{name}\"]');
                 return i && [i.value, i.min, i.max, i.step, !!document.querySelector('label[for=\"' + i.id + '\"]')];"
            ))
            .await;
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        assert_eq!(
            input,
            json!([
                text(&p["default"]),
                text(&p["min"]),
                text(&p["max"]),
                "1",
                true
            ]),
            "{name}"
        );
    }

    // The default provider's symbols, and the timeframes they can be served at.
    let provider = &catalog["providers"][0];
    let symbols: Vec<Value> = provider["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].clone())
        .collect();
    let boxes = browser
        .run("return [...document.querySelectorAll('input[name=symbols]')].map(b => b.value);")
        .await;
    assert_eq!(boxes, Value::Array(symbols));
    let timeframes = browser
        .run("return [...document.querySelectorAll('#bt-timeframe option')].map(o => o.value);")
        .await;
    let timeframes: Vec<&str> = timeframes
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        timeframes.contains(&"daily") && timeframes.contains(&"1h"),
        "{timeframes:?}"
    );
    assert!(
        !timeframes.contains(&"1min"),
        "nothing is stored by the minute: {timeframes:?}"
    );
    assert_eq!(
        browser
            .run("return document.getElementById('bt-timeframe').value;")
            .await,
        "daily"
    );
    // GOOG daily: the dates are bounded by its first and last bar.
    browser.click("label[for=bt-symbol-GOOG]").await;
    let dates =
        "const s = document.getElementById('bt-start'), e = document.getElementById('bt-end');
                 return [s.min, s.max, s.value, e.min, e.max, e.value];";
    assert_eq!(
        browser.run(dates).await,
        json!([
            "2004-08-19",
            "2013-03-01",
            "2004-08-19",
            "2004-08-19",
            "2013-03-01",
            "2013-03-01"
        ])
    );
    // GOOG is stored daily only: at 1h it cannot be picked, EURUSD can.
    browser.select("#bt-timeframe", "1h").await;
    let state = browser
        .run("return ['GOOG', 'EURUSD'].map(s => { const b = document.getElementById('bt-symbol-' + s); return [b.disabled, b.checked]; });")
        .await;
    assert_eq!(state, json!([[true, false], [false, false]]));
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_backtest_run_from_the_form_opens_its_results() {
    let app = spawn().await;
    let (bearer, browser) = signed_in_browser(&app, "oto@example.com").await;
    new_backtest_page(&browser, &app.url("")).await;
    browser.click("label[for=bt-symbol-GOOG]").await;
    browser.select("#bt-timeframe", "daily").await;
    browser.fill("#bt-capital", "100000").await;
    browser.select("#bt-strategy", "sma_crossover").await;
    browser.fill("input[name='param.fast']", "10").await;
    browser.fill("input[name='param.slow']", "20").await;
    browser.click("#backtest-submit").await;
    let id = wait_results_path(&browser).await;
    assert_results_page(&browser, &app, &bearer, &id).await;
    assert_eq!(
        browser.text("[data-metric='final_equity']").await,
        "194777.00"
    );
    assert_eq!(
        browser
            .run("return document.querySelectorAll('tr[data-trade]').length;")
            .await,
        json!(46)
    );
    browser.wait_content("#params", "sma_crossover").await;
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn the_new_backtest_form_explains_bad_input_and_creates_nothing() {
    let app = spawn().await;
    let (bearer, browser) = signed_in_browser(&app, "pia@example.com").await;
    new_backtest_page(&browser, &app.url("")).await;
    // No symbol.
    browser.click("#backtest-submit").await;
    browser
        .wait_text("#backtest-message", "Choose at least one symbol")
        .await;
    assert_eq!(
        browser
            .find("#backtest-message")
            .await
            .attr("role")
            .await
            .unwrap()
            .as_deref(),
        Some("alert")
    );
    browser.click("label[for=bt-symbol-GOOG]").await;
    // The start after the end.
    browser
        .run("document.getElementById('bt-start').value = '2012-01-03'; document.getElementById('bt-end').value = '2011-01-03'; return true;")
        .await;
    browser.click("#backtest-submit").await;
    browser
        .wait_text(
            "#backtest-message",
            "start date must be on or before the end date",
        )
        .await;
    // The server's own rule: fast below slow.
    browser
        .run("document.getElementById('bt-start').value = '2005-01-03'; document.getElementById('bt-end').value = '2010-12-31'; return true;")
        .await;
    browser.fill("input[name='param.fast']", "20").await;
    browser.fill("input[name='param.slow']", "20").await;
    browser.click("#backtest-submit").await;
    browser
        .wait_text(
            "#backtest-message",
            "parameter `fast` (20) must be less than `slow` (20)",
        )
        .await;
    assert_eq!(browser.url().await.path(), "/backtests/new");
    assert_eq!(browser.url().await.query(), None);
    let (_, list) = app
        .call(Method::GET, "/api/sessions", Some(&bearer), None)
        .await;
    assert_eq!(list["sessions"], json!([]), "{list}");
    browser.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_running_backtest_is_followed_across_a_reload_and_cancelled() {
    use market_data::{generate, parse_timestamp, write_layout, PriceEncoding, SyntheticSpec};
    // Four symbols of 400 days of 1-minute bars (2.3 million bar steps): long enough
    // to be caught running, reloaded and cancelled however fast the machine is.
    const SYMBOLS: [&str; 4] = ["SYNTH", "SYNTHB", "SYNTHC", "SYNTHD"];
    let synth = tempfile::tempdir().unwrap();
    let spec = SyntheticSpec::new(
        "SYNTH",
        market_data::Timeframe::Min1,
        parse_timestamp("2020-01-01").unwrap(),
        400 * 1440,
    );
    let candles = generate(&spec).candles;
    for symbol in SYMBOLS {
        write_layout(
            synth.path(),
            symbol,
            market_data::Timeframe::Min1,
            &candles,
            PriceEncoding::Float64,
        )
        .unwrap();
    }
    let app = support::spawn_app_with(Backend::Sqlite, |s| {
        s.market_data
            .roots
            .insert("synth".into(), synth.path().to_path_buf());
    })
    .await;
    let (bearer, browser) = signed_in_browser(&app, "quy@example.com").await;
    new_backtest_page(&browser, &app.url("")).await;
    browser.select("#bt-provider", "synth").await;
    browser.select("#bt-timeframe", "1min").await;
    for symbol in SYMBOLS {
        browser
            .click(&format!("label[for=bt-symbol-{symbol}]"))
            .await;
    }
    browser.fill("input[name='param.fast']", "5").await;
    browser.fill("input[name='param.slow']", "50").await;
    browser.click("#backtest-submit").await;
    browser.wait_text("[data-progress]", "running").await;
    let id = browser.text("#run-id").await;
    assert!(!id.is_empty());
    let url = browser.url().await;
    assert_eq!(url.query(), Some(format!("run={id}").as_str()));
    assert_eq!(
        browser
            .run("return document.querySelectorAll('[data-progress] progress').length;")
            .await,
        json!(1)
    );
    // A reload follows the same run.
    browser.goto(url.as_str()).await;
    browser.wait_text("[data-progress]", "running").await;
    assert_eq!(browser.text("#run-id").await, id);
    browser.click("#backtest-cancel").await;
    browser.wait_text("#backtest-message", "cancelled").await;
    assert_eq!(browser.url().await.path(), "/backtests/new");
    assert_eq!(browser.url().await.query(), None);
    assert!(browser
        .visible("#backtest-submit")
        .await
        .is_enabled()
        .await
        .unwrap());
    let (status, run) = app
        .call(
            Method::GET,
            &format!("/api/backtests/{id}"),
            Some(&bearer),
            None,
        )
        .await;
    assert_eq!(
        (status, run["state"].as_str()),
        (200, Some("stopped")),
        "{run}"
    );
    browser.close().await;
    app.cleanup().await;
}
