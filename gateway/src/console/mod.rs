//! The web console: the pages people use, served at `/`, `/login`, `/account`, ...
//! from files embedded in the binary (`gateway/console/`), so `cargo run` serves them
//! from anywhere and nothing is fetched from elsewhere.
//!
//! Each page is one entry of [`PAGES`]: a route, its body (`pages/<name>.html`), its
//! script (`js/pages/<name>.js`, an ES module), the layout that frames it (the app
//! shell with its navigation, or the sign-in card) and who may open it. A page for
//! signed-in people answers 303 to `/login?next=<path>` without a valid login cookie;
//! the sign-in page sends people who are signed in on to `next` (a path on this site
//! only). Pages are `Cache-Control: no-store`; assets under `/assets/` carry an ETag
//! and are revalidated (`no-cache`). Every answer carries the security headers of
//! [`crate::middleware::security`]: scripts and styles come only from `/assets/`, so
//! the pages hold no inline script, event handler or `style` attribute.
//!
//! Adding a page: its HTML body and script, and an entry here.

mod assets;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::browser::{self, ACCESS_COOKIE};
use crate::errors::HttpError;
use crate::state::AppState;

pub use assets::{asset, content_type, Asset};

/// The frame around a page's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The signed-in app: sidebar navigation, the user and log-out (`layouts/app.html`).
    App,
    /// A centred card for signing in and account links (`layouts/auth.html`).
    Auth,
}

impl Layout {
    fn file(self) -> &'static str {
        match self {
            Layout::App => "layouts/app.html",
            Layout::Auth => "layouts/auth.html",
        }
    }
}

/// Who may open a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Signed-in people; anyone else is sent to `/login?next=<path>`.
    SignedIn,
    /// The sign-in page: signed-in people are sent on to `next` (or `/`).
    SignIn,
}

/// One page of the console.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// The route (an actix path pattern: `/results/{id}` works).
    pub path: &'static str,
    /// The body is `pages/<name>.html`, the script `js/pages/<name>.js`.
    pub name: &'static str,
    /// The document title and heading.
    pub title: &'static str,
    /// The frame.
    pub layout: Layout,
    /// Who may open it.
    pub access: Access,
    /// The icon (an id in `img/icons.svg`) of its entry in the app's navigation;
    /// pages without one are not listed there.
    pub nav_icon: Option<&'static str>,
}

impl Page {
    /// The embedded file of the page's body.
    pub fn body_file(&self) -> String {
        format!("pages/{}.html", self.name)
    }

    /// The embedded file of the page's script.
    pub fn script_file(&self) -> String {
        format!("js/pages/{}.js", self.name)
    }
}

/// Every page, in the order of the navigation.
pub const PAGES: &[Page] = &[
    Page {
        path: "/",
        name: "dashboard",
        title: "Dashboard",
        layout: Layout::App,
        access: Access::SignedIn,
        nav_icon: Some("i-dashboard"),
    },
    Page {
        path: "/backtests/new",
        name: "new-backtest",
        title: "New backtest",
        layout: Layout::App,
        access: Access::SignedIn,
        nav_icon: Some("i-play"),
    },
    Page {
        path: "/account",
        name: "account",
        title: "Account",
        layout: Layout::App,
        access: Access::SignedIn,
        nav_icon: Some("i-account"),
    },
    Page {
        path: "/results/{id}",
        name: "results",
        title: "Results",
        layout: Layout::App,
        access: Access::SignedIn,
        nav_icon: None,
    },
    Page {
        path: "/login",
        name: "login",
        title: "Sign in",
        layout: Layout::Auth,
        access: Access::SignIn,
        nav_icon: None,
    },
    Page {
        path: "/register",
        name: "register",
        title: "Create your account",
        layout: Layout::Auth,
        access: Access::Public,
        nav_icon: None,
    },
    Page {
        path: "/verify-email",
        name: "verify-email",
        title: "Verify your email",
        layout: Layout::Auth,
        access: Access::Public,
        nav_icon: None,
    },
    Page {
        path: "/forgot-password",
        name: "forgot-password",
        title: "Reset your password",
        layout: Layout::Auth,
        access: Access::Public,
        nav_icon: None,
    },
    Page {
        path: "/reset-password",
        name: "reset-password",
        title: "Choose a new password",
        layout: Layout::Auth,
        access: Access::Public,
        nav_icon: None,
    },
];

