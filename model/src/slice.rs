//! A simulation's market data: warm-up history plus one merged, time-ordered timeline
//! across symbols.

use serde::{Deserialize, Serialize};

use crate::candle::{Candle, Timestamp};
use crate::timeframe::Timeframe;

/// Which part of the trading day a bar belongs to (wire names in PROTOCOL.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketSession {
    /// Before the regular session (US equities 04:00-09:30 New York).
    PreMarket,
    /// The regular session; 24-hour markets are always regular.
    Regular,
    /// After the regular session (US equities 16:00-20:00 New York).
    AfterHours,
}

/// Which trading hours a session sees (`market_hours` in PROTOCOL.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketHours {
    /// Every bar.
    #[default]
    All,
    /// US-equity bars overlapping 09:30-16:00 New York only.
    Regular,
    /// US-equity bars overlapping 04:00-20:00 New York only.
    Extended,
}

/// One symbol's bar at one time step. `symbol` indexes [`Slice::symbols`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolBar {
    /// Index into the slice's symbol list.
    pub symbol: u32,
    /// The bar.
    pub candle: Candle,
}

/// One point of the timeline: the bars of every symbol that has a bar at `ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Bar open time shared by all bars of this step.
    pub ts: Timestamp,
    /// Offset of this step's first bar in [`Slice::bars`].
    pub start: u32,
    /// Number of bars in this step (symbols without a bar at `ts` are absent).
    pub len: u32,
    /// Last step of a trading day: `day` orders expire after it.
    pub is_eod: bool,
    /// Trading-day part of this step.
    pub session: MarketSession,
}

/// Warm-up history and the timeline of one simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Symbols in request order; [`SymbolBar::symbol`] indexes this.
    pub symbols: Vec<String>,
    /// Per symbol (same order as `symbols`): up to `warmup_bars` bars before the start.
    pub warmup: Vec<Vec<Candle>>,
    /// Time steps in [start, end), strictly increasing `ts`.
    pub steps: Vec<Step>,
    /// All bars of all steps, step after step, symbols in index order within a step.
    pub bars: Vec<SymbolBar>,
}

impl Slice {
    /// The bars of one step.
    pub fn bars_of(&self, step: &Step) -> &[SymbolBar] {
        &self.bars[step.start as usize..(step.start + step.len) as usize]
    }

    /// Iterates over steps with their bars.
    pub fn iter(&self) -> impl Iterator<Item = (&Step, &[SymbolBar])> + '_ {
        self.steps.iter().map(move |s| (s, self.bars_of(s)))
    }
}
