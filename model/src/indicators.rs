//! Indicators computed exactly on fixed-point prices, shared by the in-process
//! strategies (the engine's built-in catalog among them) and the client's.

use std::cmp::Ordering;
use std::collections::VecDeque;

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

/// Cutler's RSI of closes, per symbol: simple sums of the up and down close-to-close
/// moves over the last `period` moves (Wilder's RSI smooths them instead).
///
/// `RSI = 100 x gains / (gains + losses)`, never computed as a number: a reading is
/// compared with a threshold `t` exactly on the raw fixed-point sums,
/// `RSI < t <=> 100 x gains < t x (gains + losses)` (and mirrored for `>`), so a
/// reading exactly at the threshold is neither below nor above it. There is no reading
/// before `period` moves (`period + 1` closes) have been seen, and a flat window
/// (`gains + losses == 0`, RSI undefined) is neither below nor above any threshold.
#[derive(Clone, Debug)]
pub struct CutlerRsi {
    period: usize,
    /// Per symbol index: the previous close and the sums of up and down moves.
    state: Vec<(Option<i64>, RollingSum, RollingSum)>,
}

/// One RSI reading: the up and down moves of the window, summed exactly (raw
/// fixed-point units, losses as a positive sum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsiReading {
    /// Sum of the positive close-to-close moves in the window.
    pub gains: i128,
    /// Sum of the magnitudes of the negative close-to-close moves in the window.
    pub losses: i128,
}

impl RsiReading {
    /// True when the RSI is strictly below `threshold` (0-100 scale):
    /// `100 x gains < threshold x (gains + losses)`; false for a flat window.
    pub fn is_below(self, threshold: u32) -> bool {
        let total = self.gains + self.losses;
        total != 0 && 100 * self.gains < i128::from(threshold) * total
    }

    /// True when the RSI is strictly above `threshold` (0-100 scale):
    /// `100 x gains > threshold x (gains + losses)`; false for a flat window.
    pub fn is_above(self, threshold: u32) -> bool {
        let total = self.gains + self.losses;
        total != 0 && 100 * self.gains > i128::from(threshold) * total
    }
}

impl CutlerRsi {
    /// An RSI over `period` close-to-close moves (at least 1).
    pub fn new(period: usize) -> Self {
        CutlerRsi {
            period: period.max(1),
            state: Vec::new(),
        }
    }

    /// Feeds the raw fixed-point close of symbol `symbol`; the reading over the last
    /// `period` moves once that many have been seen.
    pub fn update(&mut self, symbol: usize, close: i64) -> Option<RsiReading> {
        while self.state.len() <= symbol {
            self.state.push((
                None,
                RollingSum::new(self.period),
                RollingSum::new(self.period),
            ));
        }
        let (last, gains, losses) = &mut self.state[symbol];
        let previous = last.replace(close)?;
        // Closes are positive, so the difference of two of them always fits an i64.
        let change = close.saturating_sub(previous);
        gains.push(change.max(0));
        losses.push(change.min(0).saturating_neg());
        gains.ready().then_some(RsiReading {
            gains: gains.sum,
            losses: losses.sum,
        })
    }
}

/// The upper band of a Donchian channel, per symbol: the highest high of the `len`
/// bars before the current one. A monotonic queue keeps it in constant time per bar
/// (amortised), whatever `len`.
#[derive(Clone, Debug)]
pub struct DonchianHigh {
    len: usize,
    /// Per symbol index: bars seen, and (bar number, high) pairs with strictly
    /// decreasing highs, the window's maximum first.
    state: Vec<(u64, VecDeque<(u64, i64)>)>,
}

impl DonchianHigh {
    /// A channel over the previous `len` bars (at least 1).
    pub fn new(len: usize) -> Self {
        DonchianHigh {
            len: len.max(1),
            state: Vec::new(),
        }
    }

