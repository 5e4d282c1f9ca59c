//! The session actor on a real actix system, driven the way a connection drives it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use market_data::{Amount, Catalog, Slice, SliceRequest, Timeframe};
use protocol::orders::{ExecutionMode, OrderRequest, Side};
use tokio::sync::{mpsc, oneshot, watch};

use super::*;
use crate::engine::strategy::{run, SmaCrossover};
use crate::engine::{BatchResult, EngineConfig, SimulationResults};
use crate::store::MemoryStore;

fn goog() -> Arc<Slice> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let catalog = Catalog::open(root).unwrap();
    let request = SliceRequest {
        provider: None,
        symbols: vec!["GOOG".into()],
        timeframe: Timeframe::Daily,
        start: 0,
        end: 2_000_000_000,
        warmup_bars: 0,
    };
    Arc::new(catalog.slice(&request).unwrap())
}

fn config() -> EngineConfig {
    EngineConfig::new(vec!["GOOG".into()], Amount::from_int(100_000))
}

fn session(slice: &Arc<Slice>, max_duration: Duration) -> Addr<SessionActor> {
    observed_session(slice, max_duration, None)
}

fn observed_session(
    slice: &Arc<Slice>,
    max_duration: Duration,
    observer: Option<Recipient<Lifecycle>>,
) -> Addr<SessionActor> {
    let engine = Engine::new(config()).unwrap();
    let cfg = session_config(max_duration, observer);
    SessionActor::new(cfg, engine, Arc::clone(slice), Arc::new(MemoryStore::new())).start()
}

fn session_config(max_duration: Duration, observer: Option<Recipient<Lifecycle>>) -> SessionConfig {
    SessionConfig {
        session_id: "s1".into(),
        user_id: "u1".into(),
        params: "{}".into(),
        grace: Duration::from_secs(60),
        max_duration,
        batch_steps: 64,
        replay_outputs: 4096,
        observer,
        store_ttl: StoreTtl {
            lease: Duration::from_secs(3),
            state: Duration::from_secs(60),
        },
        checkpoint_ticks: 100,
        checkpoint_interval: Duration::from_secs(1),
    }
}

/// The client side of SMA(10,20): exact integer sums of closes, position from fills.
#[derive(Default)]
struct SmaClient {
    closes: Vec<i64>,
    prev: Option<std::cmp::Ordering>,
    position: i64,
    orders: u64,
}

impl SmaClient {
    fn on_output(&mut self, out: &SessionOutput, slice: &Slice) -> Option<OrderRequest> {
        match out {
            SessionOutput::Engine(Event::Execution(x)) => {
                self.position += x.executed_quantity * x.side.sign();
                None
            }
            SessionOutput::Engine(Event::Tick(t)) => {
                let step = &slice.steps[t.sequence_id as usize - 1];
                let close = slice.bars_of(step)[0].candle.close.raw();
                self.closes.push(close);
                let n = self.closes.len();
                if n < 20 {
                    return None;
                }
                let fast: i128 = self.closes[n - 10..].iter().map(|&c| c as i128).sum();
                let slow: i128 = self.closes[n - 20..].iter().map(|&c| c as i128).sum();
                let now = (fast * 20).cmp(&(slow * 10));
                let prev = self.prev.replace(now);
                use std::cmp::Ordering::*;
                let side = match (prev?, now) {
                    (Less, Greater) if self.position == 0 => Side::Buy,
                    (Greater, Less) if self.position > 0 => Side::Sell,
                    _ => return None,
                };
                self.orders += 1;
                let qty = if side == Side::Buy {
                    100
                } else {
                    self.position
                };
                Some(OrderRequest::market(
                    format!("sma-{}", self.orders),
                    "GOOG",
                    side,
                    qty,
                ))
            }
            _ => None,
        }
    }
}

/// Drives a lock-step session like a client: orders, then the ack, for every tick.
/// Stops after `stop_after` ticks if given (returning None).
/// Submits `orders` and returns the answer (given back, not on the stream).
async fn submit(addr: &Addr<SessionActor>, orders: Vec<OrderRequest>) -> BatchResult {
    let (reply, answer) = oneshot::channel();
    addr.send(Submit {
        orders,
        mode: ExecutionMode::BestEffort,
        on_stream: None,
        reply,
    })
    .await
    .unwrap();
    match answer.await.unwrap() {
        Submitted::Here(r) => r,
        other => panic!("expected the answer back, got {other:?}"),
    }
}

