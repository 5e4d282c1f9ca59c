//! Property tests of the engine's invariants (PROTOCOL.md "Fill model").
//!
//! Every case builds a random multi-symbol bar timeline and a random order flow, drives
//! the engine through its public API exactly as a client would (bars through
//! `Engine::on_step`, order batches and cancels between bars), records everything in a
//! log, and checks one invariant on that log against values the test computes itself.

use std::collections::BTreeMap;

use engine::{
    AccountSnapshot, BatchResult, CancelResult, EndReason, Engine, EngineConfig, Event,
    ExecutionMode, ExecutionReport, FillReason, OrderRequest, OrderStatus, OrderType, RejectReason,
    Side, TickEvent, TimeInForce,
};
use model::{Amount, Candle, MarketSession, Price, Step, SymbolBar};
use proptest::prelude::*;

/// One unit in raw fixed-point.
const UNIT: i64 = 100_000_000;
/// Price grid of the generated bars: 0.0001.
const TICK: i64 = 10_000;
const SYMBOLS: [&str; 3] = ["AAA", "BBB", "CCC"];
/// `OrderSpec::symbol` value that names a symbol outside the session.
const UNKNOWN_SYMBOL: u8 = 9;

// ---------------------------------------------------------------------------------------
// Generated input
// ---------------------------------------------------------------------------------------

/// One symbol's price move over one step (applied whether or not the bar is emitted, so
/// a symbol missing for a while comes back with a gap).
#[derive(Clone, Copy, Debug)]
struct Move {
    gap_bps: i64,
    ret_bps: i64,
    up_bps: i64,
    down_bps: i64,
    volume: i128,
}

#[derive(Clone, Copy, Debug)]
enum KindSpec {
    Market,
    Limit,
    Stop,
    /// A stop whose trigger is given as `price` (the official SDK's shape).
    StopViaPrice,
    StopLimit,
    /// A stop_limit without `stop_price`: must be rejected.
    StopLimitNoStop,
}

#[derive(Clone, Copy, Debug)]
enum QtySpec {
    Units(i64),
    /// As many units as the buying power allows at the last close (drives cash to ~0).
    AllIn,
}

#[derive(Clone, Copy, Debug)]
struct BracketSpec {
    sl_bps: i64,
    tp_bps: i64,
    /// 0: both legs, 1: stop-loss only, 2: take-profit only.
    legs: u8,
    /// Put the legs on the wrong sides of each other (must be rejected with both legs).
    swapped: bool,
}

#[derive(Clone, Copy, Debug)]
struct OrderSpec {
    symbol: u8,
    side: Side,
    kind: KindSpec,
    tif: TimeInForce,
    qty: QtySpec,
    price_bps: i64,
    stop_bps: i64,
    bad_price: bool,
    bracket: Option<BracketSpec>,
    /// Reuse the id of a working order (must be rejected).
    dup: Option<u8>,
    /// A client-chosen id from a tiny alphabet that imitates bracket leg ids
    /// (see [`adversarial_id`]); only the id-uniqueness property uses these.
    custom_id: Option<(u8, u8, u8)>,
}

#[derive(Clone, Copy, Debug)]
enum CancelSpec {
    Working(u8),
    Unknown,
}

#[derive(Clone, Debug, Default)]
struct Cmds {
    orders: Vec<OrderSpec>,
    atomic: bool,
    cancels: Vec<CancelSpec>,
}

#[derive(Clone, Debug)]
struct StepSpec {
    present: u8,
    eod: bool,
    dt_minutes: i64,
    moves: Vec<Move>,
    cmds: Cmds,
}

#[derive(Clone, Debug)]
struct ConfigSpec {
    n: usize,
    capital: i64,
    commission_raw: i64,
    min_commission_cents: i64,
    slippage_bps: u32,
    allow_short: bool,
    cap_bps: Option<u32>,
    every: u32,
    curve_points: usize,
    start_prices: Vec<i64>,
}

/// SplitMix64: bar shapes come from one seed per step (cheap to generate; shrinking
/// still removes steps and orders, and failures print the concrete bars).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

impl Move {
    fn from_rng(r: &mut SplitMix) -> Move {
        let gap_bps = if r.chance(20) { r.range(-800, 800) } else { 0 };
        let ret_bps = r.range(-300, 300);
        let up_bps = if r.chance(20) { 0 } else { r.range(0, 250) };
        let down_bps = if r.chance(20) { 0 } else { r.range(0, 250) };
        let units = if r.chance(20) {
            r.range(1, 60)
        } else {
            r.range(60, 1_000_000)
        };
        let frac = if r.chance(25) {
            r.range(0, UNIT - 1)
        } else {
            0
        };
        Move {
            gap_bps,
            ret_bps,
            up_bps,
            down_bps,
            volume: units as i128 * UNIT as i128 + frac as i128,
        }
    }
}

fn kind_strategy() -> impl Strategy<Value = KindSpec> {
    prop_oneof![
        4 => Just(KindSpec::Market),
        4 => Just(KindSpec::Limit),
        2 => Just(KindSpec::Stop),
        1 => Just(KindSpec::StopViaPrice),
        2 => Just(KindSpec::StopLimit),
        1 => Just(KindSpec::StopLimitNoStop),
    ]
}

fn qty_strategy() -> impl Strategy<Value = QtySpec> {
    prop_oneof![
        6 => (1i64..=50).prop_map(QtySpec::Units),
        2 => (51i64..=3000).prop_map(QtySpec::Units),
        1 => (-3i64..=0).prop_map(QtySpec::Units),
        1 => Just(QtySpec::AllIn),
    ]
}

/// Kind, side and quantity shrink structurally; the rest comes from a seed.
fn order_strategy() -> impl Strategy<Value = OrderSpec> {
    (kind_strategy(), any::<bool>(), qty_strategy(), any::<u64>()).prop_map(
        |(kind, buy, qty, seed)| {
            let mut r = SplitMix(seed);
            let symbol = if r.chance(5) {
                UNKNOWN_SYMBOL
            } else {
                r.range(0, 2) as u8
            };
            let tif = match r.range(0, 7) {
                0..=2 => TimeInForce::Day,
                3..=5 => TimeInForce::Gtc,
                _ => TimeInForce::Ioc,
            };
            let price_bps = r.range(-600, 600);
            let stop_bps = r.range(-600, 600);
            let bad_price = r.chance(3);
            let bracket = r.chance(25).then(|| BracketSpec {
                sl_bps: r.range(10, 1500),
                tp_bps: r.range(10, 1500),
                legs: r.range(0, 2) as u8,
                swapped: r.chance(10),
            });
            let dup = r.chance(5).then(|| r.next() as u8);
            OrderSpec {
                symbol,
                side: if buy { Side::Buy } else { Side::Sell },
                kind,
                tif,
                qty,
                price_bps,
                stop_bps,
                bad_price,
                bracket,
                dup,
                custom_id: None,
            }
        },
    )
}

