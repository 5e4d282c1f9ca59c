//! Engine rules, one test per rule or edge, driven through the public API.

use model::{Amount, Candle, MarketSession, Price, Step, SymbolBar};

use super::*;

fn p(s: &str) -> Price {
    s.parse().unwrap()
}

fn a(s: &str) -> Amount {
    s.parse().unwrap()
}

/// A small harness: one or two symbols, bars given as (o, h, l, c, volume).
struct Sim {
    engine: Engine,
    events: Vec<Event>,
    ts: i64,
}

impl Sim {
    fn new(cash: i64) -> Self {
        Self::with(EngineConfig::new(
            vec!["AAA".into(), "BBB".into()],
            Amount::from_int(cash),
        ))
    }

    fn with(config: EngineConfig) -> Self {
        Sim {
            engine: Engine::new(config).unwrap(),
            events: Vec::new(),
            ts: 0,
        }
    }

    fn bar_full(&mut self, symbol: u32, ohlc: [&str; 4], volume: i64, eod: bool) -> Vec<Event> {
        self.ts += 3600;
        let candle = Candle {
            ts: self.ts,
            open: p(ohlc[0]),
            high: p(ohlc[1]),
            low: p(ohlc[2]),
            close: p(ohlc[3]),
            volume: Amount::from_int(volume),
        };
        let bars = [SymbolBar { symbol, candle }];
        let step = Step {
            ts: self.ts,
            start: 0,
            len: 1,
            is_eod: eod,
            session: MarketSession::Regular,
        };
        let mut out = Vec::new();
        self.engine.on_step(&step, &bars, &mut out);
        self.events.extend(out.iter().cloned());
        out
    }

    fn bar(&mut self, ohlc: [&str; 4]) -> Vec<Event> {
        self.bar_full(0, ohlc, 1_000_000, false)
    }

    fn submit(&mut self, orders: Vec<OrderRequest>) -> BatchResult {
        self.engine.submit(orders, ExecutionMode::BestEffort)
    }
}

fn fills(events: &[Event]) -> Vec<(String, i64, Price, FillReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Execution(x) => Some((
                x.order_id.clone(),
                x.executed_quantity,
                x.executed_price,
                x.reason,
            )),
            _ => None,
        })
        .collect()
}

fn updates(events: &[Event]) -> Vec<(String, OrderStatus, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderUpdate(u) => Some((u.order_id.clone(), u.status, u.reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn market_order_fills_at_next_open_never_the_seen_bar() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100.5"]);
    let ack = s.submit(vec![OrderRequest::market("m1", "AAA", Side::Buy, 10)]);
    assert_eq!(ack.accepted_orders, vec!["m1"]);
    assert_eq!(ack.estimated_fills, vec![("m1".to_string(), p("100.5"))]);
    let ev = s.bar(["102", "103", "101", "102.5"]);
    assert_eq!(
        fills(&ev),
        vec![("m1".into(), 10, p("102"), FillReason::Entry)]
    );
    // Ordering: execution, then account snapshot, then the tick last.
    assert!(matches!(ev[0], Event::Execution(_)));
    assert!(matches!(ev[1], Event::Account(_)));
    assert!(matches!(
        ev[2],
        Event::Tick(TickEvent { sequence_id: 2, .. })
    ));
    assert_eq!(s.engine.cash(), Amount::from_int(100_000 - 1020));
    assert_eq!(s.engine.equity(), Amount::from_int(100_000 - 1020 + 1025));
}

#[test]
fn commission_and_minimum_and_slippage() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(100_000));
    cfg.commission_per_share = p("0.005");
    cfg.min_commission = a("1");
    cfg.slippage_bps = 10;
    let mut s = Sim::with(cfg);
    s.bar(["100", "100", "100", "100"]);
    s.submit(vec![OrderRequest::market("m1", "AAA", Side::Buy, 100)]);
    let ev = s.bar(["200", "201", "199", "200"]);
    let Event::Execution(x) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (x.executed_price, x.commission, x.slippage_bps),
        (p("200.2"), a("1"), 10)
    );
    s.submit(vec![OrderRequest::market("m2", "AAA", Side::Sell, 100)]);
    s.engine.config.min_commission = Amount::ZERO;
    let ev = s.bar(["200", "201", "199", "200"]);
    let Event::Execution(x) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((x.executed_price, x.commission), (p("199.8"), a("0.5")));
    assert_eq!(
        s.engine.cash(),
        a("100000") - a("20020") - a("1") + a("19980") - a("0.5")
    );
}