async fn drive(
    addr: &Addr<SessionActor>,
    rx: &mut mpsc::Receiver<SessionOutput>,
    slice: &Slice,
    client: &mut SmaClient,
    stop_after: Option<u64>,
) -> Option<SimulationResults> {
    while let Some(out) = rx.recv().await {
        if let Some(order) = client.on_output(&out, slice) {
            let ack = submit(addr, vec![order]).await;
            assert_eq!(ack.accepted_orders.len(), 1, "{ack:?}");
        }
        match out {
            SessionOutput::Engine(Event::Tick(t)) => {
                if stop_after == Some(t.sequence_id) {
                    return None;
                }
                addr.send(Ack {
                    sequence_id: t.sequence_id,
                })
                .await
                .unwrap();
            }
            SessionOutput::End(r) => return Some(*r),
            SessionOutput::Failed { message, .. } => panic!("session failed: {message}"),
            _ => {}
        }
    }
    panic!("session output closed before the end");
}

fn in_process(slice: &Slice) -> SimulationResults {
    let mut engine = Engine::new(config()).unwrap();
    run(&mut engine, slice, &mut SmaCrossover::new(10, 20, 100))
}

#[actix::test]
async fn lock_step_run_equals_the_in_process_engine() {
    let slice = goog();
    let addr = session(&slice, Duration::from_secs(600));
    let (tx, mut rx) = mpsc::channel(8);
    attach(&addr, tx).await;
    let view = addr
        .send(Start {
            pacing: Pacing::LockStep { window: 1 },
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.state, SessionState::Running);
    assert!(matches!(rx.recv().await, Some(SessionOutput::History)));
    let got = drive(&addr, &mut rx, &slice, &mut SmaClient::default(), None)
        .await
        .unwrap();
    let want = in_process(&slice);
    assert_eq!(got.trades, want.trades);
    assert_eq!(got.metrics, want.metrics);
    assert_eq!(got.metrics.final_equity, "194777.00".parse().unwrap());
    let state = addr.send(GetState).await.unwrap();
    assert_eq!(
        (state.state, state.sequence_id),
        (SessionState::Completed, 2148)
    );
}

#[actix::test]
async fn streaming_through_a_tiny_channel_delivers_every_tick_in_order() {
    let slice = goog();
    let addr = session(&slice, Duration::from_secs(600));
    let (tx, mut rx) = mpsc::channel(2);
    attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::Stream { interval_ms: 0 },
    })
    .await
    .unwrap()
    .unwrap();
    let mut expected = 1;
    loop {
        // A slow reader: the session has to wait for room instead of buffering.
        tokio::time::sleep(Duration::from_micros(10)).await;
        match rx.recv().await.unwrap() {
            SessionOutput::Engine(Event::Tick(t)) => {
                assert_eq!(t.sequence_id, expected);
                expected += 1;
            }
            SessionOutput::End(r) => {
                assert_eq!(r.metrics.ticks_processed, 2148);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(expected, 2149);
}

#[actix::test]
async fn detach_and_resume_continue_exactly_where_the_client_was() {
    let slice = goog();
    let addr = session(&slice, Duration::from_secs(600));
    let (tx, mut rx) = mpsc::channel(8);
    let attachment = attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::LockStep { window: 1 },
    })
    .await
    .unwrap()
    .unwrap();
    let mut client = SmaClient::default();
    // The client sees tick 700 and disconnects before acknowledging it.
    assert!(drive(&addr, &mut rx, &slice, &mut client, Some(700))
        .await
        .is_none());
    drop(rx);
    addr.send(Detach { attachment }).await.unwrap();
    let state = addr.send(GetState).await.unwrap();
    assert_eq!(state.sequence_id, 700);

    // Asking for more than the session produced is refused.
    let (tx, _rx) = mpsc::channel(8);
    let err = addr
        .send(Attach {
            sink: tx,
            resume_from: Some(701),
            epoch: None,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SessionError::ResumeFailed(_)));

    // Resume from the last tick seen: nothing to re-send, and the run goes on from 701.
    let (tx, mut rx) = mpsc::channel(8);
    addr.send(Attach {
        sink: tx,
        resume_from: Some(700),
        epoch: None,
    })
    .await
    .unwrap()
    .unwrap();
    addr.send(Ack { sequence_id: 700 }).await.unwrap();
    let got = drive(&addr, &mut rx, &slice, &mut client, None)
        .await
        .unwrap();
    let want = in_process(&slice);
    assert_eq!(got.trades, want.trades);
    assert_eq!(got.metrics, want.metrics);
}

