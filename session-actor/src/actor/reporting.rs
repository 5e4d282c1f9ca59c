//! What the session reports to its metrics: ticks, fills and lock-step round trips.

use super::*;

/// What the session reports to its metrics.
pub(super) struct Reporting {
    pub(super) metrics: Option<Arc<dyn SessionMetrics>>,
    /// Ticks and fills produced since they were last reported.
    pub(super) unreported: (u64, u64),
    /// Emission time of unacknowledged lock-step ticks, oldest first (with metrics).
    pub(super) tick_sent: VecDeque<(u64, Instant)>,
}

impl SessionActor {
    /// Reports ticks, fills and lock-step round trips to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn SessionMetrics>) -> Self {
        self.reporting.metrics = Some(metrics);
        self
    }

    /// Hands the counts accumulated since the last call to the metrics.
    pub(super) fn report(&mut self) {
        let (ticks, fills) = std::mem::take(&mut self.reporting.unreported);
        if let Some(m) = &self.reporting.metrics {
            if ticks > 0 {
                m.ticks(ticks);
            }
            if fills > 0 {
                m.fills(fills);
            }
        }
    }

    /// Records the round trip of the newest tick covered by an acknowledgement up to
    /// `ack`; older ones are dropped (one acknowledgement, one observation).
    pub(super) fn acknowledged(&mut self, ack: u64) {
        let mut newest = None;
        while let Some(&(seq, at)) = self.reporting.tick_sent.front() {
            if seq > ack {
                break;
            }
            self.reporting.tick_sent.pop_front();
            newest = Some((seq, at));
        }
        if let (Some(m), Some((seq, at))) = (&self.reporting.metrics, newest) {
            if seq == ack {
                m.tick_round_trip(at.elapsed());
            }
        }
    }

    /// Counts an event for [`SessionActor::report`], and notes when a lock-step tick
    /// left.
    pub(super) fn count(&mut self, e: &Event) {
        match e {
            Event::Tick(t) => {
                self.reporting.unreported.0 += 1;
                if matches!(self.pacing, Pacing::LockStep { .. }) {
                    if self.reporting.tick_sent.len() >= TICK_TIMES_KEPT {
                        self.reporting.tick_sent.pop_front();
                    }
                    self.reporting
                        .tick_sent
                        .push_back((t.sequence_id, Instant::now()));
                }
            }
            Event::Execution(_) => self.reporting.unreported.1 += 1,
            _ => {}
        }
    }
}
