//! Account mail over SMTP, through a real SMTP exchange with a minimal mail sink in
//! this test (EHLO, AUTH, MAIL, RCPT, DATA, QUIT on a local socket): registering
//! through the running gateway mails a verification link whose token verifies the
//! address; the request never waits for the mail server; transient refusals are
//! retried and permanent ones are not; a draining node sends what it has queued, and
//! what answered requests are still looking up, before it stops; neither the SMTP password nor the token reaches
//! the logs; `[smtp]` settings are validated naming the key.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use gateway::config::Settings;
use serde_json::{json, Value};
use support::{Backend, TestApp};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

const SMTP_USER: &str = "mailer";
const SMTP_PASSWORD: &str = "smtp-password-never-logged";
const PASSWORD: &str = "a long enough password";
const VERIFY_URL: &str = "https://app.simutrador.test/verify-email";
const PASSWORD_URL: &str = "https://app.simutrador.test/set-password";

/// One message the sink accepted.
#[derive(Debug)]
struct Delivered {
    /// Decoded `AUTH PLAIN` or `AUTH LOGIN` credentials, if the client authenticated.
    auth: Option<(String, String)>,
    from: String,
    to: Vec<String>,
    /// The message as sent after DATA (dot-stuffing removed).
    data: String,
}

/// How the sink misbehaves.
#[derive(Default)]
struct Behaviour {
    /// The first this many `MAIL FROM` commands are refused with `451` (transient).
    transient_failures: AtomicU32,
    /// `RCPT TO` this address is refused with `550` (permanent).
    refused_recipient: Option<&'static str>,
}

/// A minimal SMTP server on a free local port.
struct Sink {
    port: u16,
    delivered: mpsc::UnboundedReceiver<Delivered>,
    /// Every connection waits for a permit before greeting, so a test can hold the
    /// mail server still.
    gate: Arc<Semaphore>,
    /// `MAIL FROM` commands received (one per delivery attempt).
    mail_commands: Arc<AtomicU32>,
}

impl Sink {
    async fn start(behaviour: Behaviour, open: bool) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, delivered) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(if open { 1000 } else { 0 }));
        let mail_commands = Arc::new(AtomicU32::new(0));
        let behaviour = Arc::new(behaviour);
        let (g, m) = (Arc::clone(&gate), Arc::clone(&mail_commands));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (tx, g, m, b) = (
                    tx.clone(),
                    Arc::clone(&g),
                    Arc::clone(&m),
                    Arc::clone(&behaviour),
                );
                tokio::spawn(async move {
                    let Ok(_permit) = g.acquire().await else {
                        return;
                    };
                    let _ = serve(socket, tx, m, b).await;
                });
            }
        });
        Sink {
            port,
            delivered,
            gate,
            mail_commands,
        }
    }

    async fn next(&mut self) -> Delivered {
        tokio::time::timeout(Duration::from_secs(20), self.delivered.recv())
            .await
            .expect("a mail within 20 s")
            .expect("sink running")
    }
}

fn decode64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64 from the client");
    String::from_utf8(bytes).unwrap()
}