#[test]
fn limit_buy_at_the_exact_low_fills_at_limit() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![OrderRequest::limit(
        "l1",
        "AAA",
        Side::Buy,
        5,
        p("97"),
    )
    .with_tif(TimeInForce::Gtc)]);
    assert!(fills(&s.bar(["99", "100", "97.01", "98"])).is_empty());
    let ev = s.bar(["98", "99", "97", "98"]);
    assert_eq!(
        fills(&ev),
        vec![("l1".into(), 5, p("97"), FillReason::Entry)]
    );
}

#[test]
fn stop_gapping_through_fills_at_the_open() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![OrderRequest::market("b", "AAA", Side::Buy, 10)]);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![OrderRequest::stop(
        "s",
        "AAA",
        Side::Sell,
        10,
        p("95"),
    )
    .with_tif(TimeInForce::Gtc)]);
    let ev = s.bar(["90", "92", "88", "91"]);
    assert_eq!(
        fills(&ev),
        vec![("s".into(), 10, p("90"), FillReason::Exit)]
    );
    assert_eq!(
        s.engine.closed_trades()[0].trade.pnl,
        Amount::from_int(-100)
    );
}

#[test]
fn bracket_with_both_exits_inside_one_bar_takes_the_stop_loss() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    let entry =
        OrderRequest::market("e", "AAA", Side::Buy, 10).with_bracket(Some(p("95")), Some(p("110")));
    s.submit(vec![entry]);
    // The entry fills at the open; both exits are live for the rest of this bar.
    let ev = s.bar(["100", "112", "94", "105"]);
    assert_eq!(
        fills(&ev),
        vec![
            ("e".into(), 10, p("100"), FillReason::Entry),
            ("e-sl".into(), 10, p("95"), FillReason::StopLoss)
        ]
    );
    assert_eq!(
        updates(&ev),
        vec![("e-tp".into(), OrderStatus::Cancelled, "OCO".into())]
    );
    assert_eq!(s.engine.position(0), 0);
    assert_eq!(s.engine.open_order_count(), 0);
}

#[test]
fn bracket_opening_beyond_take_profit_fills_it_at_the_open() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![
        OrderRequest::market("e", "AAA", Side::Buy, 10).with_bracket(Some(p("95")), Some(p("110")))
    ]);
    s.bar(["100", "101", "99", "100"]);
    let ev = s.bar(["115", "116", "90", "100"]);
    assert_eq!(
        fills(&ev),
        vec![("e-tp".into(), 10, p("115"), FillReason::TakeProfit)]
    );
    assert_eq!(
        updates(&ev),
        vec![("e-sl".into(), OrderStatus::Cancelled, "OCO".into())]
    );
}

#[test]
fn bracket_of_a_limit_entry_starts_on_the_next_bar() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    let entry = OrderRequest::limit("e", "AAA", Side::Buy, 10, p("98"))
        .with_bracket(Some(p("96")), Some(p("104")));
    s.submit(vec![entry.with_tif(TimeInForce::Gtc)]);
    // Fills at 98 inside the bar; the bar also reaches 95, but the exits wait.
    let ev = s.bar(["100", "101", "95", "97"]);
    assert_eq!(
        fills(&ev),
        vec![("e".into(), 10, p("98"), FillReason::Entry)]
    );
    assert_eq!(s.engine.position(0), 10);
    let ev = s.bar(["97", "105", "96.5", "104"]);
    assert_eq!(
        fills(&ev),
        vec![("e-tp".into(), 10, p("104"), FillReason::TakeProfit)]
    );
}

