//! How account messages reach people. The default notifier writes them to the server
//! log (for development and operators); with `smtp.host` set, [`SmtpNotifier`] mails
//! them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, Semaphore};

use crate::config::{ConfigError, Settings, SmtpSecurity, SmtpSettings};

/// Sends account messages.
pub trait Notifier: Send + Sync + 'static {
    /// A new account's verification token (to be sent as a link).
    fn verification(&self, email: &str, token: &str);
    /// Someone tried to register an address that already has an account.
    fn already_registered(&self, email: &str);
    /// A token that sets a new password, asked for by someone who forgot it.
    fn password_reset(&self, email: &str, token: &str);
    /// An operator created an account for `email` without a password: a token that
    /// sets one.
    fn invitation(&self, email: &str, token: &str);
    /// Messages accepted but not yet delivered (or given up on); a draining node waits
    /// for them. Notifiers that do not queue have none.
    fn pending(&self) -> usize {
        0
    }
}

/// Account work that runs after its request was answered (a lookup that may send
/// mail, done in the background so the answer's timing reveals nothing). A draining
/// node waits for it before stopping, so a request answered 202 still gets its mail.
#[derive(Clone, Debug, Default)]
pub struct Background(Arc<AtomicUsize>);

impl Background {
    /// Runs `work` on the current worker, counted until it ends.
    pub fn spawn(&self, work: impl std::future::Future<Output = ()> + 'static) {
        self.0.fetch_add(1, Ordering::SeqCst);
        let running = Running(Arc::clone(&self.0));
        actix_web::rt::spawn(async move {
            let _running = running;
            work.await;
        });
    }

