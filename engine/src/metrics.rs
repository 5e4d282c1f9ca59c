//! Performance metrics, accumulated bar by bar in constant space so that a snapshot
//! stays small however long the run.
//!
//! Definitions (risk-free rate 0):
//! - bar return `r_t = E_t / E_{t-1} - 1`, where `E_t` is equity after bar t and
//!   `E_0` the initial capital; one return per processed bar (tick).
//! - `sharpe_ratio = mean(r) / stdev(r) * sqrt(P)`, sample standard deviation, where
//!   `P` is the number of bars per year of the session's timeframe and calendar
//!   ([`periods_per_year`]).
//! - `sortino_ratio = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P)`.
//! - `volatility_ann_pct = stdev(r) * sqrt(P) * 100`.
//! - `total_return_pct = (E_final / E_0 - 1) * 100`.
//! - `cagr_pct = ((E_final / E_0)^(P / bars) - 1) * 100` (years measured in bars).
//! - `max_drawdown_pct`: largest `(peak - E_t) / peak * 100` over the run;
//!   `max_drawdown_duration_bars`: longest run of bars spent below a previous peak.
//! - `calmar_ratio = cagr_pct / max_drawdown_pct` (0 without drawdown).
//! - `exposure_pct`: share of bars that ended with any open position, in percent.
//! - `buy_and_hold_return_pct`: equal-weighted mean over the session's symbols of
//!   `(last close / first close - 1) * 100` within the run, 0 for a symbol without a
//!   bar yet (its share is held as cash): the return of the exact buy-and-hold value
//!   of [`analytics`](crate::analytics), to rounding.
//! - A trade is a round trip from flat back to flat on one symbol; `total_trades`
//!   counts closed round trips; `win_rate` is the fraction (0..1) of them with PnL > 0
//!   net of commissions; `profit_factor` is gross profit / gross loss (`None` when there
//!   is no losing trade); `best/worst/avg_trade_pct` use each trade's PnL over its entry
//!   notional.

use model::{Amount, Calendar, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};

use super::analytics::Drawdown;
use super::portfolio::ClosedTrade;

/// Bars per year for annualising Sharpe, Sortino, volatility and CAGR: 252 trading
/// days of 6.5 regular hours for US equities, 260 days of 24 hours for FX, 365 days of
/// 24 hours for crypto.
pub fn periods_per_year(timeframe: Timeframe, calendar: Calendar) -> f64 {
    let (days, hours) = match calendar {
        Calendar::UsEquity => (252.0, 6.5),
        Calendar::Fx => (260.0, 24.0),
        Calendar::Crypto => (365.0, 24.0),
    };
    match timeframe {
        Timeframe::Daily => days,
        t => days * hours * 3600.0 / t.seconds() as f64,
    }
}

/// The calendar that sets a multi-symbol session's year: US equity hours if any symbol
/// trades them (their bars are the scarcest), else FX if any, else crypto.
pub fn session_calendar<S: AsRef<str>>(symbols: &[S]) -> Calendar {
    let cals: Vec<Calendar> = symbols
        .iter()
        .map(|s| Calendar::for_symbol(s.as_ref()))
        .collect();
    [Calendar::UsEquity, Calendar::Fx]
        .into_iter()
        .find(|c| cals.contains(c))
        .unwrap_or(Calendar::Crypto)
}

/// Running statistics over bars. Floating point is used only here, for ratios; the
/// order of operations is fixed, so results are identical on every run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsAccumulator {
    initial: f64,
    prev_equity: f64,
    bars: u64,
    mean: f64,
    m2: f64,
    downside_sq: f64,
    peak: f64,
    max_dd: f64,
    underwater_bars: u64,
    max_underwater_bars: u64,
    exposed_bars: u64,
    first_close: Vec<Option<Price>>,
    last_close: Vec<Option<Price>>,
    trades: u64,
    wins: u64,
    gross_profit: f64,
    gross_loss: f64,
    best_trade: Option<f64>,
    worst_trade: Option<f64>,
    sum_trade_pct: f64,
}