#[test]
fn ioc_is_evaluated_on_one_bar_then_expires() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![OrderRequest::limit(
        "i",
        "AAA",
        Side::Buy,
        10,
        p("95"),
    )
    .with_tif(TimeInForce::Ioc)]);
    // A bar of another symbol does not count.
    let ev = s.bar_full(1, ["50", "51", "49", "50"], 1000, false);
    assert!(updates(&ev).is_empty());
    let ev = s.bar(["100", "101", "96", "100"]);
    assert_eq!(
        updates(&ev),
        vec![("i".into(), OrderStatus::Expired, "IOC_EXPIRED".into())]
    );
    assert_eq!(s.engine.open_order_count(), 0);
}

#[test]
fn day_orders_expire_at_the_end_of_the_day_gtc_persist() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![
        OrderRequest::limit("d", "AAA", Side::Buy, 1, p("90")),
        OrderRequest::limit("g", "AAA", Side::Buy, 1, p("90")).with_tif(TimeInForce::Gtc),
    ]);
    assert!(updates(&s.bar(["100", "101", "99", "100"])).is_empty());
    let ev = s.bar_full(0, ["100", "101", "99", "100"], 1000, true);
    assert_eq!(
        updates(&ev),
        vec![("d".into(), OrderStatus::Expired, "DAY_EXPIRED".into())]
    );
    // An order sent after the day's last bar belongs to the next day.
    s.submit(vec![OrderRequest::limit(
        "d2",
        "AAA",
        Side::Buy,
        1,
        p("90"),
    )]);
    assert!(updates(&s.bar(["100", "101", "99", "100"])).is_empty());
    let ev = s.bar_full(0, ["100", "101", "99", "100"], 1000, true);
    assert_eq!(
        updates(&ev),
        vec![("d2".into(), OrderStatus::Expired, "DAY_EXPIRED".into())]
    );
    assert_eq!(s.engine.account_snapshot().open_orders, vec!["g"]);
}

#[test]
fn buying_power_rejections_at_submission_and_at_fill() {
    let mut s = Sim::new(1_000);
    s.bar(["100", "101", "99", "100"]);
    let ack = s.submit(vec![
        OrderRequest::market("ok", "AAA", Side::Buy, 6),
        OrderRequest::limit("too-much", "AAA", Side::Buy, 5, p("90")),
    ]);
    assert_eq!(ack.accepted_orders, vec!["ok"]);
    assert_eq!(
        ack.rejected_orders,
        vec![("too-much".into(), RejectReason::InsufficientBuyingPower)]
    );
    // Accepted at the last close, but the next bar gaps up past the cash available.
    s.submit(vec![OrderRequest::market("gap", "AAA", Side::Buy, 3)]);
    let ev = s.bar(["150", "151", "149", "150"]);
    assert_eq!(fills(&ev).len(), 1);
    assert_eq!(
        updates(&ev),
        vec![(
            "gap".into(),
            OrderStatus::Rejected,
            "INSUFFICIENT_BUYING_POWER".into()
        )]
    );
    assert!(!s.engine.cash().is_negative());
}

#[test]
fn atomic_batch_is_all_or_nothing() {
    let mut s = Sim::new(1_000);
    s.bar(["100", "101", "99", "100"]);
    let ack = s.engine.submit(
        vec![
            OrderRequest::market("a", "AAA", Side::Buy, 1),
            OrderRequest::market("b", "ZZZ", Side::Buy, 1),
        ],
        ExecutionMode::Atomic,
    );
    assert!(ack.accepted_orders.is_empty());
    assert_eq!(
        ack.rejected_orders,
        vec![
            ("a".into(), RejectReason::BatchRejected),
            ("b".into(), RejectReason::UnknownSymbol)
        ]
    );
    assert_eq!(s.engine.open_order_count(), 0);
}