    /// The highest of the `len` raw fixed-point highs of symbol `symbol` seen before
    /// this call (`None` until `len` of them have been seen); then takes `high` into
    /// the window. The current bar is never part of the band it is compared with.
    pub fn update(&mut self, symbol: usize, high: i64) -> Option<i64> {
        while self.state.len() <= symbol {
            self.state.push((0, VecDeque::new()));
        }
        let len = self.len as u64;
        let (seen, queue) = &mut self.state[symbol];
        let n = *seen;
        while queue.front().is_some_and(|&(i, _)| i + len < n) {
            queue.pop_front();
        }
        let band = if n >= len {
            queue.front().map(|&(_, h)| h)
        } else {
            None
        };
        while queue.back().is_some_and(|&(_, h)| h <= high) {
            queue.pop_back();
        }
        queue.push_back((n, high));
        *seen = n + 1;
        band
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

    fn sums(gains: i128, losses: i128) -> RsiReading {
        RsiReading { gains, losses }
    }

    /// A small deterministic generator of positive raw prices, with runs of equal values.
    fn series(n: usize, seed: u64) -> Vec<i64> {
        let mut z = seed;
        let mut price: i64 = 100 * 100_000_000;
        (0..n)
            .map(|_| {
                z ^= z << 13;
                z ^= z >> 7;
                z ^= z << 17;
                // Moves of -3..=3 units of 0.01, zero a seventh of the time.
                price += ((z % 7) as i64 - 3) * 1_000_000;
                price
            })
            .collect()
    }

    #[test]
    fn rsi_needs_period_moves_and_then_rolls() {
        let mut r = CutlerRsi::new(2);
        assert_eq!(r.update(0, 10), None); // no move yet
        assert_eq!(r.update(0, 12), None); // one move: +2
        let reading = r.update(0, 11).unwrap(); // +2, -1
        assert_eq!((reading.gains, reading.losses), (2, 1));
        let reading = r.update(0, 11).unwrap(); // -1, 0: the +2 left the window
        assert_eq!((reading.gains, reading.losses), (0, 1));
        assert!(reading.is_below(1)); // RSI 0
        assert!(!reading.is_above(99));
        let reading = r.update(0, 14).unwrap(); // 0, +3
        assert_eq!((reading.gains, reading.losses), (3, 0));
        assert!(reading.is_above(99)); // RSI 100
    }

    #[test]
    fn rsi_at_the_threshold_is_neither_below_nor_above() {
        // gains 3, losses 1: RSI is exactly 75.
        let exact = sums(3, 1);
        assert!(!exact.is_below(75));
        assert!(!exact.is_above(75));
        assert!(exact.is_below(76));
        assert!(exact.is_above(74));
        // The same through the indicator: +3 then -1 over period 2 (raw units of 1e-8).
        let mut r = CutlerRsi::new(2);
        r.update(0, 1_000);
        r.update(0, 1_003);
        let reading = r.update(0, 1_002).unwrap();
        assert_eq!(reading, exact);
        assert!(!reading.is_below(75) && !reading.is_above(75));
        // RSI 50 exactly: equal gains and losses.
        let half = sums(7, 7);
        assert!(!half.is_below(50) && !half.is_above(50));
        assert!(half.is_below(51) && half.is_above(49));
    }

    #[test]
    fn a_flat_window_gives_no_signal() {
        let mut r = CutlerRsi::new(3);
        for _ in 0..3 {
            assert_eq!(r.update(0, 5), None);
        }
        let reading = r.update(0, 5).unwrap();
        assert_eq!((reading.gains, reading.losses), (0, 0));
        for t in [1, 50, 99] {
            assert!(!reading.is_below(t) && !reading.is_above(t), "{t}");
        }
    }

    #[test]
    fn rsi_sums_match_a_recomputation_from_scratch() {
        for (period, seed) in [(2, 1), (5, 7), (14, 99), (30, 12345)] {
            let closes = series(400, seed);
            let mut r = CutlerRsi::new(period);
            for (i, &c) in closes.iter().enumerate() {
                let got = r.update(0, c);
                if i < period {
                    assert_eq!(got, None, "period {period} bar {i}");
                    continue;
                }
                let moves: Vec<i128> = closes[i - period..=i]
                    .windows(2)
                    .map(|w| i128::from(w[1] - w[0]))
                    .collect();
                let gains: i128 = moves.iter().filter(|m| **m > 0).sum();
                let losses: i128 = -moves.iter().filter(|m| **m < 0).sum::<i128>();
                assert_eq!(got, Some(RsiReading { gains, losses }), "bar {i}");
            }
        }
    }

    #[test]
    fn rsi_symbols_are_independent() {
        let mut r = CutlerRsi::new(1);
        assert_eq!(r.update(0, 10), None);
        assert_eq!(r.update(1, 20), None);
        assert_eq!(r.update(0, 11), Some(sums(1, 0)));
        assert_eq!(r.update(1, 18), Some(sums(0, 2)));
    }

    #[test]
    fn donchian_high_is_the_highest_of_the_previous_bars() {
        let mut d = DonchianHigh::new(3);
        let highs = [5, 3, 4, 2, 1, 6, 6, 0, 0, 0];
        let bands: Vec<_> = highs.iter().map(|&h| d.update(0, h)).collect();
        assert_eq!(
            bands,
            vec![
                None,
                None,
                None,
                Some(5), // 5 3 4
                Some(4), // 3 4 2
                Some(4), // 4 2 1
                Some(6), // 2 1 6
                Some(6), // 1 6 6
                Some(6), // 6 6 0
                Some(6), // 6 0 0: the second 6 is still in the window
            ]
        );
        assert_eq!(d.update(0, 0), Some(0)); // 0 0 0
                                             // Symbols are independent.
        assert_eq!(d.update(1, 100), None);
    }

    #[test]
    fn donchian_high_matches_a_scan_of_the_window() {
        for (len, seed) in [(1, 3), (2, 5), (20, 8), (55, 21)] {
            let highs = series(500, seed);
            let mut d = DonchianHigh::new(len);
            for (i, &h) in highs.iter().enumerate() {
                let want = (i >= len).then(|| highs[i - len..i].iter().copied().max());
                assert_eq!(d.update(0, h), want.flatten(), "len {len} bar {i}");
            }
        }
    }
}
