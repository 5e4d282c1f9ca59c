//! What REST and operators ask of this node's sessions: a user's sessions, one
//! session, deleting one, every live session, stopping one.

use super::*;

/// The sessions of one user: (id, live).
#[derive(Message)]
#[rtype(result = "Vec<(String, bool)>")]
pub struct ListSessions {
    /// Owner.
    pub user_id: String,
}

impl Handler<ListSessions> for SessionRegistry {
    type Result = actix::MessageResult<ListSessions>;
    fn handle(&mut self, msg: ListSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let mut v: Vec<(String, bool)> = self
            .sessions
            .iter()
            .filter(|((user, _), e)| *user == msg.user_id && !e.closing)
            .map(|((_, id), e)| (id.clone(), e.live))
            .collect();
        v.sort();
        actix::MessageResult(v)
    }
}

/// What this node holds of one user's session.
#[derive(Clone, Debug)]
pub enum LocalSession {
    /// Created and not finished (ready, running or paused).
    Live {
        /// The session.
        handle: Box<SessionHandle>,
        /// The start request as JSON.
        params_json: String,
    },
    /// A backtest queued or running on this node.
    Backtest(Box<BacktestView>),
    /// Finished; its results are still being written to the database.
    Finished(Arc<SimulationRecord>),
}

/// Finds a session of `user_id` that only this node can answer for: live here, or
/// finished with results not yet in the database. `None` means: ask the database.
/// Another user's session is `None` too.
#[derive(Message)]
#[rtype(result = "Option<LocalSession>")]
pub struct FindSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

impl Handler<FindSession> for SessionRegistry {
    type Result = Option<LocalSession>;
    fn handle(&mut self, msg: FindSession, _ctx: &mut Context<Self>) -> Self::Result {
        let key = (msg.user_id, msg.session_id);
        match self.sessions.get(&key) {
            Some(e) if e.live && !e.closing => {
                return Some(LocalSession::Live {
                    handle: Box::new(e.handle.clone()),
                    params_json: e.params_json.clone(),
                })
            }
            _ => {}
        }
        if let Some(view) = self.backtest_view(&key) {
            return Some(LocalSession::Backtest(Box::new(view)));
        }
        self.pending
            .get(&key)
            .filter(|p| !p.deleted)
            .map(|p| LocalSession::Finished(Arc::clone(&p.record)))
    }
}

/// Every session of `user_id` that only this node can answer for (see [`FindSession`]).
#[derive(Message)]
#[rtype(result = "Vec<LocalSession>")]
pub struct LocalSessions {
    /// Owner.
    pub user_id: String,
}

impl Handler<LocalSessions> for SessionRegistry {
    type Result = actix::MessageResult<LocalSessions>;
    fn handle(&mut self, msg: LocalSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let live = self
            .sessions
            .values()
            .filter(|e| e.user_id == msg.user_id && e.live && !e.closing)
            .map(|e| LocalSession::Live {
                handle: Box::new(e.handle.clone()),
                params_json: e.params_json.clone(),
            });
        let backtests = self
            .backtests_of(&msg.user_id)
            .map(|v| LocalSession::Backtest(Box::new(v)));
        let finished = self
            .pending
            .iter()
            .filter(|((user, _), p)| *user == msg.user_id && !p.deleted)
            .map(|(_, p)| LocalSession::Finished(Arc::clone(&p.record)));
        actix::MessageResult(live.chain(backtests).chain(finished).collect())
    }
}

/// Closes a session of `user_id` on this node (live, or finished and kept for resume)
/// and forgets results not yet written. Answers whether there was anything to delete;
/// the caller deletes stored results itself.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct DeleteSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

impl Handler<DeleteSession> for SessionRegistry {
    type Result = bool;
    fn handle(&mut self, msg: DeleteSession, _ctx: &mut Context<Self>) -> bool {
        let mut found = false;
        let key = (msg.user_id, msg.session_id);
        if let Some(e) = self.sessions.get_mut(&key) {
            if !e.closing {
                e.closing = true;
                e.handle.addr.do_send(Close);
                found = true;
            }
        }
        found |= self.cancel_backtest(&key, true);
        if let Some(p) = self.pending.get_mut(&key) {
            found |= !p.deleted;
            p.deleted = true;
        }
        found
    }
}

/// A live session of this node, as operators see it (any owner).
#[derive(Clone, Debug)]
pub struct LiveEntry {
    /// Owner.
    pub user_id: String,
    /// The session.
    pub handle: SessionHandle,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// Every live (created, not finished, not being closed) session of this node, of every
/// user, oldest first: what `GET /admin/sessions` lists for this node.
#[derive(Message)]
#[rtype(result = "Vec<LiveEntry>")]
pub struct AllLiveSessions;

impl Handler<AllLiveSessions> for SessionRegistry {
    type Result = actix::MessageResult<AllLiveSessions>;
    fn handle(&mut self, _: AllLiveSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let mut live: Vec<LiveEntry> = self
            .sessions
            .values()
            .filter(|e| e.live && !e.closing)
            .map(|e| LiveEntry {
                user_id: e.user_id.clone(),
                handle: e.handle.clone(),
                created: e.created,
            })
            .collect();
        live.sort_by(|a, b| {
            (a.created, &a.handle.session_id).cmp(&(b.created, &b.handle.session_id))
        });
        actix::MessageResult(live)
    }
}

/// An operator stops a live session of this node, whoever owns it: the run ends as if
/// its client had sent `stop_simulation` (`simulation_end` with reason `stopped` to an
/// attached client; results stored). Answers the owner's id, or `None` when the
/// session is not live here.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct StopLiveSession {
    /// Session id.
    pub session_id: String,
    /// Its owner. `None` stops the only live session with this id here; when several
    /// users have one, none is stopped (the caller resolves the owner first, see
    /// [`crate::cluster::control::Control::stop`]).
    pub user_id: Option<String>,
}

impl Handler<StopLiveSession> for SessionRegistry {
    type Result = Option<String>;
    fn handle(&mut self, msg: StopLiveSession, _ctx: &mut Context<Self>) -> Option<String> {
        let wanted = |user: &String, id: &String| {
            *id == msg.session_id && msg.user_id.as_ref().is_none_or(|u| u == user)
        };
        let sessions: Vec<&Entry> = self
            .sessions
            .iter()
            .filter(|((user, id), e)| wanted(user, id) && e.live && !e.closing)
            .map(|(_, e)| e)
            .collect();
        let backtests: Vec<(String, String)> = self
            .backtests
            .keys()
            .filter(|(user, id)| wanted(user, id))
            .cloned()
            .collect();
        match (sessions.as_slice(), backtests.as_slice()) {
            ([e], []) => {
                tracing::info!(session_id = %msg.session_id, user_id = %e.user_id, "session stopped by an operator");
                e.handle.addr.do_send(session_actor::actor::Stop);
                Some(e.user_id.clone())
            }
            ([], [key]) => {
                let key = key.clone();
                self.cancel_backtest(&key, false).then(|| {
                    tracing::info!(session_id = %key.1, user_id = %key.0, "backtest stopped by an operator");
                    key.0
                })
            }
            _ => None,
        }
    }
}
