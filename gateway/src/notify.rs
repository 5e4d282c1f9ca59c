//! How account messages reach people. The default notifier writes them to the server
//! log (for development and operators); a mail transport implements the same trait.

/// Sends account messages.
pub trait Notifier: Send + Sync + 'static {
    /// A new account's verification token (to be sent as a link).
    fn verification(&self, email: &str, token: &str);
    /// Someone tried to register an address that already has an account.
    fn already_registered(&self, email: &str);
}

/// Writes account messages to the log, at info level, under the target
/// `simutrador::notify`.
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn verification(&self, email: &str, token: &str) {
        tracing::info!(target: "simutrador::notify", %email, verification_token = %token, "email verification (POST /auth/verify-email with this token)");
    }

    fn already_registered(&self, email: &str) {
        tracing::info!(target: "simutrador::notify", %email, "registration attempted for an address that already has an account");
    }
}