/// Registers every page and `/assets/{path}`, for GET and HEAD.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let refuse = || {
        web::to(|| async {
            Err::<HttpResponse, _>(HttpError::method_not_allowed(&["get", "head"]))
        })
    };
    for page in PAGES {
        let handler = move |req: HttpRequest| serve(req, page);
        cfg.service(
            web::resource(page.path)
                .route(web::get().to(handler))
                .route(web::head().to(handler))
                .default_service(refuse()),
        );
    }
    cfg.service(
        web::resource("/assets/{path:.*}")
            .route(web::get().to(assets::serve))
            .route(web::head().to(assets::serve))
            .default_service(refuse()),
    );
}

/// Whether the request carries a valid, unrevoked login cookie.
fn signed_in(req: &HttpRequest, state: &AppState) -> bool {
    let Some(token) = browser::cookie(req, ACCESS_COOKIE) else {
        return false;
    };
    state
        .jwt
        .verify(&token)
        .is_ok_and(|claims| claims.sid.is_some() && !state.revocations.refuses_token(&claims))
}

/// `next` if it is a path on this site (`/...`, not `//host` or `/\host`; printable
/// ASCII only, as the console's paths are), for sending people on after signing in.
pub fn safe_next(next: &str) -> Option<&str> {
    let on_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.bytes().all(|b| b.is_ascii_graphic());
    on_site.then_some(next)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn serve(req: HttpRequest, page: &'static Page) -> Result<HttpResponse, HttpError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(HttpError::internal)?;
    match page.access {
        Access::Public => {}
        Access::SignedIn if !signed_in(&req, state) => {
            let here = match req.query_string() {
                "" => req.path().to_string(),
                query => format!("{}?{query}", req.path()),
            };
            let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            return Ok(see_other(&format!("/login?next={next}")));
        }
        Access::SignedIn => {}
        Access::SignIn if signed_in(&req, state) => {
            let next = url::form_urlencoded::parse(req.query_string().as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned());
            let to = next.as_deref().and_then(safe_next).unwrap_or("/");
            return Ok(see_other(to));
        }
        Access::SignIn => {}
    }
    let html = rendered(page).ok_or_else(|| {
        tracing::error!(
            page = page.name,
            "console page is missing from the embedded files"
        );
        HttpError::internal()
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(web::Bytes::from_static(html.as_bytes())))
}

/// The page in its layout, made once.
fn rendered(page: &Page) -> Option<&'static str> {
    static PAGES_HTML: OnceLock<BTreeMap<&'static str, Option<String>>> = OnceLock::new();
    PAGES_HTML
        .get_or_init(|| PAGES.iter().map(|p| (p.path, render(p))).collect())
        .get(page.path)
        .and_then(|html| html.as_deref())
}

/// The navigation of the app layout, `current` marked.
fn navigation(current: &Page) -> String {
    PAGES
        .iter()
        .filter_map(|p| p.nav_icon.map(|icon| (p, icon)))
        .map(|(p, icon)| {
            let here = if p.path == current.path {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<li><a class=\"nav-link\" href=\"{}\"{here}><svg class=\"icon\" aria-hidden=\"true\"><use href=\"/assets/img/icons.svg#{icon}\"></use></svg><span>{}</span></a></li>",
                p.path, p.title
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The page's body in its layout: `{{title}}`, `{{page}}`, `{{script}}`, `{{nav}}`
/// and `{{content}}` filled in. `None` when a file is missing.
pub fn render(page: &Page) -> Option<String> {
    let layout = asset(page.layout.file())?.text()?;
    let body = asset(&page.body_file())?.text()?;
    asset(&page.script_file())?;
    Some(
        layout
            .replace("{{title}}", page.title)
            .replace("{{page}}", page.name)
            .replace("{{script}}", &format!("/assets/{}", page.script_file()))
            .replace("{{nav}}", &navigation(page))
            .replace("{{content}}", &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_with_its_script() {
        for page in PAGES {
            let html = render(page).unwrap_or_else(|| panic!("{} renders", page.name));
            assert!(!html.contains("{{"), "{}: a placeholder is left", page.name);
            assert!(
                html.contains(&format!("src=\"/assets/js/pages/{}.js\"", page.name)),
                "{}",
                page.name
            );
        }
    }

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for ok in ["/", "/account", "/results/abc?x=1"] {
            assert_eq!(safe_next(ok), Some(ok));
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "account",
            "/a\nb",
            "/a b",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