fn cmds_strategy() -> impl Strategy<Value = Cmds> {
    (
        prop_oneof![
            3 => Just(Vec::new()),
            2 => prop::collection::vec(order_strategy(), 1..=3),
        ],
        prop::bool::weighted(0.2),
        prop_oneof![
            8 => Just(Vec::new()),
            2 => prop::collection::vec(
                prop_oneof![
                    4 => any::<u8>().prop_map(CancelSpec::Working),
                    1 => Just(CancelSpec::Unknown),
                ],
                1..=2,
            ),
        ],
    )
        .prop_map(|(orders, atomic, cancels)| Cmds {
            orders,
            atomic,
            cancels,
        })
}

fn step_strategy() -> impl Strategy<Value = StepSpec> {
    (any::<u64>(), cmds_strategy()).prop_map(|(seed, cmds)| StepSpec {
        cmds,
        ..step_from_seed(seed)
    })
}

/// A step's bars (presence, end of day, time gap, price moves) from one seed.
fn step_from_seed(seed: u64) -> StepSpec {
    let mut r = SplitMix(seed);
    let present = if r.chance(60) { 7 } else { r.range(1, 7) as u8 };
    let eod = r.chance(12);
    let dt_minutes = match r.range(0, 14) {
        0..=11 => 1,
        12 | 13 => r.range(2, 30),
        _ => r.range(31, 5000),
    };
    let moves = (0..3).map(|_| Move::from_rng(&mut r)).collect();
    StepSpec {
        present,
        eod,
        dt_minutes,
        moves,
        cmds: Cmds::default(),
    }
}

fn config_strategy(allow_short: impl Strategy<Value = bool>) -> impl Strategy<Value = ConfigSpec> {
    (
        1usize..=3,
        prop_oneof![1 => 500i64..=5_000, 2 => 5_000i64..=1_000_000],
        prop_oneof![2 => Just(0i64), 1 => 0i64..=5_000_000],
        prop_oneof![2 => Just(0i64), 1 => 1i64..=500],
        prop_oneof![1 => Just(0u32), 2 => 0u32..=50],
        allow_short,
        prop_oneof![2 => Just(None), 1 => (1u32..=10_000).prop_map(Some)],
        prop_oneof![2 => Just(0u32), 1 => 1u32..=5],
        2usize..=64,
        prop::collection::vec(prop_oneof![1 => 1i64..=10, 3 => 10i64..=400], 3),
    )
        .prop_map(
            |(
                n,
                capital,
                commission_raw,
                min_commission_cents,
                slippage_bps,
                allow_short,
                cap_bps,
                every,
                curve_points,
                start_prices,
            )| ConfigSpec {
                n,
                capital,
                commission_raw,
                min_commission_cents,
                slippage_bps,
                allow_short,
                cap_bps,
                every,
                curve_points,
                start_prices,
            },
        )
}

fn scenario_strategy(
    allow_short: impl Strategy<Value = bool>,
    max_steps: usize,
) -> impl Strategy<Value = Scenario> {
    (
        config_strategy(allow_short),
        cmds_strategy(),
        prop::collection::vec(step_strategy(), 1..=max_steps),
    )
        .prop_map(|(cfg, pre, steps)| Scenario::build(&cfg, pre, &steps))
}

fn any_scenario() -> impl Strategy<Value = Scenario> {
    scenario_strategy(any::<bool>(), 200)
}

/// A cash account (allow_short = false); half the cases trade penny prices with a high
/// minimum commission and little capital, where exits can cost more than they bring.
fn cash_account_scenario() -> impl Strategy<Value = Scenario> {
    prop_oneof![scenario_strategy(Just(false), 200), penny_scenario()]
}

fn penny_scenario() -> impl Strategy<Value = Scenario> {
    (
        config_strategy(Just(false)),
        prop::collection::vec(1i64..=3, 3),
        100i64..=500,
        200i64..=2_000,
        cmds_strategy(),
        prop::collection::vec(step_strategy(), 1..=200),
    )
        .prop_map(|(mut cfg, prices, min_cents, capital, pre, steps)| {
            cfg.start_prices = prices;
            cfg.min_commission_cents = min_cents;
            cfg.capital = capital;
            Scenario::build(&cfg, pre, &steps)
        })
}

/// `a`, `b-sl`, `a-tp-3`, ...: ids that collide with the ids of bracket legs.
fn adversarial_id((root, kind, n): (u8, u8, u8)) -> String {
    let root = ["a", "b", "a-sl"][root as usize % 3];
    match kind % 5 {
        0 => root.to_string(),
        1 => format!("{root}-sl"),
        2 => format!("{root}-tp"),
        3 => format!("{root}-sl-{n}"),
        _ => format!("{root}-tp-{n}"),
    }
}

/// Orders with adversarial ids: half are bracketed market orders (their legs get
/// created early, while sequence numbers are still small), half rest far from the market
/// so that their ids stay taken.
fn adversarial_order_strategy() -> impl Strategy<Value = OrderSpec> {
    (
        order_strategy(),
        (0u8..3, 0u8..5, 1u8..=12),
        prop::bool::weighted(0.5),
    )
        .prop_map(|(mut spec, id, bracketed)| {
            spec.custom_id = Some(id);
            spec.dup = None;
            spec.bad_price = false;
            spec.qty = QtySpec::Units(1);
            if bracketed {
                spec.kind = KindSpec::Market;
                spec.bracket = Some(BracketSpec {
                    sl_bps: 300,
                    tp_bps: 300,
                    legs: 0,
                    swapped: false,
                });
            } else {
                spec.kind = KindSpec::Limit;
                spec.tif = TimeInForce::Gtc;
                spec.price_bps = -spec.side.sign() * 5_000;
                spec.bracket = None;
            }
            spec
        })
}

fn adversarial_cmds() -> impl Strategy<Value = Cmds> {
    (
        prop::collection::vec(adversarial_order_strategy(), 0..=4),
        prop::bool::weighted(0.1),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(any::<u8>().prop_map(CancelSpec::Working), 1..=2),
        ],
    )
        .prop_map(|(orders, atomic, cancels)| Cmds {
            orders,
            atomic,
            cancels,
        })
}

fn adversarial_scenario() -> impl Strategy<Value = Scenario> {
    let step = (any::<u64>(), adversarial_cmds()).prop_map(|(seed, cmds)| {
        let mut s = step_from_seed(seed);
        s.cmds = cmds;
        s
    });
    (
        config_strategy(any::<bool>()),
        adversarial_cmds(),
        prop::collection::vec(step, 1..=12),
    )
        .prop_map(|(cfg, pre, steps)| Scenario::build(&cfg, pre, &steps))
}