#[test]
fn validation_reasons() {
    let mut s = Sim::new(1_000);
    let mut no_price = OrderRequest::market("np", "AAA", Side::Buy, 1);
    no_price.order_type = OrderType::Limit;
    let ack = s.submit(vec![
        OrderRequest::market("", "AAA", Side::Buy, 1),
        OrderRequest::market("q", "AAA", Side::Buy, 0),
        no_price,
        OrderRequest::limit("neg", "AAA", Side::Buy, 1, p("-1")),
        OrderRequest::market("br", "AAA", Side::Buy, 1).with_bracket(Some(p("10")), Some(p("9"))),
        OrderRequest::market("dup", "AAA", Side::Buy, 1),
        OrderRequest::market("dup", "AAA", Side::Buy, 1),
        OrderRequest::market("short", "AAA", Side::Sell, 1),
    ]);
    let reasons: Vec<_> = ack.rejected_orders.iter().map(|(_, r)| r.code()).collect();
    assert_eq!(
        reasons,
        vec![
            "INVALID_ORDER_ID",
            "INVALID_QUANTITY",
            "MISSING_PRICE",
            "INVALID_PRICE",
            "INVALID_BRACKET",
            "DUPLICATE_ORDER_ID",
            "SHORT_NOT_ALLOWED"
        ]
    );
    assert_eq!(ack.accepted_orders, vec!["dup"]);
}

#[test]
fn shorting_when_allowed() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(10_000));
    cfg.allow_short = true;
    let mut s = Sim::with(cfg);
    s.bar(["100", "101", "99", "100"]);
    assert!(s
        .submit(vec![OrderRequest::market("s", "AAA", Side::Sell, 10)])
        .rejected_orders
        .is_empty());
    s.bar(["100", "101", "99", "90"]);
    assert_eq!(s.engine.position(0), -10);
    let acct = s.engine.account_snapshot();
    assert_eq!(acct.positions[0].unrealized_pnl, Amount::from_int(100));
    assert_eq!(acct.equity, Amount::from_int(10_100));
    // Collateral: cash 11000 minus 900 liability; a 20000 short is refused.
    let ack = s.submit(vec![OrderRequest::market("s2", "AAA", Side::Sell, 200)]);
    assert_eq!(
        ack.rejected_orders[0].1,
        RejectReason::InsufficientBuyingPower
    );
}

#[test]
fn volume_cap_gives_partial_fills() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(1_000_000));
    cfg.max_volume_participation_bps = Some(1_000); // 10% of bar volume
    let mut s = Sim::with(cfg);
    s.bar_full(0, ["10", "11", "9", "10"], 1000, false);
    s.submit(vec![
        OrderRequest::market("m", "AAA", Side::Buy, 250).with_tif(TimeInForce::Gtc)
    ]);
    let ev = s.bar_full(0, ["10", "11", "9", "10"], 1000, false);
    let Event::Execution(x) = &ev[0] else {
        panic!()
    };
    assert_eq!(
        (x.executed_quantity, x.order_status, x.leaves_quantity),
        (100, FillStatus::PartiallyFilled, 150)
    );
    let ev = s.bar_full(0, ["10", "11", "9", "10"], 1000, false);
    assert_eq!(fills(&ev)[0].1, 100);
    let ev = s.bar_full(0, ["10", "11", "9", "10"], 1000, false);
    let Event::Execution(x) = &ev[0] else {
        panic!()
    };
    assert_eq!(
        (x.executed_quantity, x.order_status),
        (50, FillStatus::Filled)
    );
    assert_eq!(s.engine.position(0), 250);
}

#[test]
fn stop_limit_rests_after_trigger() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![OrderRequest::stop_limit(
        "sl",
        "AAA",
        Side::Buy,
        1,
        p("105"),
        p("104"),
    )
    .with_tif(TimeInForce::Gtc)]);
    assert!(fills(&s.bar(["100", "106", "104.5", "106"])).is_empty());
    let ev = s.bar(["106", "107", "103", "104"]);
    assert_eq!(
        fills(&ev),
        vec![("sl".into(), 1, p("104"), FillReason::Entry)]
    );
}