impl MetricsAccumulator {
    /// Starts with the initial capital and `symbols` symbols.
    pub fn new(initial: Amount, symbols: usize) -> Self {
        let e = initial.to_f64();
        MetricsAccumulator {
            initial: e,
            prev_equity: e,
            bars: 0,
            mean: 0.0,
            m2: 0.0,
            downside_sq: 0.0,
            peak: e,
            max_dd: 0.0,
            underwater_bars: 0,
            max_underwater_bars: 0,
            exposed_bars: 0,
            first_close: vec![None; symbols],
            last_close: vec![None; symbols],
            trades: 0,
            wins: 0,
            gross_profit: 0.0,
            gross_loss: 0.0,
            best_trade: None,
            worst_trade: None,
            sum_trade_pct: 0.0,
        }
    }

    /// Records a bar's close for buy-and-hold.
    #[inline]
    pub fn observe_close(&mut self, symbol: u32, close: Price) {
        let i = symbol as usize;
        if self.first_close[i].is_none() {
            self.first_close[i] = Some(close);
        }
        self.last_close[i] = Some(close);
    }

    /// Records equity after a bar.
    #[inline]
    pub fn observe_equity(&mut self, equity: Amount, exposed: bool) {
        let e = equity.to_f64();
        let r = if self.prev_equity != 0.0 {
            e / self.prev_equity - 1.0
        } else {
            0.0
        };
        self.prev_equity = e;
        self.bars += 1;
        // Welford's update: stable for long runs.
        let delta = r - self.mean;
        self.mean += delta / self.bars as f64;
        self.m2 += delta * (r - self.mean);
        if r < 0.0 {
            self.downside_sq += r * r;
        }
        if e >= self.peak {
            self.peak = e;
            self.underwater_bars = 0;
        } else {
            self.underwater_bars += 1;
            self.max_underwater_bars = self.max_underwater_bars.max(self.underwater_bars);
            if self.peak > 0.0 {
                self.max_dd = self.max_dd.max((self.peak - e) / self.peak);
            }
        }
        if exposed {
            self.exposed_bars += 1;
        }
    }

    /// Records a closed round trip.
    pub fn observe_trade(&mut self, closed: &ClosedTrade) {
        let t = &closed.trade;
        self.trades += 1;
        let pnl = t.pnl.to_f64();
        if pnl > 0.0 {
            self.wins += 1;
            self.gross_profit += pnl;
        } else {
            self.gross_loss -= pnl;
        }
        self.best_trade = Some(
            self.best_trade
                .map_or(t.return_pct, |b| b.max(t.return_pct)),
        );
        self.worst_trade = Some(
            self.worst_trade
                .map_or(t.return_pct, |w| w.min(t.return_pct)),
        );
        self.sum_trade_pct += t.return_pct;
    }

    /// Buy-and-hold value of `initial` at the latest closes
    /// ([`analytics::buy_and_hold`](crate::analytics::buy_and_hold)).
    pub fn buy_and_hold_value(&self, initial: Amount) -> Amount {
        super::analytics::buy_and_hold(initial, &self.first_close, &self.last_close)
    }

    /// Number of symbols tracked.
    pub fn symbol_count(&self) -> usize {
        self.first_close.len().min(self.last_close.len())
    }