// ---------------------------------------------------------------------------------------
// Scenario: concrete bars plus order flow resolved against the engine
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Scenario {
    config: EngineConfig,
    n: usize,
    steps: Vec<(Step, Vec<SymbolBar>)>,
    /// `cmds[s]` is applied before step `s` (`cmds[steps.len()]` after the last step).
    cmds: Vec<Cmds>,
    /// `refs[s][symbol]`: the last close a client knows when sending `cmds[s]`.
    refs: Vec<Vec<Price>>,
}

fn floor_tick(raw: i128) -> i64 {
    (raw.div_euclid(TICK as i128) * TICK as i128) as i64
}

fn ceil_tick(raw: i128) -> i64 {
    (-(-raw).div_euclid(TICK as i128) * TICK as i128) as i64
}

fn scale_bps(raw: i64, bps: i64) -> i128 {
    raw as i128 * (10_000 + bps) as i128 / 10_000
}

impl Scenario {
    fn build(cfg: &ConfigSpec, pre: Cmds, specs: &[StepSpec]) -> Scenario {
        let n = cfg.n;
        let mut config = EngineConfig::new(
            SYMBOLS[..n].iter().map(|s| s.to_string()).collect(),
            Amount::from_int(cfg.capital),
        );
        config.commission_per_share = Price::from_raw(cfg.commission_raw);
        config.min_commission = Amount::from_raw(cfg.min_commission_cents as i128 * 1_000_000);
        config.slippage_bps = cfg.slippage_bps;
        config.allow_short = cfg.allow_short;
        config.max_volume_participation_bps = cfg.cap_bps;
        config.account_snapshot_every = cfg.every;
        config.equity_curve_points = cfg.curve_points;

        let mut close: Vec<i64> = cfg.start_prices.iter().map(|p| p * UNIT).collect();
        let mut refs = vec![close
            .iter()
            .map(|&c| Price::from_raw(c))
            .collect::<Vec<_>>()];
        let mut cmds = vec![pre];
        let mut steps = Vec::with_capacity(specs.len());
        let mut ts = 1_700_000_000i64;
        let full = (1u8 << n) - 1;
        for spec in specs {
            ts += 60 * spec.dt_minutes;
            let mut mask = spec.present & full;
            if mask == 0 {
                mask = 1 << (spec.present as usize % n);
            }
            let mut bars = Vec::new();
            for (sym, m) in spec.moves.iter().enumerate().take(n) {
                let open = floor_tick(scale_bps(close[sym], m.gap_bps)).max(UNIT);
                let cl = floor_tick(scale_bps(open, m.ret_bps)).max(UNIT);
                let high = ceil_tick(scale_bps(open.max(cl), m.up_bps));
                let low = floor_tick(scale_bps(open.min(cl), -m.down_bps)).max(UNIT / 2);
                close[sym] = cl;
                if mask & (1 << sym) != 0 {
                    bars.push(SymbolBar {
                        symbol: sym as u32,
                        candle: Candle {
                            ts,
                            open: Price::from_raw(open),
                            high: Price::from_raw(high),
                            low: Price::from_raw(low),
                            close: Price::from_raw(cl),
                            volume: Amount::from_raw(m.volume),
                        },
                    });
                }
            }
            let mut known = refs.last().cloned().unwrap_or_default();
            for b in &bars {
                assert!(b.candle.validate().is_ok(), "generator made {b:?}");
                known[b.symbol as usize] = b.candle.close;
            }
            refs.push(known);
            let step = Step {
                ts,
                start: 0,
                len: bars.len() as u32,
                is_eod: spec.eod,
                session: MarketSession::Regular,
            };
            steps.push((step, bars));
            cmds.push(spec.cmds.clone());
        }
        Scenario {
            config,
            n,
            steps,
            cmds,
            refs,
        }
    }

    /// Number of actions: command slots and steps, interleaved `C0 S0 C1 S1 ... Cn`.
    fn actions(&self) -> usize {
        2 * self.steps.len() + 1
    }

    fn bar(&self, step: usize, symbol: &str) -> Option<Candle> {
        let sym = SYMBOLS.iter().position(|s| *s == symbol)? as u32;
        self.steps[step]
            .1
            .iter()
            .find(|b| b.symbol == sym)
            .map(|b| b.candle)
    }

    /// First step at or after `from` that has a bar of `symbol`.
    fn next_bar_step(&self, from: usize, symbol: &str) -> Option<usize> {
        (from..self.steps.len()).find(|&i| self.bar(i, symbol).is_some())
    }

    fn engine(&self) -> Engine {
        Engine::new(self.config.clone()).expect("generated config is valid")
    }
}

fn offset(reference: Price, bps: i64) -> Price {
    Price::from_raw(floor_tick(scale_bps(reference.raw(), bps)).max(TICK))
}

