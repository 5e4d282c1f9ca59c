//! A real browser for the console's tests: Debian's headless Chromium driven over
//! WebDriver (fantoccini) through `chromedriver`. One chromedriver process serves a
//! whole test binary (started on first use on a free port, stopped when the binary
//! exits); each test opens its own browser session, at most two at a time.
//!
//! When `/usr/bin/chromium` or `/usr/bin/chromedriver` is missing the tests fail,
//! telling to run `scripts/test.sh` (which installs both with apt-get): they never
//! skip.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Where Debian's `chromium` package puts the browser (`CHROMIUM` overrides it).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver (`CHROMEDRIVER` overrides).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the waits of these tests give a page.
pub const PATIENCE: Duration = Duration::from_secs(15);

fn path_of(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// The running chromedriver: its port, and the pipe whose closing (when the test
/// binary exits, however it exits) makes the wrapper shell stop it.
struct Driver {
    port: u16,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn start_driver() -> Driver {
    let chromium = path_of("CHROMIUM", CHROMIUM);
    let chromedriver = path_of("CHROMEDRIVER", CHROMEDRIVER);
    for (path, package) in [(&chromium, "chromium"), (&chromedriver, "chromium-driver")] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: the console's browser tests need Debian's `chromium` and \
             `chromium-driver`. Run scripts/test.sh (it installs them), or as root: \
             apt-get update && apt-get install -y chromium chromium-driver ({package})"
        );
    }
    let port = free_port();
    // The shell starts chromedriver, then waits for its standard input to close: the
    // test binary holds the other end, so chromedriver (and the browsers it started)
    // stops with the binary even when a test panics.
    // chromedriver runs in a process group of its own, which its browsers join, so
    // the whole group goes.
    let script = format!(
        "setsid \"$0\" --port={port} --allowed-ips=127.0.0.1 --log-level=OFF >/dev/null 2>&1 & \
         pid=$!; cat >/dev/null; kill -TERM -- -$pid 2>/dev/null || kill $pid 2>/dev/null; wait $pid"
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&chromedriver)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{chromedriver} exited at start ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{chromedriver} did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        port,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    }
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(start_driver)
}

/// At most this many browsers at once per test binary (the machine has two cores).
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(2))
}

/// One headless browser session; closed on drop too (a test that panics leaves no
/// browser behind).
pub struct Browser {
    pub client: Client,
    session: Option<String>,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

/// Ends a WebDriver session with a plain blocking request (usable from `Drop`).
fn delete_session(port: u16, session: &str) {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let port = driver().port;
            let _ = std::thread::spawn(move || delete_session(port, &session)).join();
        }
    }
}

impl Browser {
    /// A browser with a 1280x800 window.
    pub async fn open() -> Browser {
        Self::sized(1280, 800).await
    }

    /// A browser whose page is `width` x `height` CSS pixels: a desktop window, or
    /// below 600 pixels wide a phone (Chromium's mobile emulation, so the page gets
    /// exactly that viewport).
    pub async fn sized(width: u32, height: u32) -> Browser {
        let slot = slots()
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let driver = driver();
        let mut options = json!({
            "binary": path_of("CHROMIUM", CHROMIUM),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--lang=en-US",
                format!("--window-size={width},{height}"),
            ],
        });
        if width < 600 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "touch": true},
            });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver opened no browser session: {e}"));
        if width >= 600 {
            // The window's size includes its frame: size it so the page gets exactly
            // width x height.
            let _ = client.set_window_size(width, height).await;
            let inner = client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await
                .ok()
                .and_then(|v| Some((v[0].as_u64()? as u32, v[1].as_u64()? as u32)));
            if let Some((w, h)) = inner {
                let _ = client
                    .set_window_size(2 * width - w.min(2 * width), 2 * height - h.min(2 * height))
                    .await;
            }
        }
        let session = client.session_id().await.ok().flatten();
        Browser {
            client,
            session,
            _slot: slot,
        }
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("the current URL")
    }

    /// Waits until the current path is `path`; the URL then.
    pub async fn wait_path(&self, path: &str) -> url::Url {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.url().await;
            if url.path() == path {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser stayed at {url}, not {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element `css`, waited for.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    /// Waits until `css` is displayed.
    pub async fn visible(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false) {
                    return el;
                }
            }
            assert!(Instant::now() < deadline, "`{css}` was never displayed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the (emptied) field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.visible(css).await;
        field.clear().await.expect("clear the field");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into `{css}`: {e}"));
    }

    /// Clicks `css` once it is displayed, scrolled to the middle of the window first
    /// (WebDriver scrolls it only to an edge, where the sticky top bar may cover it).
    pub async fn click(&self, css: &str) {
        let el = self.visible(css).await;
        let arg = serde_json::to_value(&el).expect("an element reference");
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'});",
                vec![arg],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot scroll to `{css}`: {e}"));
        el.click()
            .await
            .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Chooses the option with `value` in the `<select>` `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.visible(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("no option `{value}` in `{css}`: {e}"));
    }

    /// The text of `css`, now.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// Waits until the text of `css` contains `part` (in any case: the text is as
    /// rendered, CSS `text-transform` included); the whole text then.
    pub async fn wait_text(&self, css: &str, part: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.to_lowercase().contains(&part.to_lowercase()) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never said `{part}`; it says `{text}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` in the page; its JSON result.
    pub async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The value of the cookie `name`, HttpOnly ones included (the WebDriver cookie
    /// API sees them; page scripts do not).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .expect("the browser's cookies")
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Signs in through the login form at `base` and waits for the dashboard.
    pub async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", password).await;
        self.wait_server_choices().await;
        self.click("#login-submit").await;
        self.wait_path("/").await;
        self.wait_content("#user-email", email).await;
    }

    /// Waits until the `textContent` of `css` contains `part`, whether or not it is
    /// displayed now (the sidebar of a phone-width page is off screen).
    pub async fn wait_content(&self, css: &str, part: &str) {
        let deadline = Instant::now() + PATIENCE;
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            serde_json::to_string(css).unwrap()
        );
        loop {
            let text = self.run(&script).await;
            let text = text.as_str().unwrap_or("");
            if text.contains(part) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never held `{part}`; it holds `{text}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the server dropdown is filled from `GET /auth/servers`.
    pub async fn wait_server_choices(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let filled = self
                .run("const s = document.querySelector('select[name=server]'); return !!s && !s.disabled && s.value !== '';")
                .await;
            if filled == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "the server list never loaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("a screenshot")
    }

    /// Ends the browser session.
    pub async fn close(mut self) {
        self.session = None;
        let _ = self.client.clone().close().await;
    }
}
