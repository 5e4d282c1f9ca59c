//! Revoked API keys and disabled users, as every node must know them: the handshake
//! refuses their tokens, and their open connections close with `connection_closing`
//! (`api_key_revoked`).
//!
//! Two paths keep every node current. Whoever revokes publishes the event on the
//! Redis channel `<session_store.key_prefix>:revocations` (when Redis is configured),
//! which every node subscribes to; and every node reads the revocations from the
//! database every [`POLL_INTERVAL`], which also covers a node that missed a message
//! (or a single node without Redis). Either way a revocation reaches every node within
//! a second. While the database is unreachable the last known state stays in force.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auth::{Claims, Database, UserStore};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// How often each node reads revocations from the database.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Revoked {
    /// An API key was revoked.
    Key(Uuid),
    /// A user was disabled or locked.
    User(Uuid),
    /// A login session ended (logout or revocation).
    Session(Uuid),
}

impl Revoked {
    /// Whether this revocation applies to a connection of `who`.
    pub fn applies_to(&self, who: &Credential) -> bool {
        match *self {
            Revoked::Key(k) => who.key == Some(k),
            Revoked::User(u) => u == who.user,
            Revoked::Session(s) => who.session == Some(s),
        }
    }
}

/// What a token stands for: a user, and the API key or login session it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The user.
    pub user: Uuid,
    /// The API key the token was exchanged for.
    pub key: Option<Uuid>,
    /// The login session the token belongs to.
    pub session: Option<Uuid>,
}

impl Credential {
    /// The credential behind `claims`.
    pub fn of(claims: &Claims) -> Self {
        Credential {
            user: claims.sub,
            key: claims.kid,
            session: claims.sid,
        }
    }
}

/// Revoked keys and sessions (with when this node learned of them) and inactive users.
#[derive(Default)]
struct Known {
    keys: HashMap<Uuid, Instant>,
    users: HashSet<Uuid>,
    sessions: HashMap<Uuid, Instant>,
}

/// This node's view of revocations, and a feed of new ones for open connections.
pub struct Revocations {
    known: RwLock<Known>,
    events: broadcast::Sender<Revoked>,
    /// How long a revoked key or session is remembered after the database stops
    /// reporting it: no token issued before the revocation lives longer.
    retention: Duration,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations::new(Duration::from_secs(25 * 3600))
    }
}

impl Revocations {
    /// Remembers revoked keys and sessions for `retention` (the longest token life
    /// plus clock skew).
    pub fn new(retention: Duration) -> Self {
        Revocations {
            known: RwLock::default(),
            events: broadcast::channel(1024).0,
            retention,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        // Sets are replaced or extended in single statements; a poisoned lock still
        // holds a consistent view.
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a connection or request of `who` must be refused.
    pub fn refuses(&self, who: &Credential) -> bool {
        let known = self.read();
        known.users.contains(&who.user)
            || who.key.is_some_and(|k| known.keys.contains_key(&k))
            || who.session.is_some_and(|s| known.sessions.contains_key(&s))
    }

    /// Whether `claims` must be refused.
    pub fn refuses_token(&self, claims: &Claims) -> bool {
        self.refuses(&Credential::of(claims))
    }

    /// New revocations for open connections.
    pub fn subscribe(&self) -> broadcast::Receiver<Revoked> {
        self.events.subscribe()
    }

    /// Records a revocation heard from another node; tells connections if it is new.
    pub fn apply(&self, revoked: Revoked) {
        let new = {
            let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match revoked {
                Revoked::Key(k) => known.keys.insert(k, now).is_none(),
                Revoked::User(u) => known.users.insert(u),
                Revoked::Session(s) => known.sessions.insert(s, now).is_none(),
            }
        };
        if new {
            let _ = self.events.send(revoked);
        }
    }

    /// Replaces the view with the database's (users can be re-enabled); tells
    /// connections about what is new.
    fn replace(&self, keys: HashSet<Uuid>, users: HashSet<Uuid>, sessions: HashSet<Uuid>) {
        self.replace_at(keys, users, sessions, Instant::now());
    }

    fn replace_at(
        &self,
        keys: HashSet<Uuid>,
        users: HashSet<Uuid>,
        sessions: HashSet<Uuid>,
        now: Instant,
    ) {
        let fresh: Vec<Revoked> = {
            let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
            let fresh = keys
                .iter()
                .filter(|k| !known.keys.contains_key(k))
                .map(|k| Revoked::Key(*k))
                .chain(users.difference(&known.users).map(|u| Revoked::User(*u)))
                .chain(
                    sessions
                        .iter()
                        .filter(|s| !known.sessions.contains_key(s))
                        .map(|s| Revoked::Session(*s)),
                )
                .collect();
            // Keys and sessions stay revoked; the database only reports those recent
            // enough to matter, so older ones are kept from earlier reads, and
            // forgotten `retention` after the database stopped reporting them.
            let retention = self.retention;
            let (keys_seen, sessions_seen) = (&keys, &sessions);
            known
                .keys
                .retain(|k, at| keys_seen.contains(k) || now.duration_since(*at) < retention);
            known
                .sessions
                .retain(|s, at| sessions_seen.contains(s) || now.duration_since(*at) < retention);
            for k in keys {
                known.keys.insert(k, now);
            }
            for s in sessions {
                known.sessions.insert(s, now);
            }
            known.users = users;
            fresh
        };
        for r in fresh {
            let _ = self.events.send(r);
        }
    }
}

/// Keeps `revocations` in step with the database, reading revocations newer than
/// `horizon` (no token lives longer) every [`POLL_INTERVAL`].
pub async fn poll_database(revocations: Arc<Revocations>, db: Database, horizon: Duration) {
    let mut warned = false;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::days(1));
        match db.revocations_since(since).await {
            Ok(r) => {
                warned = false;
                revocations.replace(
                    r.keys.into_iter().collect(),
                    r.users.into_iter().collect(),
                    r.sessions.into_iter().collect(),
                );
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "cannot read revocations; keeping the last known ones");
            }
            Err(_) => {}
        }
    }
}