/// One SMTP session (RFC 5321), just enough for a real client.
async fn serve(
    socket: tokio::net::TcpStream,
    delivered: mpsc::UnboundedSender<Delivered>,
    mail_commands: Arc<AtomicU32>,
    behaviour: Arc<Behaviour>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut auth = None;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: &str = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n"
        } else if let Some(initial) = upper.strip_prefix("AUTH PLAIN ") {
            // `\0user\0password`
            let decoded = decode64(&command[command.len() - initial.len()..]);
            let mut parts = decoded.split('\0').skip(1);
            auth = Some((
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            ));
            "235 2.7.0 authenticated\r\n"
        } else if upper == "AUTH LOGIN" {
            let user = challenge(&mut lines, &mut write, b"334 VXNlcm5hbWU6\r\n").await?;
            let password = challenge(&mut lines, &mut write, b"334 UGFzc3dvcmQ6\r\n").await?;
            auth = Some((user, password));
            "235 2.7.0 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_commands.fetch_add(1, Ordering::SeqCst);
            let refuse = behaviour
                .transient_failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                "451 4.3.0 try again later\r\n"
            } else {
                from = address(&command);
                to.clear();
                "250 2.1.0 ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&command);
            if behaviour.refused_recipient == Some(rcpt.as_str()) {
                "550 5.1.1 no such mailbox\r\n"
            } else {
                to.push(rcpt);
                "250 2.1.5 ok\r\n"
            }
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let _ = delivered.send(Delivered {
                auth: auth.clone(),
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 2.0.0 queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.1 not implemented\r\n"
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Sends an AUTH challenge and returns the decoded answer.
async fn challenge(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    prompt: &[u8],
) -> std::io::Result<String> {
    write.write_all(prompt).await?;
    let mut answer = String::new();
    lines.read_line(&mut answer).await?;
    Ok(decode64(&answer))
}

/// `x@y` from `MAIL FROM:<x@y> ...` or `RCPT TO:<x@y>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.find('>').unwrap_or(command.len());
    command[start..end].to_string()
}

/// The body of `data` with quoted-printable undone (the encoding lettre picks when a
/// line is long).
fn body(data: &str) -> String {
    let (headers, body) = data.split_once("\r\n\r\n").expect("headers and body");
    if !headers
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
    {
        return body.to_string();
    }
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("=XX escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    let headers = data.split_once("\r\n\r\n")?.0;
    headers.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `sev_` token in `text`.
fn token_in(text: &str) -> Option<String> {
    token_with(text, "sev_")
}

/// The token starting with `prefix` in `text`.
fn token_with(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)?;
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    )
}

fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    support::logs::captured_logs("debug")
}

fn log_text(logs: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}

/// The `simutrador::notify` log events about `email`.
fn notify_events(logs: &Arc<Mutex<Vec<u8>>>, email: &str) -> Vec<Value> {
    log_text(logs)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["target"] == "simutrador::notify" && e["email"] == email)
        .collect()
}

/// What `check` finds, polling for up to 20 s.
async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(found) = check() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not seen within 20 s");
}