    /// Work started and not yet ended.
    pub fn running(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts one piece of [`Background`] work off when dropped (also if it panics or is
/// cancelled).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The notifier the settings ask for: [`SmtpNotifier`] when `smtp.host` is set,
/// otherwise [`LogNotifier`]. Must run inside a tokio runtime (it starts the sender).
pub fn from_settings(settings: &Settings) -> Result<Arc<dyn Notifier>, ConfigError> {
    if settings.smtp.host.trim().is_empty() {
        let production = settings.mode == crate::config::Mode::Production;
        if production {
            tracing::warn!("smtp.host is empty: verification links cannot be delivered, so self-registered accounts stay unverified (operators create users with POST /admin/users)");
        }
        return Ok(Arc::new(LogNotifier {
            reveal_tokens: !production,
        }));
    }
    let verification_hours = settings
        .accounts
        .verification_token_lifetime_sec
        .div_ceil(3600);
    let reset_minutes = settings
        .accounts
        .password_reset_token_lifetime_sec
        .div_ceil(60);
    Ok(Arc::new(SmtpNotifier::start(
        &settings.smtp,
        verification_hours,
        reset_minutes,
    )?))
}

/// Writes account messages to the log, at info level, under the target
/// `simutrador::notify`: in development with the verification token, in production
/// without it (a token is a credential, and logs are no place for one).
#[derive(Debug, Default)]
pub struct LogNotifier {
    /// Whether verification tokens are written out.
    pub reveal_tokens: bool,
}

impl Notifier for LogNotifier {
    fn verification(&self, email: &str, token: &str) {
        if self.reveal_tokens {
            tracing::info!(target: "simutrador::notify", %email, verification_token = %token, "email verification (POST /auth/verify-email with this token)");
        } else {
            tracing::info!(target: "simutrador::notify", %email, "email verification requested; no mail transport (smtp.host) to deliver it");
        }
    }

    fn already_registered(&self, email: &str) {
        tracing::info!(target: "simutrador::notify", %email, "registration attempted for an address that already has an account");
    }

    fn password_reset(&self, email: &str, token: &str) {
        self.password_token(email, token, "password reset");
    }

    fn invitation(&self, email: &str, token: &str) {
        self.password_token(email, token, "invitation");
    }
}

impl LogNotifier {
    fn password_token(&self, email: &str, token: &str, kind: &str) {
        if self.reveal_tokens {
            tracing::info!(target: "simutrador::notify", %email, password_token = %token, "{kind} (POST /auth/password/reset with this token and a new password)");
        } else {
            tracing::info!(target: "simutrador::notify", %email, "{kind} requested; no mail transport (smtp.host) to deliver it");
        }
    }
}

/// Messages waiting for the sender; beyond this, new ones are dropped (and logged) so
/// a flood of registrations cannot grow memory while the mail server is slow or down.
const QUEUE: usize = 1024;
/// Messages being sent at once.
const CONCURRENT_SENDS: usize = 4;
/// Waits before the second and third attempt at a message. Permanent refusals (5xx)
/// are not retried.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(10)];
/// One attempt (connect, TLS, AUTH, the transaction) gives up after this long.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Mails account messages over SMTP (`smtp.*` settings).
///
/// Handlers only build the message and queue it; a background task sends it, so a
/// slow or unreachable mail server never delays a request. Failed attempts are
/// retried a bounded number of times and logged with the recipient and the error,
/// never with the credentials or the message (it carries the token).
pub struct SmtpNotifier {
    queue: mpsc::Sender<Outgoing>,
    /// Queued or being sent.
    pending: Arc<AtomicUsize>,
    from: Mailbox,
    verify_url: String,
    password_url: String,
    verification_hours: u64,
    reset_minutes: u64,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("from", &self.from.to_string())
            .field("verify_url", &self.verify_url)
            .finish_non_exhaustive()
    }
}

/// A queued message.
struct Outgoing {
    /// What kind, for the logs.
    kind: &'static str,
    to: Address,
    message: Message,
}

impl SmtpNotifier {
    /// Builds the transport from `settings` (already validated by
    /// [`Settings::load`]) and starts the sending task on the current tokio runtime.
    /// `verification_hours` and `reset_minutes` are what the messages say about the
    /// links' expiry.
    pub fn start(
        settings: &SmtpSettings,
        verification_hours: u64,
        reset_minutes: u64,
    ) -> Result<Self, ConfigError> {
        let bad = |key: &str, message: String| ConfigError {
            key: key.into(),
            message,
        };
        let host = settings.host.trim();
        let security = settings.security.ok_or_else(|| {
            bad(
                "smtp.security",
                "must be `none`, `starttls` or `tls`".into(),
            )
        })?;
        let builder = match security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| bad("smtp.host", format!("cannot set up STARTTLS: {e}")))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| bad("smtp.host", format!("cannot set up TLS: {e}")))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(SEND_TIMEOUT));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose().clone(),
            ));
        }
        let transport = builder.build();
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| bad("smtp.from", format!("not a mail address: {e}")))?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(send_queued(transport, receiver, Arc::clone(&pending)));
        tracing::info!(
            host,
            port = settings.port,
            ?security,
            "account mail goes out over SMTP"
        );
        Ok(Self {
            queue,
            pending,
            from,
            verify_url: settings.verify_url.trim().to_string(),
            password_url: settings.password_url.trim().to_string(),
            verification_hours,
            reset_minutes,
        })
    }

    /// The verification link for `token`.
    fn link(&self, token: &str) -> String {
        with_token(&self.verify_url, token)
    }

    /// How a password mail tells the user to use `token`: a link when
    /// `smtp.password_url` is set, then the token itself.
    fn password_instructions(&self, token: &str) -> String {
        let link = if self.password_url.is_empty() {
            String::new()
        } else {
            format!(
                "Open this link to choose your password:\r\n\r\n{}\r\n\r\nor, ",
                with_token(&self.password_url, token)
            )
        };
        format!("{link}where a password token is asked for, use this one:\r\n\r\n{token}\r\n")
    }

    fn enqueue(&self, kind: &'static str, email: &str, subject: &str, body: String) {
        let to: Address = match email.parse() {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(target: "simutrador::notify", %email, kind, error = %e, "not a deliverable address; no mail sent");
                return;
            }
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(target: "simutrador::notify", %email, kind, error = %e, "cannot build the mail; not sent");
                return;
            }
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.queue.try_send(Outgoing { kind, to, message }) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the mail queue is full",
                mpsc::error::TrySendError::Closed(_) => "the mail sender has stopped",
            };
            tracing::warn!(target: "simutrador::notify", %email, kind, "{why}; mail dropped");
        }
    }
}

impl Notifier for SmtpNotifier {
    fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    fn verification(&self, email: &str, token: &str) {
        let hours = self.verification_hours;
        let body = format!(
            "Welcome to SimuTrador.\r\n\
             \r\n\
             Open this link to verify your email address:\r\n\
             \r\n\
             {link}\r\n\
             \r\n\
             The link works once and expires in {hours} hours. Where a verification\r\n\
             token is asked for, this is the one:\r\n\
             \r\n\
             {token}\r\n\
             \r\n\
             If you did not create an account, ignore this message: nothing happens\r\n\
             until the address is verified.\r\n",
            link = self.link(token),
        );
        self.enqueue(
            "verification",
            email,
            "Verify your SimuTrador email address",
            body,
        );
    }

    fn already_registered(&self, email: &str) {
        let body = "Someone, perhaps you, tried to create a SimuTrador account with this\r\n\
                    email address, which already has one.\r\n\
                    \r\n\
                    If it was you, log in with your existing password. If it was not, you\r\n\
                    can ignore this message: your account has not changed.\r\n"
            .to_string();
        self.enqueue(
            "already_registered",
            email,
            "Your SimuTrador account already exists",
            body,
        );
    }

