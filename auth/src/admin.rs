//! What operators ask of the store (an [`AdminStore`](crate::AdminStore)): user
//! searches with a total, and usage of the simulation service per user and per plan.

use chrono::{DateTime, Utc};
use protocol::Plan;
use uuid::Uuid;

use crate::account::Account;
use crate::model::{Page, Role, UserStatus};

/// Longest accepted email fragment of a user search, in characters.
pub const MAX_EMAIL_FILTER_CHARS: usize = 320;

/// Filters of a user search; results are in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Users whose (normalised, lowercase) email contains this text, matched
    /// literally (`%` and `_` are plain characters) and case-insensitively.
    pub email_contains: Option<String>,
    /// Users on this plan.
    pub plan: Option<Plan>,
    /// Users with this role.
    pub role: Option<Role>,
    /// Users with this status.
    pub status: Option<UserStatus>,
    /// `Some(true)`: only users whose logins are locked now (failed-login lockout);
    /// `Some(false)`: only users whose logins are not.
    pub locked: Option<bool>,
    /// The window of the result.
    pub page: Page,
}

/// One page of a user search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListing {
    /// The users of the page with the state of their credentials.
    pub accounts: Vec<Account>,
    /// How many users match the filters, over all pages.
    pub total: u64,
}

/// Filters of a usage report. Usage counts finished simulations (stored results) whose
/// run ended in `[from, until)`; users are grouped under their current plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Runs that ended at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Runs that ended before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only this user's runs.
    pub user_id: Option<Uuid>,
    /// Only runs of users on this plan.
    pub plan: Option<Plan>,
    /// The window of the per-user result (ignored by the per-plan report).
    pub page: Page,
}

/// Finished simulations of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUsage {
    /// The user.
    pub user_id: Uuid,
    /// Their email.
    pub email: String,
    /// Their current plan.
    pub plan: Plan,
    /// Finished simulations.
    pub simulations: u64,
    /// Bars (ticks) processed by those simulations.
    pub ticks: u64,
    /// Closed round trips in those simulations.
    pub trades: u64,
    /// When the latest of those simulations ended.
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// One page of a per-user usage report, most recently active users first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageListing {
    /// Users with at least one finished simulation matching the query.
    pub users: Vec<UserUsage>,
    /// How many users match, over all pages.
    pub total: u64,
}

/// Finished simulations of the users on one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanUsage {
    /// The plan.
    pub plan: Plan,
    /// Users on the plan with at least one finished simulation.
    pub active_users: u64,
    /// Finished simulations.
    pub simulations: u64,
    /// Bars (ticks) processed.
    pub ticks: u64,
    /// Closed round trips.
    pub trades: u64,
    /// When the latest simulation ended.
    pub last_finished_at: Option<DateTime<Utc>>,
}