#[test]
fn cancel_and_day_pnl_and_periodic_snapshots() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(10_000));
    cfg.account_snapshot_every = 2;
    let mut s = Sim::with(cfg);
    let ev = s.bar(["100", "101", "99", "100"]);
    assert_eq!(ev.len(), 1);
    let ev = s.bar(["100", "101", "99", "100"]);
    assert!(matches!(ev[0], Event::Account(_)));
    s.submit(vec![OrderRequest::limit("x", "AAA", Side::Buy, 1, p("50"))]);
    let r = s.engine.cancel(&["x".into(), "nope".into()]);
    assert_eq!(
        (r.cancelled, r.not_found),
        (vec!["x".to_string()], vec!["nope".to_string()])
    );
    s.submit(vec![OrderRequest::market("b", "AAA", Side::Buy, 10)]);
    s.bar_full(0, ["100", "101", "99", "100"], 1000, true);
    s.bar(["100", "111", "99", "110"]);
    assert_eq!(s.engine.account_snapshot().day_pnl, Amount::from_int(100));
}

#[test]
fn snapshot_restore_continues_identically() {
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![
        OrderRequest::market("e", "AAA", Side::Buy, 10).with_bracket(Some(p("95")), Some(p("110"))),
        OrderRequest::limit("l", "AAA", Side::Buy, 5, p("98")).with_tif(TimeInForce::Gtc),
    ]);
    s.bar(["100", "101", "99", "100"]);
    let bytes = s.engine.snapshot();
    let mut restored = Sim {
        engine: Engine::restore(&bytes).unwrap(),
        events: Vec::new(),
        ts: s.ts,
    };
    assert_eq!(restored.engine.snapshot(), bytes);
    for bar in [["99", "100", "97", "98"], ["98", "111", "97", "110"]] {
        assert_eq!(s.bar(bar), restored.bar(bar));
    }
    assert_eq!(
        s.engine.finish(EndReason::Completed),
        restored.engine.finish(EndReason::Completed)
    );
    assert!(matches!(
        Engine::restore(b"nope"),
        Err(SnapshotError::BadMagic)
    ));
    let mut v2 = bytes.clone();
    v2[4] = 99;
    assert!(matches!(
        Engine::restore(&v2),
        Err(SnapshotError::UnsupportedVersion { found: 99 })
    ));
    assert!(matches!(
        Engine::restore(&bytes[..bytes.len() / 2]),
        Err(SnapshotError::Corrupt(_))
    ));
}

#[test]
fn config_errors_name_the_field() {
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::ZERO);
    assert_eq!(
        Engine::new(cfg.clone()).unwrap_err().field,
        "initial_capital"
    );
    cfg.initial_capital = Amount::from_int(1);
    cfg.symbols.push("AAA".into());
    assert_eq!(Engine::new(cfg).unwrap_err().field, "symbols");
}

#[test]
fn bracket_leg_ids_never_collide_with_working_orders() {
    // Found by the property tests: client orders held `e-sl` and `e-sl-4`, the fallback
    // id of the stop-loss leg of `e` (sequence number 4), so two working orders shared
    // `e-sl-4`. Removing one dropped the id from the index: the other became
    // uncancellable, and a restore (which rebuilds the index) then behaved differently.
    let mut s = Sim::new(100_000);
    s.bar(["100", "101", "99", "100"]);
    let ack = s.submit(vec![
        OrderRequest::limit("e-sl", "AAA", Side::Buy, 1, p("50")).with_tif(TimeInForce::Gtc),
        OrderRequest::limit("e-sl-4", "AAA", Side::Buy, 1, p("50")).with_tif(TimeInForce::Gtc),
        OrderRequest::market("e", "AAA", Side::Buy, 10).with_bracket(Some(p("90")), None),
    ]);
    assert_eq!(ack.accepted_orders.len(), 3);
    let ev = s.bar(["100", "101", "99", "100"]);
    assert_eq!(
        fills(&ev),
        vec![("e".into(), 10, p("100"), FillReason::Entry)]
    );
    let open = s.engine.account_snapshot().open_orders;
    assert_eq!(open, vec!["e-sl", "e-sl-4", "e-sl-5"]);
    // Every working order stays reachable by its id, before and after a restore.
    let mut restored = Engine::restore(&s.engine.snapshot()).unwrap();
    for id in &open {
        let live = s.engine.cancel(std::slice::from_ref(id));
        assert_eq!(live.cancelled, vec![id.clone()]);
        assert_eq!(live, restored.cancel(std::slice::from_ref(id)));
    }
    assert_eq!(s.engine.open_order_count(), 0);
    assert_eq!(s.engine.snapshot(), restored.snapshot());
}