#[actix::test]
async fn resume_resends_missed_outputs() {
    let slice = goog();
    let addr = session(&slice, Duration::from_secs(600));
    let (tx, mut rx) = mpsc::channel(64);
    let attachment = attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::LockStep { window: 5 },
    })
    .await
    .unwrap()
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        if let Some(SessionOutput::Engine(Event::Tick(t))) = rx.recv().await {
            seen.push(t.sequence_id);
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    addr.send(Detach { attachment }).await.unwrap();
    // The client only processed up to tick 2: ticks 3..5 come again, then 6 after acks.
    let (tx, mut rx) = mpsc::channel(64);
    addr.send(Attach {
        sink: tx,
        resume_from: Some(2),
        epoch: None,
    })
    .await
    .unwrap()
    .unwrap();
    let mut again = Vec::new();
    while again.len() < 3 {
        if let Some(SessionOutput::Engine(Event::Tick(t))) = rx.recv().await {
            again.push(t.sequence_id);
        }
    }
    assert_eq!(again, vec![3, 4, 5]);
    addr.send(Ack { sequence_id: 5 }).await.unwrap();
    loop {
        if let Some(SessionOutput::Engine(Event::Tick(t))) = rx.recv().await {
            assert_eq!(t.sequence_id, 6);
            break;
        }
    }
}

#[actix::test]
async fn lifecycle_rules() {
    let slice = goog();
    let addr = session(&slice, Duration::from_millis(200));
    assert!(matches!(
        addr.send(Pause).await.unwrap(),
        Err(SessionError::InvalidState(_))
    ));
    let (tx, mut rx) = mpsc::channel(8);
    attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::LockStep { window: 1 },
    })
    .await
    .unwrap()
    .unwrap();
    assert!(addr
        .send(Start {
            pacing: Pacing::LockStep { window: 1 }
        })
        .await
        .unwrap()
        .is_err());
    assert_eq!(
        addr.send(Pause).await.unwrap().unwrap().state,
        SessionState::Paused
    );
    assert_eq!(
        addr.send(Resume).await.unwrap().unwrap().state,
        SessionState::Running
    );
    // Nobody acks: the wall-clock limit ends the run with reason max_duration.
    let end = loop {
        if let Some(SessionOutput::End(r)) = rx.recv().await {
            break r;
        }
    };
    assert_eq!(end.reason, EndReason::MaxDuration);
    assert_eq!(end.metrics.ticks_processed, 1);
    assert_eq!(
        addr.send(GetState).await.unwrap().state,
        SessionState::Completed
    );
}

/// Forwards lifecycle notices to a channel, as the registry would receive them.
struct Observer(mpsc::UnboundedSender<Lifecycle>);

impl Actor for Observer {
    type Context = Context<Self>;
}