async fn spawn(sink: &Sink) -> TestApp {
    let port = sink.port;
    support::spawn_app_with(Backend::Sqlite, move |s| {
        s.smtp.host = "127.0.0.1".into();
        s.smtp.port = port;
        s.smtp.security = "none".parse().ok();
        s.smtp.username = SMTP_USER.into();
        s.smtp.password = auth::Secret::new(SMTP_PASSWORD.into());
        s.smtp.from = "SimuTrador <no-reply@simutrador.test>".into();
        s.smtp.verify_url = VERIFY_URL.into();
        s.smtp.password_url = PASSWORD_URL.into();
    })
    .await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let mut res = awc::Client::new()
        .post(app.url(path))
        .timeout(Duration::from_secs(5))
        .send_json(&body)
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

async fn register(app: &TestApp, email: &str) {
    let (status, body) = post(
        app,
        "/auth/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

#[actix_web::test]
async fn registration_mails_a_working_verification_link() {
    let logs = captured_logs();
    // The mail server does not even greet until the gate opens: the registration
    // must answer anyway (awc gives up after 5 s, the mail client after 20 s).
    let mut sink = Sink::start(Behaviour::default(), false).await;
    let app = spawn(&sink).await;
    register(&app, "Ann@Example.com").await;
    assert_eq!(sink.mail_commands.load(Ordering::SeqCst), 0);
    sink.gate.add_permits(1000);

    let mail = sink.next().await;
    assert_eq!(
        mail.auth,
        Some((SMTP_USER.to_string(), SMTP_PASSWORD.to_string()))
    );
    assert_eq!(mail.from, "no-reply@simutrador.test");
    assert_eq!(mail.to, ["ann@example.com"]);
    assert_eq!(
        header(&mail.data, "From"),
        Some("SimuTrador <no-reply@simutrador.test>")
    );
    assert_eq!(header(&mail.data, "To"), Some("ann@example.com"));
    assert_eq!(
        header(&mail.data, "Subject"),
        Some("Verify your SimuTrador email address")
    );
    let text = body(&mail.data);
    let token = token_in(&text).expect("a verification token in the mail");
    assert!(
        auth::token::well_formed(&token, auth::token::VERIFICATION_PREFIX),
        "{token}"
    );
    assert!(
        text.contains(&format!("{VERIFY_URL}?token={token}")),
        "the link carries the token: {text}"
    );

    // The mailed token verifies the address (once), and the account can log in.
    let (status, verified) = post(&app, "/auth/verify-email", json!({ "token": token })).await;
    assert_eq!((status, &verified["email_verified"]), (200, &json!(true)));
    assert_eq!(verified["email"], "ann@example.com");
    assert_eq!(
        post(&app, "/auth/verify-email", json!({ "token": token }))
            .await
            .0,
        400
    );
    let (status, _) = post(
        &app,
        "/auth/login",
        json!({"email": "ann@example.com", "password": PASSWORD, "server": "default"}),
    )
    .await;
    assert_eq!(status, 200);

    // Registering the address again answers the same, and its owner is told by mail,
    // without a token.
    register(&app, "ann@example.com").await;
    let again = sink.next().await;
    assert_eq!(again.to, ["ann@example.com"]);
    assert_eq!(
        header(&again.data, "Subject"),
        Some("Your SimuTrador account already exists")
    );
    assert_eq!(token_in(&body(&again.data)), None);

    // "mail sent" is logged once the client has also said QUIT.
    let sent = eventually(|| {
        let sent: Vec<_> = notify_events(&logs, "ann@example.com")
            .into_iter()
            .filter(|e| e["message"] == "mail sent")
            .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        (sent.len() == 2).then_some(sent)
    })
    .await;
    assert_eq!(sent, ["verification", "already_registered"]);
    let text = log_text(&logs);
    assert!(!text.contains(SMTP_PASSWORD), "SMTP password in the logs");
    assert!(!text.contains(&token), "verification token in the logs");
    app.cleanup().await;
}

#[actix_web::test]
async fn a_lost_link_can_be_sent_again() {
    let mut sink = Sink::start(Behaviour::default(), true).await;
    let app = spawn(&sink).await;
    register(&app, "bob@example.com").await;
    let first = token_in(&body(&sink.next().await.data)).unwrap();

    // Same answer for an address without an account (and nothing is sent), then a
    // new link for the unverified one.
    for email in ["nobody@example.com", "bob@example.com"] {
        let (status, answer) =
            post(&app, "/auth/resend-verification", json!({ "email": email })).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("verification_sent"))
        );
    }
    let mail = sink.next().await;
    assert_eq!(
        mail.to,
        ["bob@example.com"],
        "nothing for the unknown address"
    );
    let second = token_in(&body(&mail.data)).unwrap();
    assert_ne!(first, second);
    let (status, _) = post(&app, "/auth/verify-email", json!({ "token": second })).await;
    assert_eq!(status, 200);

    // Once verified, asking again sends nothing: the next mail is someone else's.
    let (status, _) = post(
        &app,
        "/auth/resend-verification",
        json!({ "email": "bob@example.com" }),
    )
    .await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    register(&app, "cy@example.com").await;
    assert_eq!(sink.next().await.to, ["cy@example.com"]);
    app.cleanup().await;
}

/// The `spw_` token of the next mail, which must have `subject` and link to the
/// password page with it.
async fn password_mail(sink: &mut Sink, to: &str, subject: &str) -> String {
    let mail = sink.next().await;
    assert_eq!(mail.to, [to]);
    assert_eq!(header(&mail.data, "Subject"), Some(subject));
    let text = body(&mail.data);
    let token = token_with(&text, "spw_").expect("a password token in the mail");
    assert!(
        auth::token::well_formed(&token, auth::token::PASSWORD_PREFIX),
        "{token}"
    );
    assert!(
        text.contains(&format!("{PASSWORD_URL}?token={token}")),
        "{text}"
    );
    token
}

async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    post(
        app,
        "/auth/login",
        json!({"email": email, "password": password, "server": "default"}),
    )
    .await
}