/// An engine whose session may hold `cap` working orders.
fn capped(cap: u32) -> Sim {
    let mut cfg = EngineConfig::new(
        vec!["AAA".into(), "BBB".into()],
        Amount::from_int(1_000_000),
    );
    cfg.max_working_orders = Some(cap);
    Sim::with(cfg)
}

/// A far-away resting buy that never fills at the bars used here.
fn resting(id: &str) -> OrderRequest {
    OrderRequest::limit(id, "AAA", Side::Buy, 1, p("1")).with_tif(TimeInForce::Gtc)
}

const CAP_REASON: RejectReason = RejectReason::MaxWorkingOrders { limit: 3 };

#[test]
fn working_orders_are_capped_and_cancels_free_slots() {
    let mut s = capped(3);
    s.bar(["100", "101", "99", "100"]);
    let ack = s.submit(vec![resting("a"), resting("b"), resting("c")]);
    assert_eq!(ack.accepted_orders, ["a", "b", "c"]);
    assert_eq!(s.engine.working_slots(), 3);
    // At the cap, best effort: the next one is refused, with a reason naming the cap.
    let ack = s.submit(vec![resting("d")]);
    assert_eq!(ack.rejected_orders, vec![("d".into(), CAP_REASON)]);
    assert_eq!(
        CAP_REASON.wire_reason(),
        "MAX_WORKING_ORDERS: at most 3 working orders per session on this plan"
    );
    assert_eq!(
        RejectReason::InsufficientBuyingPower.wire_reason(),
        "INSUFFICIENT_BUYING_POWER"
    );
    // A cancel frees its slot.
    s.engine.cancel(&["b".to_string()]);
    let ack = s.submit(vec![resting("d"), resting("e")]);
    assert_eq!(ack.accepted_orders, ["d"]);
    assert_eq!(ack.rejected_orders, vec![("e".into(), CAP_REASON)]);
    // Fills free slots too.
    s.submit(vec![]);
    s.engine.cancel(&["a".to_string()]);
    let ack = s.submit(vec![OrderRequest::market("m", "AAA", Side::Buy, 1)]);
    assert_eq!(ack.accepted_orders, ["m"]);
    s.bar(["100", "101", "99", "100"]);
    assert_eq!(s.engine.open_order_count(), 2);
    assert_eq!(s.submit(vec![resting("f")]).accepted_orders, ["f"]);
}

#[test]
fn an_atomic_batch_beyond_the_cap_is_rejected_whole() {
    let mut s = capped(3);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![resting("a")]);
    let ack = s.engine.submit(
        vec![resting("b"), resting("c"), resting("d")],
        ExecutionMode::Atomic,
    );
    assert!(ack.accepted_orders.is_empty());
    assert_eq!(
        ack.rejected_orders,
        vec![
            ("b".into(), RejectReason::BatchRejected),
            ("c".into(), RejectReason::BatchRejected),
            ("d".into(), CAP_REASON),
        ]
    );
    assert_eq!(s.engine.open_order_count(), 1);
    // Exactly up to the cap: accepted whole.
    let ack = s
        .engine
        .submit(vec![resting("b"), resting("c")], ExecutionMode::Atomic);
    assert_eq!(ack.accepted_orders, ["b", "c"]);
    // Best effort takes what fits, in batch order.
    s.engine.cancel(&["b".to_string(), "c".to_string()]);
    let ack = s.submit(vec![resting("x"), resting("y"), resting("z")]);
    assert_eq!(ack.accepted_orders, ["x", "y"]);
    assert_eq!(ack.rejected_orders, vec![("z".into(), CAP_REASON)]);
}