    /// The metrics so far, with `final_equity` the current equity.
    pub fn finish(
        &self,
        final_equity: Amount,
        total_commission: Amount,
        periods_per_year: f64,
    ) -> Metrics {
        let n = self.bars as f64;
        let std = if self.bars > 1 {
            (self.m2 / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let ann = periods_per_year.sqrt();
        let sharpe = if std > 0.0 {
            self.mean / std * ann
        } else {
            0.0
        };
        let downside = if self.bars > 0 {
            (self.downside_sq / n).sqrt()
        } else {
            0.0
        };
        let sortino = if downside > 0.0 {
            self.mean / downside * ann
        } else {
            0.0
        };
        let growth = if self.initial > 0.0 {
            final_equity.to_f64() / self.initial
        } else {
            0.0
        };
        let total_return_pct = (growth - 1.0) * 100.0;
        let cagr_pct = if self.bars > 0 && growth > 0.0 {
            (growth.powf(periods_per_year / n) - 1.0) * 100.0
        } else {
            0.0
        };
        let max_dd_pct = self.max_dd * 100.0;
        // A symbol without a bar yet is held as cash: 0%.
        let returns: Vec<f64> = self
            .first_close
            .iter()
            .zip(&self.last_close)
            .map(|(f, l)| match (f, l) {
                (Some(f), Some(l)) if f.raw() > 0 => (l.to_f64() / f.to_f64() - 1.0) * 100.0,
                _ => 0.0,
            })
            .collect();
        let bh = if returns.is_empty() {
            0.0
        } else {
            returns.iter().sum::<f64>() / returns.len() as f64
        };
        let trades = self.trades as f64;
        Metrics {
            final_equity,
            total_return_pct,
            sharpe_ratio: sharpe,
            sortino_ratio: sortino,
            calmar_ratio: if max_dd_pct > 0.0 {
                cagr_pct / max_dd_pct
            } else {
                0.0
            },
            cagr_pct,
            volatility_ann_pct: std * ann * 100.0,
            max_drawdown_pct: max_dd_pct,
            max_drawdown_duration_bars: self.max_underwater_bars,
            exposure_pct: if self.bars > 0 {
                self.exposed_bars as f64 / n * 100.0
            } else {
                0.0
            },
            buy_and_hold_return_pct: bh,
            total_trades: self.trades,
            win_rate: if self.trades > 0 {
                self.wins as f64 / trades
            } else {
                0.0
            },
            profit_factor: if self.gross_loss > 0.0 {
                Some(self.gross_profit / self.gross_loss)
            } else {
                None
            },
            best_trade_pct: self.best_trade.unwrap_or(0.0),
            worst_trade_pct: self.worst_trade.unwrap_or(0.0),
            avg_trade_pct: if self.trades > 0 {
                self.sum_trade_pct / trades
            } else {
                0.0
            },
            total_commission,
            ticks_processed: self.bars,
        }
    }
}

/// End-of-run metrics (PROTOCOL.md "End"); see the module docs for definitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Equity after the last bar (open positions marked at their last close).
    pub final_equity: Amount,
    /// Total return in percent.
    pub total_return_pct: f64,
    /// Annualised Sharpe ratio.
    pub sharpe_ratio: f64,
    /// Annualised Sortino ratio.
    pub sortino_ratio: f64,
    /// CAGR over maximum drawdown.
    pub calmar_ratio: f64,
    /// Compound annual growth rate in percent.
    pub cagr_pct: f64,
    /// Annualised volatility of bar returns in percent.
    pub volatility_ann_pct: f64,
    /// Maximum drawdown in percent.
    pub max_drawdown_pct: f64,
    /// Longest drawdown in bars.
    pub max_drawdown_duration_bars: u64,
    /// Share of bars with an open position, in percent.
    pub exposure_pct: f64,
    /// Buy-and-hold return of the symbols, in percent.
    pub buy_and_hold_return_pct: f64,
    /// Closed round trips.
    pub total_trades: u64,
    /// Fraction of winning round trips (0..1).
    pub win_rate: f64,
    /// Gross profit / gross loss; `None` without losing trades.
    pub profit_factor: Option<f64>,
    /// Best trade return in percent.
    pub best_trade_pct: f64,
    /// Worst trade return in percent.
    pub worst_trade_pct: f64,
    /// Mean trade return in percent.
    pub avg_trade_pct: f64,
    /// Commissions paid.
    pub total_commission: Amount,
    /// Bars processed.
    pub ticks_processed: u64,
}

/// One sampled point of the [`EquityCurve`]. It stands for the bars from its own bar
/// up to, not including, the next point's bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Time of the point's own bar.
    pub ts: Timestamp,
    /// Equity after the point's own bar.
    pub equity: Amount,
    /// Buy-and-hold value after the point's own bar.
    pub buy_and_hold: Amount,
    /// The deepest drawdown among the bars the point stands for.
    pub deepest: Drawdown,
}

/// Equity curve kept within a fixed number of points: when full, every other point is
/// dropped and the sampling stride doubles, so memory and snapshot size stay bounded
/// while the curve still spans the whole run. A dropped point's bars join the point
/// before it, which keeps the deeper of the two drawdowns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityCurve {
    capacity: usize,
    stride: u64,
    seen: u64,
    points: Vec<CurvePoint>,
    /// What the latest bar did, so that a final unsampled bar can end the curve as a
    /// point of its own without counting among the bars of the point before.
    tail: Tail,
}

/// How the latest bar entered the [`EquityCurve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Tail {
    /// No bar yet, or the latest bar is the last point's own.
    Sampled,
    /// The latest bar joined the last point's bars without deepening its drawdown.
    Joined,
    /// The latest bar joined the last point's bars and deepened its drawdown, which
    /// was this before.
    Deepened(Drawdown),
}

