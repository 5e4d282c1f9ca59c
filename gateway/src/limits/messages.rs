//! Per-connection message rate: a token bucket of `messages_per_second`, refilled
//! continuously. Every frame a client sends counts (requests, malformed or oversized
//! text, binary, WebSocket pings and pongs), except `tick_ack`, which is flow control,
//! not a request, and close frames.

use std::time::{Duration, Instant};

/// Outcome of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate.
    Allowed,
    /// Over the rate: answer `RATE_LIMITED`.
    Limited,
    /// Over the rate for long: close the connection (`rate_limit`).
    Flood,
}

/// Token bucket with flood detection.
pub struct MessageRate {
    per_second: f64,
    tokens: f64,
    last: Instant,
    window_start: Instant,
    limited_in_window: u32,
}

/// How long refusals are counted before they count as a flood.
const FLOOD_WINDOW: Duration = Duration::from_secs(5);

impl MessageRate {
    /// A full bucket of `per_second` messages.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = per_second.max(1) as f64;
        MessageRate {
            per_second,
            tokens: per_second,
            last: now,
            window_start: now,
            limited_in_window: 0,
        }
    }

    /// Accounts one message at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if now.saturating_duration_since(self.window_start) >= FLOOD_WINDOW {
            self.window_start = now;
            self.limited_in_window = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        self.limited_in_window += 1;
        // Refused more messages within the window than one second's allowance: a flood.
        if self.limited_in_window as f64 > self.per_second {
            Verdict::Flood
        } else {
            Verdict::Limited
        }
    }

    /// The configured rate.
    pub fn per_second(&self) -> u32 {
        self.per_second as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_and_floods_close() {
        let t0 = Instant::now();
        let mut r = MessageRate::new(3, t0);
        assert_eq!(
            (0..3).map(|_| r.check(t0)).collect::<Vec<_>>(),
            vec![Verdict::Allowed; 3]
        );
        assert_eq!(r.check(t0), Verdict::Limited);
        // A third of a second later one token is back.
        assert_eq!(r.check(t0 + Duration::from_millis(334)), Verdict::Allowed);
        let t1 = t0 + Duration::from_millis(334);
        assert_eq!(r.check(t1), Verdict::Limited);
        assert_eq!(r.check(t1), Verdict::Limited);
        assert_eq!(r.check(t1), Verdict::Flood);
        // After the window, limits start over.
        let t2 = t0 + Duration::from_secs(6);
        assert_eq!(r.check(t2), Verdict::Allowed);
    }
}