#[test]
fn bracket_exits_count_against_the_cap_so_the_book_never_outgrows_it() {
    let mut s = capped(3);
    s.bar(["100", "101", "99", "100"]);
    let bracket = |id: &str| {
        OrderRequest::market(id, "AAA", Side::Buy, 10).with_bracket(Some(p("50")), Some(p("200")))
    };
    // An entry with two exits reserves three slots.
    let ack = s.submit(vec![resting("a"), bracket("e")]);
    assert_eq!(ack.accepted_orders, ["a"]);
    assert_eq!(ack.rejected_orders, vec![("e".into(), CAP_REASON)]);
    s.engine.cancel(&["a".to_string()]);
    assert_eq!(s.submit(vec![bracket("e")]).accepted_orders, ["e"]);
    assert_eq!(
        (s.engine.open_order_count(), s.engine.working_slots()),
        (1, 3)
    );
    // Filled: the exits take the slots their entry reserved.
    s.bar(["100", "101", "99", "100"]);
    assert_eq!(
        (s.engine.open_order_count(), s.engine.working_slots()),
        (2, 2)
    );
    assert_eq!(s.submit(vec![resting("b")]).accepted_orders, ["b"]);
    assert_eq!(
        s.submit(vec![resting("c")]).rejected_orders,
        vec![("c".into(), CAP_REASON)]
    );
    // The take-profit fills, the stop-loss is cancelled (OCO): both slots are free.
    s.bar(["100", "250", "99", "240"]);
    assert_eq!(s.engine.open_order_count(), 1);
    assert_eq!(
        s.submit(vec![resting("c"), resting("d")]).accepted_orders,
        ["c", "d"]
    );
}

#[test]
fn the_cap_is_part_of_the_snapshot() {
    let mut s = capped(3);
    s.bar(["100", "101", "99", "100"]);
    s.submit(vec![resting("a"), resting("b")]);
    let mut restored = Engine::restore(&s.engine.snapshot()).unwrap();
    assert_eq!(restored.config().max_working_orders, Some(3));
    let ack = restored.submit(vec![resting("c"), resting("d")], ExecutionMode::BestEffort);
    assert_eq!(ack.accepted_orders, ["c"]);
    assert_eq!(ack.rejected_orders, vec![("d".into(), CAP_REASON)]);
    // A zero cap is a configuration error, not a session that refuses everything.
    let mut cfg = EngineConfig::new(vec!["AAA".into()], Amount::from_int(1));
    cfg.max_working_orders = Some(0);
    assert_eq!(Engine::new(cfg).unwrap_err().field, "max_working_orders");
}