    fn password_reset(&self, email: &str, token: &str) {
        let body = format!(
            "Someone, perhaps you, asked to reset the password of your SimuTrador\r\n\
             account.\r\n\
             \r\n\
             {instructions}\
             \r\n\
             It works once and expires in {minutes} minutes. Setting a new password ends\r\n\
             every login session of the account. If you did not ask for this, ignore\r\n\
             this message: your password has not changed.\r\n",
            instructions = self.password_instructions(token),
            minutes = self.reset_minutes,
        );
        self.enqueue(
            "password_reset",
            email,
            "Reset your SimuTrador password",
            body,
        );
    }

    fn invitation(&self, email: &str, token: &str) {
        let body = format!(
            "An account on SimuTrador was created for this address.\r\n\
             \r\n\
             {instructions}\
             \r\n\
             It works once and expires in {hours} hours.\r\n",
            instructions = self.password_instructions(token),
            hours = self.verification_hours,
        );
        self.enqueue(
            "invitation",
            email,
            "Your SimuTrador account is ready",
            body,
        );
    }
}

/// `base` with `token` added to its query. Tokens are base62 and need no escaping.
fn with_token(base: &str, token: &str) -> String {
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}token={token}")
}

/// Sends queued messages, a few at a time, until every [`SmtpNotifier`] handle is gone;
/// counts each off `pending` once it is sent or given up on.
async fn send_queued(
    transport: AsyncSmtpTransport<Tokio1Executor>,
    mut queue: mpsc::Receiver<Outgoing>,
    pending: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_SENDS));
    while let Some(mail) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let transport = transport.clone();
        let pending = Arc::clone(&pending);
        tokio::spawn(async move {
            deliver(&transport, mail).await;
            pending.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        });
    }
}

/// One message, with bounded retries of transient failures.
async fn deliver(transport: &AsyncSmtpTransport<Tokio1Executor>, mail: Outgoing) {
    let Outgoing { kind, to, message } = mail;
    let mut attempt = 1;
    loop {
        match transport.send(message.clone()).await {
            Ok(_) => {
                tracing::info!(target: "simutrador::notify", email = %to, kind, attempt, "mail sent");
                return;
            }
            Err(e) => {
                // The error carries the server's reply or the I/O failure: neither the
                // credentials nor the message text.
                let retry = !e.is_permanent() && attempt <= RETRY_DELAYS.len();
                tracing::warn!(target: "simutrador::notify", email = %to, kind, attempt, error = %e, will_retry = retry, "mail not sent");
                if !retry {
                    return;
                }
                tokio::time::sleep(RETRY_DELAYS[attempt - 1]).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(verify_url: &str) -> SmtpNotifier {
        let (queue, _) = mpsc::channel(1);
        SmtpNotifier {
            queue,
            pending: Default::default(),
            from: "SimuTrador <no-reply@example.com>".parse().unwrap(),
            verify_url: verify_url.into(),
            password_url: String::new(),
            verification_hours: 24,
            reset_minutes: 60,
        }
    }

    #[test]
    fn links_append_the_token_to_the_base_url() {
        assert_eq!(
            notifier("https://app.example.com/verify").link("sev_abc"),
            "https://app.example.com/verify?token=sev_abc"
        );
        assert_eq!(
            notifier("https://app.example.com/v?lang=en").link("sev_abc"),
            "https://app.example.com/v?lang=en&token=sev_abc"
        );
    }
}

#[cfg(test)]
mod log_notifier_tests {
    use super::*;
    use std::sync::Mutex;

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn production_logs_never_carry_verification_tokens() {
        let load = |mode: &str| {
            Settings::load_from(
                None,
                [
                    ("SIMUTRADOR__MODE", mode),
                    (
                        "SIMUTRADOR__JWT__SECRET",
                        "0123456789abcdef0123456789abcdef",
                    ),
                    (
                        "SIMUTRADOR__AUTH__API_KEY_PEPPER",
                        "0123456789abcdef0123456789abcdef",
                    ),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .unwrap()
        };
        for (mode, reveal) in [("production", false), ("development", true)] {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&buffer);
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || Capture(Arc::clone(&sink)))
                .finish();
            let notifier = from_settings(&load(mode)).unwrap();
            tracing::subscriber::with_default(subscriber, || {
                notifier.verification("ann@example.com", "stv_secret-token");
            });
            let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
            assert!(text.contains("ann@example.com"), "{text}");
            assert_eq!(text.contains("stv_secret-token"), reveal, "{mode}: {text}");
        }
    }
}
