//! Draining for shutdown: every session stores itself and gives up its lease.

use super::*;

/// The node is shutting down: refuse new sessions and resumes, and have every session
/// store itself and give up its lease. Answers with the number of sessions stored.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain;

impl Handler<Drain> for SessionRegistry {
    type Result = actix::ResponseFuture<usize>;
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        // Backtests cannot move to another node: they stop, and their results so far
        // are stored (counted by `PendingSaves` until then).
        self.cancel_all_backtests();
        // `send` queues each message at once, so the sessions store concurrently.
        let pending: Vec<_> = self
            .sessions
            .values()
            .filter(|e| e.live)
            .map(|e| e.handle.addr.send(Shutdown))
            .collect();
        Box::pin(async move {
            let mut stored = 0;
            for p in pending {
                if p.await.is_ok() {
                    stored += 1;
                }
            }
            stored
        })
    }
}

/// Results of finished sessions still being written to the database, counting the
/// backtests still running (they write theirs when they stop).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingSaves;

impl Handler<PendingSaves> for SessionRegistry {
    type Result = usize;
    fn handle(&mut self, _: PendingSaves, _ctx: &mut Context<Self>) -> usize {
        self.pending.len() + self.backtests.len()
    }
}