#[test]
fn analytics_buy_and_hold_over_symbols_with_different_first_bars_and_exact_trade_returns() {
    let mut s = Sim::new(100_000);
    fn flat(c: &str) -> [&str; 4] {
        [c, c, c, c]
    }
    // AAA's first bar; BBB has none yet, so its half stays cash.
    s.bar_full(0, flat("100"), 1_000_000, false);
    s.submit(vec![OrderRequest::market("b", "AAA", Side::Buy, 3)]);
    // BBB's first bar at 30; AAA has no bar, its order waits.
    s.bar_full(1, flat("30"), 1_000_000, false);
    // Bought 3 AAA at 110 (notional 330).
    s.bar_full(0, flat("110"), 1_000_000, false);
    s.submit(vec![OrderRequest::market("s", "AAA", Side::Sell, 3)]);
    // Sold at 108: PnL -6.
    s.bar_full(0, flat("108"), 1_000_000, false);
    let half_way = s.engine.snapshot();
    s.bar_full(1, flat("40"), 1_000_000, false);
    let r = s.engine.finish(EndReason::Completed);
    let a = &r.analytics;

    let points: Vec<(String, String, String)> = a
        .curve
        .iter()
        .map(|p| {
            (
                p.equity.to_string(),
                p.buy_and_hold.to_string(),
                p.drawdown_pct.to_string(),
            )
        })
        .collect();
    let row = |e: &str, b: &str, d: &str| (e.to_string(), b.to_string(), d.to_string());
    assert_eq!(
        points,
        [
            row("100000.00", "100000.00", "0.0000"),
            row("100000.00", "100000.00", "0.0000"),
            row("100000.00", "105000.00", "0.0000"),
            // 50000 x 108 / 100 + BBB's 50000 at 30, still 30.
            row("99994.00", "104000.00", "0.0060"),
            // 50000 x 40 / 30 = 66666.666666666... rounds to 66666.66666667.
            row("99994.00", "120666.66666667", "0.0060"),
        ]
    );
    // The same points as the plain curve.
    let plain: Vec<_> = a.curve.iter().map(|p| (p.time, p.equity)).collect();
    assert_eq!(plain, r.equity_curve);
    // Mean of +8% and +33.33...%, and the exact value's return, agree.
    let bh = a.curve.last().unwrap().buy_and_hold.to_f64() / 100_000.0 * 100.0 - 100.0;
    assert!((r.metrics.buy_and_hold_return_pct - 20.666_666_666_666_67).abs() < 1e-9);
    assert!((bh - r.metrics.buy_and_hold_return_pct).abs() < 1e-8);

    // -6 / 330 = -1.81818...%: half away from zero to -1.8182 (not truncated to -1.8181).
    assert_eq!(
        a.trade_returns_pct
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["-1.8182"]
    );
    assert_eq!(r.trades.len(), 1);
    assert!((r.trades[0].return_pct - -6.0 / 330.0 * 100.0).abs() < 1e-12);
    // All bars in January 1970 (hourly from the epoch).
    let periods = |v: &[PeriodReturn]| {
        v.iter()
            .map(|p| {
                (
                    p.period.clone(),
                    p.return_pct.to_string(),
                    p.end_equity.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let one = |p: &str| vec![(p.to_string(), "-0.0060".to_string(), "99994.00".to_string())];
    assert_eq!(periods(&a.monthly_returns), one("1970-01"));
    assert_eq!(periods(&a.yearly_returns), one("1970"));

    // A checkpoint taken mid-run continues to the same analytics.
    let mut restored = Sim {
        engine: Engine::restore(&half_way).unwrap(),
        events: Vec::new(),
        ts: 4 * 3600,
    };
    restored.bar_full(1, flat("40"), 1_000_000, false);
    assert_eq!(restored.engine.finish(EndReason::Completed), r);
}

#[test]
fn checkpoints_of_the_previous_format_are_refused() {
    let mut s = Sim::new(1_000);
    s.bar(["1", "1", "1", "1"]);
    let mut old = s.engine.snapshot();
    let previous = (snapshot::FORMAT_VERSION - 1).to_le_bytes();
    old[4..6].copy_from_slice(&previous);
    assert_eq!(
        Engine::restore(&old).err(),
        Some(SnapshotError::UnsupportedVersion {
            found: snapshot::FORMAT_VERSION - 1
        })
    );
}

#[test]
fn a_symbol_without_bars_is_held_as_cash_by_both_buy_and_hold_measures() {
    let mut s = Sim::new(100_000);
    s.bar_full(0, ["100", "100", "100", "100"], 1_000_000, false);
    s.bar_full(0, ["110", "110", "110", "110"], 1_000_000, false);
    let r = s.engine.finish(EndReason::Stopped);
    // AAA's half gained 10%, BBB's half never left cash.
    let last = r.analytics.curve.last().unwrap();
    assert_eq!(last.buy_and_hold, a("105000"));
    assert!((r.metrics.buy_and_hold_return_pct - 5.0).abs() < 1e-12);
}