/// Turns generated specs into the concrete batch for slot `slot`, using only the
/// scenario and the engine's state (so every run resolves them identically). Returns
/// the requests and, for each, the rejection its shape alone must cause.
fn resolve(
    sc: &Scenario,
    slot: usize,
    engine: &Engine,
    specs: &[OrderSpec],
) -> (Vec<OrderRequest>, Vec<Option<RejectReason>>) {
    let working = engine.account_snapshot().open_orders;
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    let mut expected_unknown = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let (order_id, dup) = match (spec.custom_id, spec.dup) {
            (Some(id), _) => {
                let id = adversarial_id(id);
                // Whether an earlier order of this batch took the id depends on its
                // buying power check: no expectation then.
                let taken = working.contains(&id);
                if requests.iter().any(|r: &OrderRequest| r.order_id == id) {
                    expected_unknown.push(k);
                }
                (id, taken)
            }
            (None, Some(d)) if !working.is_empty() => {
                (working[d as usize % working.len()].clone(), true)
            }
            _ => (format!("o{slot}_{k}"), false),
        };
        let (symbol, sym) = if spec.symbol == UNKNOWN_SYMBOL {
            ("ZZZ".to_string(), 0)
        } else {
            let i = spec.symbol as usize % sc.n;
            (SYMBOLS[i].to_string(), i)
        };
        let reference = sc.refs[slot][sym];
        let quantity = match spec.qty {
            QtySpec::Units(q) => q,
            QtySpec::AllIn => {
                let unit_cost = reference
                    .slipped(sc.config.slippage_bps, true)
                    .raw()
                    .max(spec_limit_hint(spec, reference).raw())
                    + sc.config.commission_per_share.raw();
                let budget = engine.buying_power() - sc.config.min_commission;
                (budget.raw() / unit_cost as i128).clamp(1, 1_000_000) as i64
            }
        };
        let px = offset(reference, spec.price_bps);
        let st = offset(reference, spec.stop_bps);
        let (order_type, mut price, mut stop_price) = match spec.kind {
            KindSpec::Market => (OrderType::Market, None, None),
            KindSpec::Limit => (OrderType::Limit, Some(px), None),
            KindSpec::Stop => (OrderType::Stop, None, Some(st)),
            KindSpec::StopViaPrice => (OrderType::Stop, Some(st), None),
            KindSpec::StopLimit => (OrderType::StopLimit, Some(px), Some(st)),
            KindSpec::StopLimitNoStop => (OrderType::StopLimit, Some(px), None),
        };
        let (mut stop_loss, mut take_profit) = (None, None);
        let mut bad_bracket = false;
        if let Some(b) = spec.bracket {
            let dir = spec.side.sign();
            let mut sl = offset(reference, -dir * b.sl_bps);
            let mut tp = offset(reference, dir * b.tp_bps);
            if b.swapped {
                std::mem::swap(&mut sl, &mut tp);
            }
            match b.legs {
                0 => {
                    stop_loss = Some(sl);
                    take_profit = Some(tp);
                    bad_bracket = match spec.side {
                        Side::Buy => sl >= tp,
                        Side::Sell => sl <= tp,
                    };
                }
                1 => stop_loss = Some(sl),
                _ => take_profit = Some(tp),
            }
        }
        if spec.bad_price {
            if price.is_some() {
                price = Some(Price::ZERO);
            } else if stop_price.is_some() {
                stop_price = Some(Price::from_raw(-TICK));
            } else {
                stop_loss = Some(Price::ZERO);
            }
        }
        let missing = matches!(spec.kind, KindSpec::StopLimitNoStop);
        let reason = if dup {
            Some(RejectReason::DuplicateOrderId)
        } else if spec.symbol == UNKNOWN_SYMBOL {
            Some(RejectReason::UnknownSymbol)
        } else if quantity <= 0 {
            Some(RejectReason::InvalidQuantity)
        } else if missing {
            Some(RejectReason::MissingPrice)
        } else if spec.bad_price {
            Some(RejectReason::InvalidPrice)
        } else if bad_bracket {
            Some(RejectReason::InvalidBracket)
        } else {
            None
        };
        requests.push(OrderRequest {
            order_id,
            symbol,
            side: spec.side,
            order_type,
            quantity,
            price,
            stop_price,
            stop_loss,
            take_profit,
            time_in_force: spec.tif,
        });
        expected.push(if expected_unknown.contains(&k) {
            None
        } else {
            reason
        });
    }
    (requests, expected)
}

/// The price an all-in buy is estimated at: the limit for limit-priced orders.
fn spec_limit_hint(spec: &OrderSpec, reference: Price) -> Price {
    match spec.kind {
        KindSpec::Limit | KindSpec::StopLimit => offset(reference, spec.price_bps),
        KindSpec::Stop | KindSpec::StopViaPrice => offset(reference, spec.stop_bps),
        _ => Price::ZERO,
    }
}

// ---------------------------------------------------------------------------------------
// Driving the engine and recording what happened
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    /// Step `i` was processed: its events and the account right after it.
    Step {
        i: usize,
        events: Vec<Event>,
        account: AccountSnapshot,
    },
    /// A batch sent in command slot `slot` (before step `slot`).
    Submit {
        slot: usize,
        mode: ExecutionMode,
        requests: Vec<OrderRequest>,
        expected: Vec<Option<RejectReason>>,
        result: BatchResult,
    },
    /// Cancels sent in command slot `slot`.
    Cancel {
        slot: usize,
        ids: Vec<String>,
        result: CancelResult,
    },
}

/// Performs actions `range` of the scenario (`C0 S0 C1 S1 ... Cn`) on `engine`.
fn drive(sc: &Scenario, engine: &mut Engine, range: std::ops::Range<usize>, log: &mut Vec<Entry>) {
    for a in range {
        if a % 2 == 1 {
            let i = a / 2;
            let (step, bars) = &sc.steps[i];
            let mut events = Vec::new();
            engine.on_step(step, bars, &mut events);
            log.push(Entry::Step {
                i,
                events,
                account: engine.account_snapshot(),
            });
            continue;
        }
        let slot = a / 2;
        let cmds = &sc.cmds[slot];
        if !cmds.orders.is_empty() {
            let (requests, expected) = resolve(sc, slot, engine, &cmds.orders);
            let mode = if cmds.atomic {
                ExecutionMode::Atomic
            } else {
                ExecutionMode::BestEffort
            };
            let result = engine.submit(requests.clone(), mode);
            log.push(Entry::Submit {
                slot,
                mode,
                requests,
                expected,
                result,
            });
        }
        if !cmds.cancels.is_empty() {
            let working = engine.account_snapshot().open_orders;
            let ids: Vec<String> = cmds
                .cancels
                .iter()
                .map(|c| match c {
                    CancelSpec::Working(k) if !working.is_empty() => {
                        working[*k as usize % working.len()].clone()
                    }
                    _ => format!("nope{slot}"),
                })
                .collect();
            let result = engine.cancel(&ids);
            log.push(Entry::Cancel { slot, ids, result });
        }
    }
}

fn run(sc: &Scenario) -> (Engine, Vec<Entry>) {
    let mut engine = sc.engine();
    let mut log = Vec::new();
    drive(sc, &mut engine, 0..sc.actions(), &mut log);
    (engine, log)
}

/// Every execution with the index of the step that produced it, in order.
fn executions(log: &[Entry]) -> impl Iterator<Item = (usize, &ExecutionReport)> {
    log.iter().flat_map(|e| match e {
        Entry::Step { i, events, .. } => events
            .iter()
            .filter_map(move |ev| match ev {
                Event::Execution(x) => Some((*i, &**x)),
                _ => None,
            })
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    })
}

