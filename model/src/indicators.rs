//! Indicators computed exactly on fixed-point closes, shared by the in-process
//! strategies and the client's.

use std::cmp::Ordering;

/// Sum of the last `len` values, exact in integers.
#[derive(Clone, Debug)]
struct RollingSum {
    window: Vec<i64>,
    next: usize,
    filled: usize,
    sum: i128,
}

impl RollingSum {
    fn new(len: usize) -> Self {
        RollingSum {
            window: vec![0; len.max(1)],
            next: 0,
            filled: 0,
            sum: 0,
        }
    }

    #[inline]
    fn push(&mut self, v: i64) {
        self.sum += v as i128 - self.window[self.next] as i128;
        self.window[self.next] = v;
        // A branch instead of `%`: this runs once per bar.
        self.next += 1;
        if self.next == self.window.len() {
            self.next = 0;
        }
        self.filled = (self.filled + 1).min(self.window.len());
    }

    fn ready(&self) -> bool {
        self.filled == self.window.len()
    }
}

/// Direction in which a fast average crossed a slow one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cross {
    /// Fast was below slow on the previous bar and is above it now.
    Up,
    /// Fast was above slow on the previous bar and is below it now.
    Down,
}

/// Crossings of a fast and a slow simple moving average of closes, per symbol. A cross
/// needs strict inequality on both bars (`fast < slow`, then `fast > slow`, and
/// mirrored); averages are compared exactly as `sum_fast x slow_len` against
/// `sum_slow x fast_len`, so ties and float noise cannot flip a signal.
#[derive(Clone, Debug)]
pub struct SmaCrossSignal {
    fast_len: usize,
    slow_len: usize,
    /// Per symbol index: both sums and the sign of fast - slow at the previous bar.
    state: Vec<(RollingSum, RollingSum, Option<Ordering>)>,
}

impl SmaCrossSignal {
    /// Averages over `fast` and `slow` bars (at least 1 each).
    pub fn new(fast: usize, slow: usize) -> Self {
        SmaCrossSignal {
            fast_len: fast.max(1),
            slow_len: slow.max(1),
            state: Vec::new(),
        }
    }

    /// Feeds the raw fixed-point close of symbol `symbol`; the crossing, if any.
    #[inline]
    pub fn update(&mut self, symbol: usize, close: i64) -> Option<Cross> {
        while self.state.len() <= symbol {
            self.state.push((
                RollingSum::new(self.fast_len),
                RollingSum::new(self.slow_len),
                None,
            ));
        }
        let (fast_len, slow_len) = (self.fast_len as i128, self.slow_len as i128);
        let (fast, slow, prev) = &mut self.state[symbol];
        fast.push(close);
        slow.push(close);
        if !(fast.ready() && slow.ready()) {
            return None;
        }
        let now = (fast.sum * slow_len).cmp(&(slow.sum * fast_len));
        match (prev.replace(now)?, now) {
            (Ordering::Less, Ordering::Greater) => Some(Cross::Up),
            (Ordering::Greater, Ordering::Less) => Some(Cross::Down),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_need_strict_inequality_on_both_bars() {
        let mut s = SmaCrossSignal::new(1, 2);
        // Averages (fast, slow): first needs 2 bars, then compare with the previous sign.
        assert_eq!(s.update(0, 10), None);
        assert_eq!(s.update(0, 8), None); // 8 < 9
        assert_eq!(s.update(0, 12), Some(Cross::Up)); // 12 > 10
        assert_eq!(s.update(0, 12), None); // 12 = 12: equal is no cross
        assert_eq!(s.update(0, 11), None); // 11 < 11.5, but the previous bar was equal
        assert_eq!(s.update(0, 13), Some(Cross::Up)); // 13 > 12 after below
        assert_eq!(s.update(0, 10), Some(Cross::Down)); // 10 < 11.5 after above
    }

    #[test]
    fn symbols_are_independent() {
        let mut s = SmaCrossSignal::new(1, 2);
        for (a, b) in [(10, 10), (8, 12), (12, 8)] {
            let ca = s.update(0, a);
            let cb = s.update(1, b);
            if a == 12 {
                assert_eq!((ca, cb), (Some(Cross::Up), Some(Cross::Down)));
            }
        }
    }
}