impl actix::Handler<Lifecycle> for Observer {
    type Result = ();
    fn handle(&mut self, msg: Lifecycle, _ctx: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

#[actix::test]
async fn the_supervisor_gets_the_results_the_client_gets() {
    let slice = goog();
    let (notices, mut lifecycle) = mpsc::unbounded_channel();
    let observer = Observer(notices).start().recipient();
    let addr = observed_session(&slice, Duration::from_secs(600), Some(observer));
    let (tx, mut rx) = mpsc::channel(8);
    attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::LockStep { window: 1 },
    })
    .await
    .unwrap()
    .unwrap();
    let got = drive(&addr, &mut rx, &slice, &mut SmaClient::default(), None)
        .await
        .unwrap();
    let notice = lifecycle.recv().await.unwrap();
    assert_eq!(notice.session_id, "s1");
    match notice.kind {
        LifecycleKind::Finished(results) => {
            assert_eq!(*results, got);
            assert_eq!(results.reason, EndReason::Completed);
            assert!(!results.trades.is_empty());
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    addr.send(Close).await.unwrap();
    assert_eq!(lifecycle.recv().await.unwrap().kind, LifecycleKind::Stopped);
}

#[actix::test]
async fn results_reach_the_supervisor_without_a_connection() {
    let slice = goog();
    let (notices, mut lifecycle) = mpsc::unbounded_channel();
    let observer = Observer(notices).start().recipient();
    // Never attached or started: the wall-clock limit still ends it with results.
    let _addr = observed_session(&slice, Duration::from_millis(50), Some(observer));
    match lifecycle.recv().await.unwrap().kind {
        LifecycleKind::Finished(results) => {
            assert_eq!(results.reason, EndReason::MaxDuration);
            assert_eq!(results.metrics.ticks_processed, 0);
            assert_eq!(results.metrics.final_equity, Amount::from_int(100_000));
        }
        other => panic!("expected Finished, got {other:?}"),
    }
}

/// A session with a short grace period, tied to an owner and watched by an observer.
fn owned_session(
    slice: &Arc<Slice>,
    owner: watch::Receiver<()>,
) -> (Addr<SessionActor>, mpsc::UnboundedReceiver<Lifecycle>) {
    let (notices, lifecycle) = mpsc::unbounded_channel();
    let observer = Observer(notices).start().recipient();
    let mut cfg = session_config(Duration::from_secs(600), Some(observer));
    cfg.grace = Duration::from_millis(100);
    let engine = Engine::new(config()).unwrap();
    let actor = SessionActor::new(cfg, engine, Arc::clone(slice), Arc::new(MemoryStore::new()))
        .with_owner(owner);
    (actor.start(), lifecycle)
}

async fn attach(addr: &Addr<SessionActor>, sink: mpsc::Sender<SessionOutput>) -> u64 {
    let info = addr.send(Attach {
        sink,
        resume_from: None,
        epoch: None,
    });
    info.await.unwrap().unwrap().attachment
}

/// The next lifecycle notice within `wait`, if any.
async fn notice_within(
    lifecycle: &mut mpsc::UnboundedReceiver<Lifecycle>,
    wait: Duration,
) -> Option<LifecycleKind> {
    tokio::time::timeout(wait, lifecycle.recv())
        .await
        .ok()
        .flatten()
        .map(|n| n.kind)
}

#[actix::test]
async fn a_session_whose_creating_connection_is_gone_ends_after_the_grace_period() {
    let slice = goog();
    let (owner, watched) = watch::channel(());
    let (addr, mut lifecycle) = owned_session(&slice, watched);
    // Still owned: nothing ends it.
    assert_eq!(
        notice_within(&mut lifecycle, Duration::from_millis(300)).await,
        None
    );
    // The connection closed before it ever heard of the session.
    drop(owner);
    let kind = notice_within(&mut lifecycle, Duration::from_secs(5)).await;
    assert_eq!(kind, Some(LifecycleKind::Stopped));
    assert!(!addr.connected());
}

#[actix::test]
async fn an_attach_whose_reply_was_lost_is_detached_when_the_owner_goes() {
    let slice = goog();
    let (owner, watched) = watch::channel(());
    let (addr, mut lifecycle) = owned_session(&slice, watched);
    // The connection attached, then went away with the receiving end before it
    // recorded the attachment.
    let (tx, rx) = mpsc::channel(8);
    attach(&addr, tx).await;
    drop(rx);
    drop(owner);
    let kind = notice_within(&mut lifecycle, Duration::from_secs(5)).await;
    assert_eq!(kind, Some(LifecycleKind::Stopped));
}

#[actix::test]
async fn a_stale_detach_leaves_the_current_connection_attached() {
    let slice = goog();
    let (owner, watched) = watch::channel(());
    let (addr, mut lifecycle) = owned_session(&slice, watched);
    let (tx_a, _rx_a) = mpsc::channel(8);
    let first = attach(&addr, tx_a).await;
    // Another connection resumes the session; then the first one (also its creator)
    // closes and detaches what it had.
    let (tx_b, mut rx_b) = mpsc::channel(8);
    let second = attach(&addr, tx_b).await;
    assert_ne!(first, second);
    addr.send(Detach { attachment: first }).await.unwrap();
    drop(owner);
    assert_eq!(
        notice_within(&mut lifecycle, Duration::from_millis(400)).await,
        None
    );
    // The second connection still drives the session.
    addr.send(Start {
        pacing: Pacing::LockStep { window: 1 },
    })
    .await
    .unwrap()
    .unwrap();
    let got = drive(&addr, &mut rx_b, &slice, &mut SmaClient::default(), Some(5)).await;
    assert!(got.is_none());
    assert_eq!(addr.send(GetState).await.unwrap().sequence_id, 5);
    // Its own detach is honoured.
    addr.send(Detach { attachment: second }).await.unwrap();
    let kind = notice_within(&mut lifecycle, Duration::from_secs(5)).await;
    assert_eq!(kind, Some(LifecycleKind::Stopped));
}

/// A one-share market buy.
fn buy(id: &str) -> OrderRequest {
    serde_json::from_value(serde_json::json!({
        "order_id": id, "symbol": "GOOG", "side": "buy", "type": "market", "quantity": 1
    }))
    .unwrap()
}

#[actix::test]
async fn a_batch_ack_on_the_stream_comes_before_what_the_batch_causes() {
    let slice = goog();
    let addr = session(&slice, Duration::from_secs(600));
    let (tx, mut rx) = mpsc::channel(64);
    let attachment = attach(&addr, tx).await;
    addr.send(Start {
        pacing: Pacing::LockStep { window: 1 },
    })
    .await
    .unwrap()
    .unwrap();
    let first = loop {
        if let Some(SessionOutput::Engine(Event::Tick(t))) = rx.recv().await {
            break t.sequence_id;
        }
    };
    // The batch and the ack that follows it, sent without waiting, as a connection does.
    let (reply, answer) = oneshot::channel();
    addr.do_send(Submit {
        orders: vec![buy("o1")],
        mode: ExecutionMode::BestEffort,
        on_stream: Some(StreamAck {
            attachment,
            request_id: Some("r1".into()),
            batch_id: "b1".into(),
        }),
        reply,
    });
    addr.do_send(Ack { sequence_id: first });
    assert_eq!(answer.await.unwrap(), Submitted::OnStream);
    let mut seen = Vec::new();
    while let Some(out) = rx.recv().await {
        match out {
            SessionOutput::BatchAck(a) => {
                assert_eq!(
                    (a.request_id.as_deref(), a.batch_id.as_str()),
                    (Some("r1"), "b1")
                );
                assert_eq!(a.result.accepted_orders, ["o1"]);
                seen.push("batch_ack");
            }
            SessionOutput::Engine(Event::Execution(_)) => seen.push("fill"),
            SessionOutput::Engine(Event::Tick(_)) => {
                seen.push("tick");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["batch_ack", "fill", "tick"]);
    // A batch from an attachment that is no longer the session's is answered to the
    // sender, not on another connection's stream.
    let (tx, _rx2) = mpsc::channel(64);
    attach(&addr, tx).await;
    let (reply, answer) = oneshot::channel();
    addr.do_send(Submit {
        orders: vec![buy("o2")],
        mode: ExecutionMode::BestEffort,
        on_stream: Some(StreamAck {
            attachment,
            request_id: None,
            batch_id: "b2".into(),
        }),
        reply,
    });
    match answer.await.unwrap() {
        Submitted::Here(r) => assert_eq!(r.accepted_orders, ["o2"]),
        other => panic!("expected the answer back, got {other:?}"),
    }
}

/// A node dies (stops answering) after the client processed tick `k`; another node
/// loads the stored session, replays it to `k`, takes it over and the client goes on.
/// The results equal an uninterrupted run, and the first node, fenced, stops.
async fn takeover_at(store: Arc<dyn SessionStore>, slice: &Arc<Slice>, k: u64) {
    let ttl = StoreTtl {
        lease: Duration::from_millis(300),
        state: Duration::from_secs(60),
    };
    let mut cfg = session_config(Duration::from_secs(600), None);
    cfg.session_id = format!("takeover-{k}");
    cfg.store_ttl = ttl;
    cfg.checkpoint_ticks = 50;
    let lease = store
        .acquire(&cfg.session_id, "node-a", 0, ttl)
        .await
        .unwrap();
    let own = Ownership {
        lease,
        epoch: 1,
        journal_next: 0,
        redo: VecDeque::new(),
        checkpointed: 0,
        state: StoredState::Ready,
        pacing: None,
        acked: 0,
    };
    let first = SessionActor::new(
        cfg.clone(),
        Engine::new(config()).unwrap(),
        Arc::clone(slice),
        Arc::clone(&store),
    )
    .with_ownership(own)
    .start();
    let (tx, mut rx_first) = mpsc::channel(8);
    first
        .send(Attach {
            sink: tx,
            resume_from: None,
            epoch: None,
        })
        .await
        .unwrap()
        .unwrap();
    first
        .send(Start {
            pacing: Pacing::LockStep { window: 1 },
        })
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        rx_first.recv().await,
        Some(SessionOutput::History)
    ));
    let mut client = SmaClient::default();
    assert!(drive(&first, &mut rx_first, slice, &mut client, Some(k))
        .await
        .is_none());

    let record = store.load(&cfg.session_id).await.unwrap().unwrap();
    assert!(
        record.checkpoint.sequence_id <= k,
        "checkpoints stay at ticks the client has"
    );
    let recovered = crate::store::recover(store.as_ref(), record, slice, "node-b", k, ttl)
        .await
        .unwrap();
    assert_eq!(recovered.engine.sequence_id(), k);
    let second = SessionActor::new(cfg, recovered.engine, Arc::clone(slice), Arc::clone(&store))
        .with_ownership(recovered.ownership)
        .start();
    let (tx, mut rx) = mpsc::channel(8);
    let info = second
        .send(Attach {
            sink: tx,
            resume_from: Some(k),
            epoch: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.view.sequence_id, k);
    let got = drive(&second, &mut rx, slice, &mut client, None)
        .await
        .unwrap();
    let want = in_process(slice);
    assert_eq!(got.trades, want.trades, "takeover after tick {k}");
    assert_eq!(got.metrics, want.metrics, "takeover after tick {k}");

    // The first node learns at its next lease renewal that it lost the session.
    let moved = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx_first.recv().await {
                Some(SessionOutput::Failed { code, .. }) => return Some(code),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("the fenced node stops within its lease renewal");
    assert_eq!(moved, Some(ErrorCode::SessionMoved));
}

fn takeover_ticks() -> Vec<u64> {
    // Fixed edges plus pseudo-random ticks that change from run to run (printed on
    // failure through the assertion messages).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    let mut rng = market_data::synthetic::SplitMix64::new(seed);
    let mut ticks = vec![1, 49, 50, 51, 2147];
    ticks.extend((0..3).map(|_| 1 + rng.next_u64() % 2147));
    ticks
}

#[actix::test]
async fn takeover_through_the_memory_store_equals_an_uninterrupted_run() {
    let slice = goog();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    for k in takeover_ticks() {
        takeover_at(Arc::clone(&store), &slice, k).await;
    }
}

#[actix::test]
async fn takeover_through_redis_equals_an_uninterrupted_run() {
    let slice = goog();
    let store: Arc<dyn SessionStore> = Arc::new(crate::store::conformance::redis_store().await);
    for k in takeover_ticks() {
        takeover_at(Arc::clone(&store), &slice, k).await;
    }
}

/// The resume replay buffer holds thousands of outputs per session: a large variant
/// would cost every session that much more memory.
#[test]
fn a_session_output_is_small() {
    assert!(
        size_of::<SessionOutput>() <= 40,
        "{} bytes",
        size_of::<SessionOutput>()
    );
}