#[actix_web::test]
async fn forgotten_passwords_and_invitations_are_set_by_mail() {
    let logs = captured_logs();
    let mut sink = Sink::start(Behaviour::default(), true).await;
    let app = spawn(&sink).await;
    register(&app, "fay@example.com").await;
    let verification = token_in(&body(&sink.next().await.data)).unwrap();
    assert_eq!(
        post(&app, "/auth/verify-email", json!({ "token": verification }))
            .await
            .0,
        200
    );
    let (status, session) = login(&app, "fay@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let access = session["access_token"].as_str().unwrap().to_string();

    // The same answer for an address without an account, which gets nothing.
    for email in ["nobody@example.com", "fay@example.com"] {
        let (status, answer) = post(&app, "/auth/password/forgot", json!({ "email": email })).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("reset_sent"))
        );
    }
    let token = password_mail(
        &mut sink,
        "fay@example.com",
        "Reset your SimuTrador password",
    )
    .await;

    // A weak password is refused and the token kept; a good one is set, once.
    let reset = |password: &'static str| {
        let token = token.clone();
        let app = &app;
        async move {
            post(
                app,
                "/auth/password/reset",
                json!({ "token": token, "password": password }),
            )
            .await
        }
    };
    let (status, body) = reset("short").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("INVALID_PARAMS")),
        "{body}"
    );
    let (status, body) = reset("a new long password").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("password_set")),
        "{body}"
    );
    assert_eq!(reset("another long password").await.0, 400, "single use");
    assert_eq!(login(&app, "fay@example.com", PASSWORD).await.0, 401);
    assert_eq!(
        login(&app, "fay@example.com", "a new long password")
            .await
            .0,
        200
    );
    // The login session from before the reset has ended: its access token is refused.
    assert!(
        app.refused_within_a_second("/auth/sessions", &access).await,
        "the old session's token still works after the reset"
    );

    // An operator invites a user without a password; the mailed token sets one and
    // proves the address, so the user can log in.
    let operator = app.token(&app.admin_key).await;
    let res = awc::Client::new()
        .post(app.url("/admin/users"))
        .insert_header(("Authorization", format!("Bearer {operator}")))
        .send_json(&json!({ "email": "Invited@Example.com" }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let token = password_mail(
        &mut sink,
        "invited@example.com",
        "Your SimuTrador account is ready",
    )
    .await;
    assert_eq!(
        login(&app, "invited@example.com", "my own password")
            .await
            .0,
        401
    );
    let (status, body) = post(
        &app,
        "/auth/password/reset",
        json!({ "token": token, "password": "my own password" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "invited@example.com");
    assert_eq!(
        login(&app, "invited@example.com", "my own password")
            .await
            .0,
        200
    );

    let text = log_text(&logs);
    assert!(!text.contains(&token), "password token in the logs");
    app.cleanup().await;
}

#[actix_web::test]
async fn a_draining_node_sends_the_mail_it_has_queued() {
    // The mail server holds still: the verification link is queued when shutdown
    // begins, and the node must not exit before it goes out.
    let mut sink = Sink::start(Behaviour::default(), false).await;
    let mut app = spawn(&sink).await;
    register(&app, "dora@example.com").await;
    // Answered at once; the lookup that mails the reset runs after the answer.
    let (status, _) = post(
        &app,
        "/auth/password/forgot",
        json!({ "email": "dora@example.com" }),
    )
    .await;
    assert_eq!(status, 202);
    app.shutdown.shutdown();
    let stopped = app.stopped.take().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stopped.is_finished(), "stopped with the mail still queued");
    sink.gate.add_permits(1000);
    stopped.await.unwrap().unwrap();
    // Both sent before the node finished stopping, not after.
    let mut subjects = Vec::new();
    while let Ok(mail) = sink.delivered.try_recv() {
        assert_eq!(mail.to, ["dora@example.com"]);
        subjects.push(
            header(&mail.data, "Subject")
                .unwrap_or_default()
                .to_string(),
        );
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Reset your SimuTrador password",
            "Verify your SimuTrador email address"
        ]
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn transient_refusals_are_retried_and_permanent_ones_are_not() {
    let logs = captured_logs();
    let mut sink = Sink::start(
        Behaviour {
            transient_failures: AtomicU32::new(1),
            refused_recipient: Some("bounce@example.com"),
        },
        true,
    )
    .await;
    let app = spawn(&sink).await;

    // 451 to the first attempt; the second, a second later, goes through.
    register(&app, "retry@example.com").await;
    let mail = sink.next().await;
    assert_eq!(mail.to, ["retry@example.com"]);
    assert!(token_in(&body(&mail.data)).is_some());
    assert_eq!(sink.mail_commands.load(Ordering::SeqCst), 2);
    let events = eventually(|| {
        let events = notify_events(&logs, "retry@example.com");
        (events.len() == 2).then_some(events)
    })
    .await;
    let outcome: Vec<_> = events
        .iter()
        .map(|e| (e["message"].clone(), e["attempt"].clone()))
        .collect();
    assert_eq!(
        outcome,
        [
            (json!("mail not sent"), json!(1)),
            (json!("mail sent"), json!(2))
        ]
    );
    assert_eq!(events[0]["will_retry"], true);
    assert!(events[0]["error"].as_str().unwrap().contains("451"));

    // 550 for the recipient: logged once, not retried.
    register(&app, "bounce@example.com").await;
    let refused = eventually(|| notify_events(&logs, "bounce@example.com").pop()).await;
    assert_eq!(
        (&refused["message"], &refused["will_retry"]),
        (&json!("mail not sent"), &json!(false))
    );
    assert!(refused["error"].as_str().unwrap().contains("550"));
    // Past the first retry delay (1 s), still one attempt for it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mail_commands.load(Ordering::SeqCst), 3);
    assert_eq!(notify_events(&logs, "bounce@example.com").len(), 1);
    assert!(sink.delivered.try_recv().is_err(), "nothing else delivered");
    app.cleanup().await;
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, gateway::config::ConfigError> {
    Settings::load_from(
        None,
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

#[test]
fn smtp_settings_are_validated_naming_the_key() {
    let good = [
        ("SIMUTRADOR__SMTP__HOST", "smtp.example.com"),
        ("SIMUTRADOR__SMTP__PORT", "587"),
        ("SIMUTRADOR__SMTP__SECURITY", "starttls"),
        ("SIMUTRADOR__SMTP__USERNAME", "mailer"),
        ("SIMUTRADOR__SMTP__PASSWORD", SMTP_PASSWORD),
        (
            "SIMUTRADOR__SMTP__FROM",
            "SimuTrador <no-reply@example.com>",
        ),
        ("SIMUTRADOR__SMTP__VERIFY_URL", VERIFY_URL),
    ];
    let settings = load(&good).unwrap();
    assert_eq!(settings.smtp.password.expose(), SMTP_PASSWORD);
    assert!(
        !format!("{settings:?}").contains(SMTP_PASSWORD),
        "Debug of the settings shows the SMTP password"
    );
    // The defaults: no host, the log notifier; the other keys are not checked then.
    let defaults = load(&[("SIMUTRADOR__SMTP__SECURITY", "pigeon")]).unwrap();
    assert_eq!(defaults.smtp.host, "");

    let with = |key: &'static str, value: &'static str| {
        let mut pairs = good.to_vec();
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        pairs
    };
    for (key, value, named) in [
        (
            "SIMUTRADOR__SMTP__HOST",
            "smtp://mail.example.com",
            "smtp.host",
        ),
        (
            "SIMUTRADOR__SMTP__HOST",
            "mail.example.com:587",
            "smtp.host",
        ),
        ("SIMUTRADOR__SMTP__HOST", "mail example com", "smtp.host"),
        ("SIMUTRADOR__SMTP__PORT", "0", "smtp.port"),
        ("SIMUTRADOR__SMTP__PORT", "70000", "smtp.port"),
        ("SIMUTRADOR__SMTP__SECURITY", "ssl", "smtp.security"),
        ("SIMUTRADOR__SMTP__FROM", "", "smtp.from"),
        ("SIMUTRADOR__SMTP__FROM", "no address here", "smtp.from"),
        (
            "SIMUTRADOR__SMTP__PASSWORD_URL",
            "ftp://example.com/p",
            "smtp.password_url",
        ),
        (
            "SIMUTRADOR__SMTP__VERIFY_URL",
            "ftp://example.com/v",
            "smtp.verify_url",
        ),
        ("SIMUTRADOR__SMTP__USERNAME", "", "smtp.username"),
        ("SIMUTRADOR__SMTP__PASSWORD", "", "smtp.password"),
    ] {
        let e = load(&with(key, value)).unwrap_err();
        assert_eq!(e.key, named, "{key}={value}: {e}");
        assert!(!e.message.contains(SMTP_PASSWORD), "{e}");
    }
    // Plain text is allowed in development (a local mail catcher), but production
    // does not send the password unencrypted.
    assert!(load(&with("SIMUTRADOR__SMTP__SECURITY", "none")).is_ok());
    let secret = "x".repeat(32);
    let mut production = with("SIMUTRADOR__SMTP__SECURITY", "none");
    production.extend([
        ("SIMUTRADOR__MODE", "production"),
        ("SIMUTRADOR__JWT__SECRET", secret.as_str()),
        ("SIMUTRADOR__AUTH__API_KEY_PEPPER", secret.as_str()),
    ]);
    let e = load(&production).unwrap_err();
    assert_eq!(e.key, "smtp.security", "{e}");
    production.retain(|(k, _)| *k != "SIMUTRADOR__SMTP__SECURITY");
    assert!(load(&production).is_ok(), "starttls in production");

    // Without a verification page: in development the console's own, on this
    // server's address; production guesses no address, so it needs the page (or
    // console.public_url).
    let dev = load(&with("SIMUTRADOR__SMTP__VERIFY_URL", "")).unwrap();
    assert_eq!(dev.smtp.verify_url, "http://127.0.0.1:8003/verify-email");
    assert_eq!(
        dev.smtp.password_url,
        "http://127.0.0.1:8003/reset-password"
    );
    production.retain(|(k, _)| *k != "SIMUTRADOR__SMTP__VERIFY_URL");
    let e = load(&production).unwrap_err();
    assert_eq!(e.key, "smtp.verify_url", "{e}");
    production.push(("SIMUTRADOR__CONSOLE__PUBLIC_URL", "https://app.example.com"));
    let prod = load(&production).unwrap();
    assert_eq!(prod.smtp.verify_url, "https://app.example.com/verify-email");
}

#[actix_web::test]
async fn tls_transports_are_built_at_start_without_connecting() {
    // Nothing is sent before a registration, so a mail server that is down does not
    // stop the gateway; what start builds is the transport with its TLS setup.
    let mut settings = load(&[]).unwrap().smtp;
    settings.host = "mail.invalid".into();
    settings.from = "no-reply@example.com".into();
    settings.verify_url = VERIFY_URL.into();
    for security in ["tls", "starttls", "none"] {
        settings.security = security.parse().ok();
        let started = gateway::notify::SmtpNotifier::start(&settings, 24, 60);
        assert!(started.is_ok(), "{security}: {:?}", started.err());
    }
}