/// The Redis channel revocations are published on.
pub fn channel(key_prefix: &str) -> String {
    format!("{key_prefix}:revocations")
}

/// Tells every node of the cluster at once when Redis is configured (without it there
/// is nothing to do: nodes read revocations from the database within half a second).
pub async fn announce(
    store: &crate::config::SessionStoreSettings,
    revoked: Revoked,
) -> Result<(), String> {
    if store.redis_url.is_empty() {
        return Ok(());
    }
    publish(store.redis_url.expose(), &store.key_prefix, revoked).await
}

/// Publishes a revocation to every node (best effort: the database poll catches up).
pub async fn publish(redis_url: &str, key_prefix: &str, revoked: Revoked) -> Result<(), String> {
    let client = redis::Client::open(redis_url).map_err(|e| e.category().to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let payload = serde_json::to_string(&revoked).map_err(|e| e.to_string())?;
    redis::cmd("PUBLISH")
        .arg(channel(key_prefix))
        .arg(payload)
        .query_async::<i64>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Applies revocations published by other nodes, reconnecting whenever Redis drops.
pub async fn subscribe_redis(revocations: Arc<Revocations>, redis_url: String, key_prefix: String) {
    crate::redis_link::follow(
        redis_url,
        channel(&key_prefix),
        "revocations",
        |r: Revoked| {
            revocations.apply(r);
            std::future::ready(())
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_revoked_keys_sessions_and_inactive_users_and_tells_once() {
        let r = Revocations::default();
        let mut rx = r.subscribe();
        let (user, key, session) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let who = |key, session| Credential { user, key, session };
        assert!(!r.refuses(&who(Some(key), None)));
        r.apply(Revoked::Key(key));
        r.apply(Revoked::Key(key));
        assert!(r.refuses(&who(Some(key), None)));
        assert!(!r.refuses(&who(None, None)));
        assert_eq!(rx.try_recv().unwrap(), Revoked::Key(key));
        assert!(rx.try_recv().is_err(), "a known revocation is not repeated");
        // The database view: the user is disabled and a login session ended; later
        // the user is re-enabled.
        r.replace(
            HashSet::new(),
            HashSet::from([user]),
            HashSet::from([session]),
        );
        assert_eq!(rx.try_recv().unwrap(), Revoked::User(user));
        assert_eq!(rx.try_recv().unwrap(), Revoked::Session(session));
        assert!(r.refuses(&who(None, None)));
        r.replace(HashSet::new(), HashSet::new(), HashSet::new());
        assert!(!r.refuses(&who(None, None)));
        assert!(
            r.refuses(&who(None, Some(session))),
            "sessions stay revoked"
        );
        let other = Credential {
            user: Uuid::from_u128(9),
            key: Some(key),
            session: None,
        };
        assert!(r.refuses(&other), "keys stay revoked");
        // ...for the retention time after the database stopped reporting them.
        let later = Instant::now() + Duration::from_secs(25 * 3600 + 1);
        r.replace_at(
            HashSet::new(),
            HashSet::new(),
            HashSet::from([session]),
            later,
        );
        assert!(!r.refuses(&other), "the key is forgotten");
        assert!(
            r.refuses(&who(None, Some(session))),
            "a session still reported stays"
        );
        let json = serde_json::to_string(&Revoked::User(user)).unwrap();
        assert_eq!(
            serde_json::from_str::<Revoked>(&json).unwrap(),
            Revoked::User(user)
        );
        assert!(Revoked::User(user).applies_to(&who(None, None)));
        assert!(!Revoked::Key(key).applies_to(&who(None, None)));
        assert!(Revoked::Session(session).applies_to(&who(None, Some(session))));
    }
}