impl EquityCurve {
    /// An empty curve keeping at most `capacity` (>= 2) points.
    pub fn new(capacity: usize) -> Self {
        EquityCurve {
            capacity: capacity.max(2),
            stride: 1,
            seen: 0,
            points: Vec::new(),
            tail: Tail::Sampled,
        }
    }

    /// Records a bar: its time, the equity after it and its drawdown.
    /// `buy_and_hold` is called only when the bar is sampled.
    #[inline]
    pub fn push(
        &mut self,
        ts: Timestamp,
        equity: Amount,
        drawdown: Drawdown,
        buy_and_hold: impl FnOnce() -> Amount,
    ) {
        // The stride is a power of two, so a mask replaces a division on every bar.
        if self.seen & (self.stride - 1) == 0 {
            if self.points.len() == self.capacity {
                self.thin();
            }
            if self.seen & (self.stride - 1) == 0 {
                self.points.push(CurvePoint {
                    ts,
                    equity,
                    buy_and_hold: buy_and_hold(),
                    deepest: drawdown,
                });
                self.tail = Tail::Sampled;
                self.seen += 1;
                return;
            }
        }
        self.tail = match self.points.last_mut() {
            Some(last) if drawdown.is_deeper_than(&last.deepest) => {
                let before = last.deepest;
                last.deepest = drawdown;
                Tail::Deepened(before)
            }
            _ => Tail::Joined,
        };
        self.seen += 1;
    }

    /// Keeps every other point, each with the deeper drawdown of its pair.
    #[cold]
    fn thin(&mut self) {
        self.points = self
            .points
            .chunks(2)
            .map(|pair| {
                let mut p = pair[0];
                if let Some(q) = pair.get(1) {
                    p.deepest = p.deepest.deepest(q.deepest);
                }
                p
            })
            .collect();
        self.stride *= 2;
    }

    /// False for a deserialized curve that would misbehave.
    pub fn is_valid(&self) -> bool {
        self.capacity >= 2
            && self.stride.is_power_of_two()
            && self.points.len() <= self.capacity
            && (self.tail == Tail::Sampled || !self.points.is_empty())
    }