/// Accepted client orders by id, with the command slot they were sent in.
fn accepted_orders(log: &[Entry]) -> BTreeMap<String, (usize, OrderRequest)> {
    let mut out = BTreeMap::new();
    for e in log {
        if let Entry::Submit {
            slot,
            requests,
            result,
            ..
        } = e
        {
            for id in &result.accepted_orders {
                let req = requests
                    .iter()
                    .find(|r| &r.order_id == id)
                    .expect("accepted id was submitted");
                let previous = out.insert(id.clone(), (*slot, req.clone()));
                assert!(previous.is_none(), "client id {id} accepted twice");
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leg {
    StopLoss,
    TakeProfit,
}

/// Splits a bracket leg id (`<entry>-sl`, `<entry>-tp`, possibly `-<seq>` suffixed)
/// into its entry id and leg. Client ids generated here never contain `-`.
fn leg_of(id: &str) -> Option<(&str, Leg)> {
    let (root, rest) = id.split_once('-')?;
    let leg = if rest.starts_with("sl") {
        Leg::StopLoss
    } else if rest.starts_with("tp") {
        Leg::TakeProfit
    } else {
        panic!("unexpected order id {id}")
    };
    Some((root, leg))
}

fn signed_notional(x: &ExecutionReport) -> Amount {
    x.executed_price.times(x.executed_quantity * x.side.sign())
}

fn symbol_index(symbol: &str) -> usize {
    SYMBOLS
        .iter()
        .position(|s| *s == symbol)
        .expect("known symbol")
}

/// `cases` per property unless `PROPTEST_CASES` asks for another number (deeper runs).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        max_shrink_iters: 4096,
        // ChaCha is slow in debug builds; XorShift keeps generation cheap.
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Properties (as functions, so that rustfmt formats them; the proptest! blocks at the
// end only generate inputs)
// ---------------------------------------------------------------------------------------

type Checked = Result<(), TestCaseError>;

/// Property 1: Cash and positions are exactly the ledger of the execution reports: cash =
/// initial - sum(signed notional) - sum(commission) and position = sum(signed quantity),
/// after every step; every commission follows the configured rule; the results' total
/// commission is their sum.
fn check_ledger(sc: &Scenario) -> Checked {
    let (mut engine, log) = run(sc);
    let cfg = &sc.config;
    let mut cash = cfg.initial_capital;
    let mut positions = vec![0i64; sc.n];
    let mut total_commission = Amount::ZERO;
    for e in &log {
        let Entry::Step { i, events, account } = e else {
            continue;
        };
        for ev in events {
            let Event::Execution(x) = ev else { continue };
            prop_assert!(x.executed_quantity > 0, "{:?}", x);
            let rule = cfg
                .commission_per_share
                .times(x.executed_quantity)
                .max(cfg.min_commission);
            prop_assert_eq!(x.commission, rule, "step {}: {:?}", i, x);
            cash = cash - signed_notional(x) - x.commission;
            total_commission += x.commission;
            positions[symbol_index(&x.symbol)] += x.executed_quantity * x.side.sign();
        }
        prop_assert_eq!(account.cash, cash, "cash after step {}", i);
        let reported: Vec<(String, i64)> = account
            .positions
            .iter()
            .map(|p| (p.symbol.clone(), p.quantity))
            .collect();
        let ledger: Vec<(String, i64)> = positions
            .iter()
            .enumerate()
            .filter(|(_, q)| **q != 0)
            .map(|(s, q)| (SYMBOLS[s].to_string(), *q))
            .collect();
        prop_assert_eq!(reported, ledger, "positions after step {}", i);
    }
    let signed: Amount = executions(&log).map(|(_, x)| signed_notional(x)).sum();
    prop_assert_eq!(cash, cfg.initial_capital - signed - total_commission);
    prop_assert_eq!(engine.cash(), cash);
    for (s, q) in positions.iter().enumerate() {
        prop_assert_eq!(engine.position(s as u32), *q);
    }
    let results = engine.finish(EndReason::Completed);
    prop_assert_eq!(results.metrics.total_commission, total_commission);
    prop_assert_eq!(results.account.cash, cash);
    Ok(())
}

/// Property 2: Every fill's price before slippage lies within its bar's [low, high] (with
/// slippage: between low and high slipped the same way); slippage is the configured one
/// on market and stop fills and zero on limit-priced fills; market fills are at the open;
/// no fill trades through its limit or gets a better price than its stop.
fn check_fill_prices(sc: &Scenario) -> Checked {
    let (_, log) = run(sc);
    let orders = accepted_orders(&log);
    let bps = sc.config.slippage_bps;
    for (i, x) in executions(&log) {
        let Some(bar) = sc.bar(i, &x.symbol) else {
            return Err(TestCaseError::fail(format!(
                "fill without a bar of its symbol at step {i}: {x:?}"
            )));
        };
        let up = x.side == Side::Buy;
        prop_assert!(x.slippage_bps == 0 || x.slippage_bps == bps, "{:?}", x);
        let low = bar.low.slipped(x.slippage_bps, up);
        let high = bar.high.slipped(x.slippage_bps, up);
        prop_assert!(
            low <= x.executed_price && x.executed_price <= high,
            "price outside the bar at step {}: {:?} vs {:?}",
            i,
            x,
            bar
        );
        // The order's own price: its request, or the bracket of its entry.
        let (kind, limit, stop) = match leg_of(&x.order_id) {
            None => {
                let (_, req) = &orders[&x.order_id];
                prop_assert_eq!(req.side, x.side);
                match req.order_type {
                    OrderType::Stop => (OrderType::Stop, None, req.stop_price.or(req.price)),
                    k => (k, req.price, req.stop_price),
                }
            }
            Some((root, leg)) => {
                let (_, req) = &orders[root];
                prop_assert_eq!(req.side.opposite(), x.side, "leg side: {:?}", x);
                match leg {
                    Leg::StopLoss => {
                        prop_assert_eq!(x.reason, FillReason::StopLoss);
                        (OrderType::Stop, None, req.stop_loss)
                    }
                    Leg::TakeProfit => {
                        prop_assert_eq!(x.reason, FillReason::TakeProfit);
                        (OrderType::Limit, req.take_profit, None)
                    }
                }
            }
        };
        match kind {
            OrderType::Market => prop_assert_eq!(
                x.executed_price,
                bar.open.slipped(bps, up),
                "market fill not at the open: {:?}",
                x
            ),
            OrderType::Stop => {
                let s = stop.expect("a stop has a trigger").slipped(bps, up);
                prop_assert_eq!(x.slippage_bps, bps);
                let ok = if up {
                    x.executed_price >= s
                } else {
                    x.executed_price <= s
                };
                prop_assert!(ok, "stop filled better than its trigger: {:?}", x);
            }
            OrderType::Limit | OrderType::StopLimit => {
                let l = limit.expect("a limit price");
                prop_assert_eq!(x.slippage_bps, 0, "limit-priced fill with slippage");
                let ok = if up {
                    x.executed_price <= l
                } else {
                    x.executed_price >= l
                };
                prop_assert!(ok, "limit {} traded through: {:?}", l, x);
            }
        }
    }
    Ok(())
}

/// Property 3: After every step equity = cash + sum(quantity x last close), with the last
/// closes tracked independently from the bars, and equity = initial + realized + sum of
/// unrealized. Each bar's events are fills/updates, then at most one account snapshot
/// (present whenever something happened, equal to the account), then the tick.
fn check_equity(sc: &Scenario) -> Checked {
    let (_, log) = run(sc);
    let mut last = vec![Price::ZERO; sc.n];
    for e in &log {
        let Entry::Step { i, events, account } = e else {
            continue;
        };
        let (step, bars) = &sc.steps[*i];
        for b in bars {
            last[b.symbol as usize] = b.candle.close;
        }
        let mut marked = Amount::ZERO;
        let mut unrealized = Amount::ZERO;
        for p in &account.positions {
            let value = last[symbol_index(&p.symbol)].times(p.quantity);
            prop_assert_eq!(p.market_value, value, "{:?} after step {}", p, i);
            marked += value;
            unrealized += p.unrealized_pnl;
        }
        prop_assert_eq!(account.equity, account.cash + marked, "step {}", i);
        prop_assert_eq!(
            account.equity,
            sc.config.initial_capital + account.realized_pnl + unrealized,
            "step {}",
            i
        );
        prop_assert_eq!(account.sim_time, Some(step.ts));

        let n = events.len();
        let tick = Event::Tick(TickEvent {
            sequence_id: *i as u64 + 1,
            sim_time: step.ts,
            is_eod: step.is_eod,
        });
        prop_assert_eq!(events.last(), Some(&tick));
        let activity = events
            .iter()
            .any(|e| matches!(e, Event::Execution(_) | Event::OrderUpdate(_)));
        let accounts: Vec<&AccountSnapshot> = events
            .iter()
            .filter_map(|e| match e {
                Event::Account(a) => Some(&**a),
                _ => None,
            })
            .collect();
        prop_assert!(accounts.len() <= 1);
        if activity {
            prop_assert_eq!(accounts.len(), 1, "fills/updates without a snapshot");
        }
        if let Some(a) = accounts.first() {
            prop_assert!(
                matches!(events[n - 2], Event::Account(_)),
                "snapshot not right before the tick"
            );
            let mut a = (*a).clone();
            if step.is_eod {
                // After the day's last bar `day_pnl` starts again from zero.
                prop_assert_eq!(account.day_pnl, Amount::ZERO);
                a.day_pnl = Amount::ZERO;
            }
            prop_assert_eq!(&a, account, "snapshot event differs at step {}", i);
        }
    }
    Ok(())
}

/// What happened to one order id on which step: `None` for a fill, else the update.
type OrderEvents = Vec<(usize, Option<(OrderStatus, String)>)>;

/// Property 4: No look-ahead: an order sent after step N has no fill or update on step N
/// or earlier (timestamps included), and it is evaluated on its symbol's first bar after
/// it was sent: an IOC is settled exactly there, a market order (no volume cap) fills or
/// is rejected exactly there. Exits of an entry filled inside a bar wait for the next
/// bar. Day orders are gone after the last bar of the day, and only they expire then.
fn check_no_look_ahead(sc: &Scenario) -> Checked {
    let (_, log) = run(sc);
    let orders = accepted_orders(&log);
    let mut by_id: BTreeMap<String, OrderEvents> = BTreeMap::new();
    let mut first_fill: BTreeMap<String, usize> = BTreeMap::new();
    let mut cancelled_at: BTreeMap<String, usize> = BTreeMap::new();
    for e in &log {
        match e {
            Entry::Step { i, events, account } => {
                let step = &sc.steps[*i].0;
                for ev in events {
                    match ev {
                        Event::Execution(x) => {
                            prop_assert_eq!(x.timestamp, step.ts, "fill stamped with another time");
                            by_id
                                .entry(x.order_id.clone())
                                .or_default()
                                .push((*i, None));
                            first_fill.entry(x.order_id.clone()).or_insert(*i);
                        }
                        Event::OrderUpdate(u) => {
                            prop_assert_eq!(u.timestamp, step.ts);
                            if u.reason == "DAY_EXPIRED" {
                                prop_assert!(step.is_eod, "day expiry mid-day: {:?}", u);
                                let tif = orders.get(&u.order_id).map(|(_, r)| r.time_in_force);
                                prop_assert_eq!(tif, Some(TimeInForce::Day), "{:?}", u);
                            }
                            let update = Some((u.status, u.reason.clone()));
                            by_id
                                .entry(u.order_id.clone())
                                .or_default()
                                .push((*i, update));
                        }
                        _ => {}
                    }
                }
                if step.is_eod {
                    for id in &account.open_orders {
                        let tif = orders.get(id).map(|(_, r)| r.time_in_force);
                        prop_assert!(tif != Some(TimeInForce::Day), "day order {} survived", id);
                    }
                }
            }
            Entry::Cancel { slot, result, .. } => {
                for id in &result.cancelled {
                    cancelled_at.entry(id.clone()).or_insert(*slot);
                }
            }
            Entry::Submit { .. } => {}
        }
    }
    for (id, evs) in &by_id {
        let (root, leg) = match leg_of(id) {
            Some((root, leg)) => (root, Some(leg)),
            None => (id.as_str(), None),
        };
        let Some((slot, req)) = orders.get(root) else {
            return Err(TestCaseError::fail(format!(
                "events for an order never accepted: {id}"
            )));
        };
        for (i, _) in evs {
            // Sent in slot `slot`, i.e. after the client saw step `slot - 1`.
            prop_assert!(
                *i >= *slot,
                "{} sent before step {} acted on step {}",
                id,
                slot,
                i
            );
            if *slot > 0 {
                prop_assert!(sc.steps[*i].0.ts > sc.steps[*slot - 1].0.ts);
            }
        }
        if let (Some(_), Some(&leg_fill)) = (leg, first_fill.get(id)) {
            let Some(&entry_fill) = first_fill.get(root) else {
                return Err(TestCaseError::fail(format!("{id} filled before its entry")));
            };
            prop_assert!(
                entry_fill < leg_fill
                    || (entry_fill == leg_fill && req.order_type == OrderType::Market),
                "exit {} of a {:?} entry filled on the entry's bar {}",
                id,
                req.order_type,
                leg_fill
            );
        }
    }
    // First-bar evaluation of IOC and (uncapped) market orders.
    let uncapped = sc.config.max_volume_participation_bps.is_none();
    for (id, (slot, req)) in &orders {
        let Some(first) = sc.next_bar_step(*slot, &req.symbol) else {
            continue;
        };
        if cancelled_at.get(id).is_some_and(|&c| c <= first) {
            continue;
        }
        let evs = by_id.get(id).cloned().unwrap_or_default();
        if req.time_in_force == TimeInForce::Ioc {
            prop_assert!(!evs.is_empty(), "IOC {} not settled on bar {}", id, first);
            prop_assert!(
                evs.iter().all(|(i, _)| *i == first),
                "IOC {} acted on other bars than {}: {:?}",
                id,
                first,
                evs
            );
            let working = log.iter().any(|e| {
                matches!(e, Entry::Step { i, account, .. }
                    if *i == first && account.open_orders.contains(id))
            });
            prop_assert!(!working, "IOC {} still working after its bar", id);
        } else if req.order_type == OrderType::Market && uncapped {
            let expired_before = evs.iter().any(|(i, u)| {
                *i < first && matches!(u, Some((OrderStatus::Expired, r)) if r == "DAY_EXPIRED")
            });
            if !expired_before {
                prop_assert!(
                    evs.first().is_some_and(|(i, _)| *i == first),
                    "market {} not settled on its first bar {}: {:?}",
                    id,
                    first,
                    evs
                );
            }
        }
    }
    Ok(())
}

/// Property 5: Run whole, and again with a snapshot/restore at the action `split` picks
/// (between bars, or between a bar and the commands after it): the log after the restore,
/// the final snapshot bytes and the results are identical.
fn check_restore(sc: &Scenario, split: prop::sample::Index) -> Checked {
    let (mut full_engine, full_log) = run(sc);
    let at = split.index(sc.actions() + 1);
    let mut engine = sc.engine();
    let mut log = Vec::new();
    drive(sc, &mut engine, 0..at, &mut log);
    let bytes = engine.snapshot();
    let mut restored = Engine::restore(&bytes).expect("restore");
    prop_assert_eq!(restored.snapshot(), bytes, "restore does not round-trip");
    drop(engine);
    let head = log.len();
    drive(sc, &mut restored, at..sc.actions(), &mut log);
    prop_assert_eq!(&log[..head], &full_log[..head]);
    prop_assert_eq!(
        &log[head..],
        &full_log[head..],
        "log after restoring at action {}",
        at
    );
    prop_assert_eq!(restored.snapshot(), full_engine.snapshot());
    let a = full_engine.finish(EndReason::Completed);
    let b = restored.finish(EndReason::Completed);
    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    prop_assert_eq!(restored.snapshot(), full_engine.snapshot());
    Ok(())
}

/// Property 6: Two runs of the same input give byte-identical event streams and
/// batch/cancel results (serde_json), identical snapshots, and identical results.
fn check_determinism(sc: &Scenario) -> Checked {
    let bytes = |log: &[Entry]| -> Vec<u8> {
        let mut out = Vec::new();
        for e in log {
            let json = match e {
                Entry::Step { events, .. } => serde_json::to_vec(events),
                Entry::Submit { result, .. } => serde_json::to_vec(result),
                Entry::Cancel { result, .. } => serde_json::to_vec(result),
            };
            out.extend(json.expect("serializable"));
            out.push(b'\n');
        }
        out
    };
    let (mut e1, l1) = run(sc);
    let (mut e2, l2) = run(sc);
    prop_assert_eq!(bytes(&l1), bytes(&l2));
    prop_assert_eq!(e1.snapshot(), e2.snapshot());
    let r1 = e1.finish(EndReason::Completed);
    let r2 = e2.finish(EndReason::Completed);
    prop_assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
    prop_assert_eq!(e1.snapshot(), e2.snapshot());
    Ok(())
}

/// Property 7: Cash account (allow_short = false): no buy ever leaves cash below zero;
/// cash only goes below zero through a sell whose commission exceeds its proceeds, and by
/// exactly that excess (exits are never refused for cash, README "Cash account and
/// shorts"). Hence without a minimum commission (per-share commission < every price) cash
/// is never negative after any step.
fn check_cash_account(sc: &Scenario) -> Checked {
    prop_assert!(!sc.config.allow_short);
    let (_, log) = run(sc);
    let mut cash = sc.config.initial_capital;
    for e in &log {
        let Entry::Step { i, events, account } = e else {
            continue;
        };
        for ev in events {
            let Event::Execution(x) = ev else { continue };
            let before = cash;
            cash = cash - signed_notional(x) - x.commission;
            if x.side == Side::Buy {
                prop_assert!(!cash.is_negative(), "buy left cash at {}: {:?}", cash, x);
            } else if cash.is_negative() && cash < before {
                let proceeds = x.executed_price.times(x.executed_quantity);
                prop_assert!(x.commission > proceeds, "sell made cash negative: {:?}", x);
                prop_assert_eq!(cash, before - (x.commission - proceeds));
            }
        }
        prop_assert_eq!(account.cash, cash);
        if sc.config.min_commission == Amount::ZERO {
            prop_assert!(!cash.is_negative(), "cash {} after step {}", cash, i);
        }
    }
    Ok(())
}

/// Property 8: Without allow_short no fill sells more than is held, and positions are
/// never negative.
fn check_no_shorts(sc: &Scenario) -> Checked {
    prop_assert!(!sc.config.allow_short);
    let (engine, log) = run(sc);
    let mut held = vec![0i64; sc.n];
    for e in &log {
        let Entry::Step { i, events, account } = e else {
            continue;
        };
        for ev in events {
            let Event::Execution(x) = ev else { continue };
            let s = symbol_index(&x.symbol);
            if x.side == Side::Sell {
                prop_assert!(
                    x.executed_quantity <= held[s],
                    "step {}: sold {} holding {}",
                    i,
                    x.executed_quantity,
                    held[s]
                );
            }
            held[s] += x.executed_quantity * x.side.sign();
        }
        for p in &account.positions {
            prop_assert!(p.quantity > 0, "step {}: {:?}", i, p);
        }
    }
    for (s, q) in held.iter().enumerate() {
        prop_assert_eq!(engine.position(s as u32), *q);
    }
    Ok(())
}

/// Property 9: Submission: malformed orders (duplicate id, unknown symbol, non-positive
/// quantity, missing or non-positive price, inverted bracket) are rejected with their own
/// reason; every order is accepted or rejected, each list in batch order; atomic batches
/// are all-or-nothing.
fn check_submissions(log: &[Entry]) -> Checked {
    for e in log {
        let Entry::Submit {
            mode,
            requests,
            expected,
            result,
            ..
        } = e
        else {
            continue;
        };
        for (req, want) in requests.iter().zip(expected) {
            let accepted = result.accepted_orders.contains(&req.order_id);
            // Several entries can share an id (a duplicate shares it with a working order).
            let got: Vec<RejectReason> = result
                .rejected_orders
                .iter()
                .filter(|(id, _)| id == &req.order_id)
                .map(|(_, r)| *r)
                .collect();
            if let Some(want) = want {
                prop_assert!(
                    got.contains(want),
                    "{:?}: want {:?}, got {:?}",
                    req,
                    want,
                    got
                );
            }
            prop_assert!(accepted || !got.is_empty(), "{:?} not answered", req);
        }
        prop_assert_eq!(
            result.accepted_orders.len() + result.rejected_orders.len(),
            requests.len()
        );
        if *mode == ExecutionMode::Atomic && !result.rejected_orders.is_empty() {
            prop_assert!(result.accepted_orders.is_empty(), "atomic batch split");
        }
        let in_batch_order = |ids: Vec<&String>| {
            let mut from = 0;
            ids.iter().all(
                |id| match requests[from..].iter().position(|r| &r.order_id == *id) {
                    Some(p) => {
                        from += p + 1;
                        true
                    }
                    None => false,
                },
            )
        };
        prop_assert!(in_batch_order(result.accepted_orders.iter().collect()));
        prop_assert!(in_batch_order(
            result.rejected_orders.iter().map(|(id, _)| id).collect()
        ));
    }
    Ok(())
}

/// Property 10: Working order ids are unique at every moment, bracket legs included, even
/// when clients pick ids that look like leg ids (`a-sl`, `a-sl-3`): every working order
/// stays cancellable by its id, and snapshot/restore still continues identically.
fn check_unique_ids(sc: &Scenario, split: prop::sample::Index) -> Checked {
    let mut engine = sc.engine();
    let mut log = Vec::new();
    for a in 0..sc.actions() {
        drive(sc, &mut engine, a..a + 1, &mut log);
        let open = engine.account_snapshot().open_orders;
        let mut unique = open.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), open.len(), "after action {}: {:?}", a, open);
        for id in &open {
            let mut probe = engine.clone();
            let r = probe.cancel(std::slice::from_ref(id));
            prop_assert_eq!(&r.cancelled, &vec![id.clone()], "after action {}", a);
            prop_assert_eq!(probe.open_order_count(), open.len() - 1);
        }
    }
    check_submissions(&log)?;
    check_restore(sc, split)
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn cash_and_positions_are_the_ledger_of_executions(sc in any_scenario()) {
        check_ledger(&sc)?;
    }

    #[test]
    fn fill_prices_lie_within_the_bar(sc in any_scenario()) {
        check_fill_prices(&sc)?;
    }

    #[test]
    fn equity_is_cash_plus_marked_positions(sc in any_scenario()) {
        check_equity(&sc)?;
    }

    #[test]
    fn no_fill_on_a_bar_the_client_already_saw(sc in any_scenario()) {
        check_no_look_ahead(&sc)?;
    }

    #[test]
    fn snapshot_restore_continues_identically(
        sc in any_scenario(),
        split in any::<prop::sample::Index>(),
    ) {
        check_restore(&sc, split)?;
    }

    #[test]
    fn cash_account_never_goes_negative_but_by_exit_commissions(sc in cash_account_scenario()) {
        check_cash_account(&sc)?;
    }

    #[test]
    fn no_short_positions_without_allow_short(sc in cash_account_scenario()) {
        check_no_shorts(&sc)?;
    }

    #[test]
    fn malformed_orders_are_rejected_with_their_reason(sc in any_scenario()) {
        check_submissions(&run(&sc).1)?;
    }
}

proptest! {
    // Two full runs plus JSON per case: fewer cases.
    #![proptest_config(config(64))]

    #[test]
    fn identical_inputs_give_identical_bytes(sc in any_scenario()) {
        check_determinism(&sc)?;
    }
}

proptest! {
    // Short runs, so more of them: collisions need small sequence numbers.
    #![proptest_config(config(1024))]

    #[test]
    fn working_order_ids_stay_unique(
        sc in adversarial_scenario(),
        split in any::<prop::sample::Index>(),
    ) {
        check_unique_ids(&sc, split)?;
    }
}

/// The documented exception to "cash never goes negative" in a cash account: an exit
/// whose minimum commission exceeds its proceeds is still executed (refusing it would
/// trap the position), so cash that was ~0 goes below zero by the difference. Buys are
/// never allowed to do this.
#[test]
fn exit_commission_above_proceeds_can_take_cash_below_zero() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(10));
    cfg.min_commission = Amount::from_int(1);
    let mut engine = Engine::new(cfg).unwrap();
    let step = |ts: i64, o: i64, h: i64, l: i64, c: i64, eod: bool| {
        let candle = Candle {
            ts,
            open: Price::from_int(o),
            high: Price::from_int(h),
            low: Price::from_int(l),
            close: Price::from_int(c),
            volume: Amount::from_int(1_000),
        };
        (
            Step {
                ts,
                start: 0,
                len: 1,
                is_eod: eod,
                session: MarketSession::Regular,
            },
            [SymbolBar { symbol: 0, candle }],
        )
    };
    let mut out = Vec::new();
    let (s, b) = step(60, 3, 3, 3, 3, false);
    engine.on_step(&s, &b, &mut out);
    // 3 units at 3 plus 1 commission: exactly all the cash.
    let ack = engine.submit(
        vec![OrderRequest::market("b", "AAA", Side::Buy, 3)],
        ExecutionMode::BestEffort,
    );
    assert_eq!(ack.accepted_orders, vec!["b"]);
    let (s, b) = step(120, 3, 3, 3, 3, false);
    engine.on_step(&s, &b, &mut out);
    assert_eq!(engine.cash(), Amount::ZERO);
    // A further buy is refused; the price collapses; selling 1 unit at 0.5 costs 1.
    let ack = engine.submit(
        vec![OrderRequest::market("b2", "AAA", Side::Buy, 1)],
        ExecutionMode::BestEffort,
    );
    assert_eq!(
        ack.rejected_orders,
        vec![("b2".to_string(), RejectReason::InsufficientBuyingPower)]
    );
    engine.submit(
        vec![OrderRequest::market("s", "AAA", Side::Sell, 1)],
        ExecutionMode::BestEffort,
    );
    let candle = Candle {
        ts: 180,
        open: "0.5".parse().unwrap(),
        high: "0.5".parse().unwrap(),
        low: "0.5".parse().unwrap(),
        close: "0.5".parse().unwrap(),
        volume: Amount::from_int(1_000),
    };
    let s = Step {
        ts: 180,
        start: 0,
        len: 1,
        is_eod: true,
        session: MarketSession::Regular,
    };
    out.clear();
    engine.on_step(&s, &[SymbolBar { symbol: 0, candle }], &mut out);
    assert!(matches!(&out[0], Event::Execution(x) if x.order_id == "s"));
    assert_eq!(engine.cash(), "-0.5".parse::<Amount>().unwrap());
    assert_eq!(engine.position(0), 2);
}