    /// The sampled points, plus the latest bar as a point of its own if it was not
    /// sampled: `last` is its time and equity, `buy_and_hold` and `drawdown` its
    /// buy-and-hold value and drawdown.
    pub fn points(
        &self,
        last: Option<(Timestamp, Amount)>,
        buy_and_hold: Amount,
        drawdown: Drawdown,
    ) -> Vec<CurvePoint> {
        let mut v = self.points.clone();
        let Some((ts, equity)) = last else {
            return v;
        };
        let before = match self.tail {
            Tail::Sampled => return v,
            Tail::Joined => None,
            Tail::Deepened(before) => Some(before),
        };
        if let (Some(before), Some(p)) = (before, v.last_mut()) {
            p.deepest = before;
        }
        v.push(CurvePoint {
            ts,
            equity,
            buy_and_hold,
            deepest: drawdown,
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annualisation() {
        assert_eq!(
            periods_per_year(Timeframe::Daily, Calendar::UsEquity),
            252.0
        );
        assert_eq!(periods_per_year(Timeframe::H1, Calendar::UsEquity), 1638.0);
        assert_eq!(periods_per_year(Timeframe::H1, Calendar::Fx), 6240.0);
        assert_eq!(
            periods_per_year(Timeframe::Min1, Calendar::Crypto),
            525_600.0
        );
        assert_eq!(session_calendar(&["EURUSD", "BTCUSD"]), Calendar::Fx);
        assert_eq!(session_calendar(&["BTCUSD", "GOOG"]), Calendar::UsEquity);
        assert_eq!(session_calendar(&["BTCUSD"]), Calendar::Crypto);
    }

    #[test]
    fn drawdown_and_returns() {
        let mut m = MetricsAccumulator::new(Amount::from_int(100), 1);
        for e in [110, 99, 105, 121, 100] {
            m.observe_equity(Amount::from_int(e), true);
        }
        let r = m.finish(Amount::from_int(100), Amount::ZERO, 252.0);
        assert!((r.max_drawdown_pct - (121.0 - 100.0) / 121.0 * 100.0).abs() < 1e-12);
        assert_eq!(r.max_drawdown_duration_bars, 2);
        assert_eq!(r.total_return_pct, 0.0);
        assert_eq!(r.exposure_pct, 100.0);
        let rets = [
            0.1,
            99.0 / 110.0 - 1.0,
            105.0 / 99.0 - 1.0,
            121.0 / 105.0 - 1.0,
            100.0 / 121.0 - 1.0,
        ];
        let mean = rets.iter().sum::<f64>() / 5.0;
        let var = rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((r.sharpe_ratio - mean / var.sqrt() * 252f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn equity_curve_stays_bounded_and_spans_the_run() {
        let mut c = EquityCurve::new(8);
        let flat = |e: Amount| Drawdown { peak: e, equity: e };
        for i in 0..1000 {
            c.push(i, Amount::from_int(i), flat(Amount::from_int(i)), || {
                Amount::from_int(2 * i)
            });
        }
        let pts = c.points(
            Some((999, Amount::from_int(999))),
            Amount::from_int(1998),
            flat(Amount::from_int(999)),
        );
        assert!(pts.len() <= 9);
        assert_eq!(pts.first().unwrap().ts, 0);
        assert_eq!(pts.last().unwrap().ts, 999);
        assert!(pts.windows(2).all(|w| w[0].ts < w[1].ts));
        // Each point keeps its own bar's values.
        assert!(pts
            .iter()
            .all(|p| p.equity.raw() * 2 == p.buy_and_hold.raw()
                && p.ts * 100_000_000 == p.equity.raw() as i64));
    }

    /// The curve of `equities` (one bar a day, from 100) kept in 4 points, as (day,
    /// equity, drawdown).
    fn four_point_curve(equities: &[i64]) -> Vec<(i64, i64, String)> {
        let mut c = EquityCurve::new(4);
        let mut periods = crate::analytics::PeriodAccumulator::new(Amount::from_int(100));
        for (i, e) in equities.iter().enumerate() {
            let e = Amount::from_int(*e);
            let ts = i as i64 * 86_400;
            let dd = periods.observe(ts, e);
            c.push(ts, e, dd, || e);
        }
        let n = equities.len() - 1;
        let last = Some((n as i64 * 86_400, Amount::from_int(equities[n])));
        c.points(last, Amount::ZERO, periods.drawdown())
            .iter()
            .map(|p| {
                (
                    p.ts / 86_400,
                    (p.equity.raw() / 100_000_000) as i64,
                    p.deepest.pct().to_string(),
                )
            })
            .collect()
    }

    fn rows(want: &[(i64, i64, &str)]) -> Vec<(i64, i64, String)> {
        want.iter()
            .map(|&(t, e, d)| (t, e, d.to_string()))
            .collect()
    }

    #[test]
    fn thinning_keeps_the_deepest_drawdown_of_the_bars_a_point_stands_for() {
        let equities = [100, 90, 100, 80, 110, 99, 120, 60, 120, 130];
        // Capacity 4: bars 0-3 sampled, thinned at bar 4 to [0, 2] (stride 2), then
        // [0, 2, 4, 6], thinned at bar 8 to [0, 4] (stride 4), then 8; bar 9 ends it.
        // The point of bar 4 stands for bars 4-7: 60 after a peak of 120 at bar 6 is
        // the run's worst (50%), on a bar that was never sampled.
        assert_eq!(
            four_point_curve(&equities),
            rows(&[
                (0, 100, "20.0000"),
                (4, 110, "50.0000"),
                (8, 120, "0.0000"),
                (9, 130, "0.0000"),
            ])
        );
        // A last bar that is not sampled is a point of its own, not one of the bars of
        // the point before, even when it is the deeper: 100 after 120 is 16.6667%.
        let mut falling = equities;
        falling[9] = 100;
        assert_eq!(
            four_point_curve(&falling),
            rows(&[
                (0, 100, "20.0000"),
                (4, 110, "50.0000"),
                (8, 120, "0.0000"),
                (9, 100, "16.6667"),
            ])
        );
        // The same run as the float metrics see it.
        let mut m = MetricsAccumulator::new(Amount::from_int(100), 1);
        for e in equities {
            m.observe_equity(Amount::from_int(e), true);
        }
        let r = m.finish(Amount::from_int(130), Amount::ZERO, 252.0);
        assert!((r.max_drawdown_pct - 50.0).abs() < 1e-12);
    }
}
