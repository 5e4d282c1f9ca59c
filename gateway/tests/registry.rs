//! Session creation, limits, ownership and supervision on a real actix system.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use gateway::config::Settings;
use gateway::registry::{
    CreateSession, GetSession, ListSessions, LookupError, SessionRegistry, SessionSpec,
};
use market_data::{parse_timestamp, Amount, Catalog, MarketDataActor, MarketDataConfig, Timeframe};
use protocol::ErrorCode;
use session_actor::actor::{Attach, Close, Pacing, SessionOutput, Start};
use session_actor::store::MemoryStore;
use tokio::sync::mpsc;

fn registry() -> Addr<SessionRegistry> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    let settings = Settings::load_from(
        None,
        [(
            "SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT".to_string(),
            root.to_string(),
        )],
    )
    .unwrap();
    let catalog = Catalog::open(root).unwrap();
    let market = MarketDataActor::new("default", catalog, MarketDataConfig::default()).start();
    SessionRegistry::new(Arc::new(settings), market, Arc::new(MemoryStore::new()), 2).start()
}

fn spec(symbols: &[&str], start: &str, end: &str) -> SessionSpec {
    SessionSpec {
        session_id: None,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeframe: Timeframe::Daily,
        start: parse_timestamp(start).unwrap(),
        end: parse_timestamp(end).unwrap(),
        warmup_bars: 0,
        initial_capital: Amount::from_int(100_000),
        data_provider: None,
        commission_per_share: None,
        slippage_bps: None,
        allow_short: false,
        account_snapshot_every: 0,
        params_json: "{}".into(),
        market_hours: market_data::MarketHours::All,
    }
}

fn create(user: &str, max: u32, spec: SessionSpec) -> CreateSession {
    CreateSession {
        user_id: user.into(),
        max_sessions: max,
        max_duration: Duration::from_secs(60),
        max_working_orders: 100,
        spec,
        arbiter: None,
        owner: None,
    }
}

#[actix::test]
async fn creates_runs_and_frees_the_slot_when_finished() {
    let reg = registry();
    let h = reg
        .send(create(
            "alice",
            1,
            spec(&["GOOG"], "2010-01-01", "2010-02-01"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.ticks_total, 19); // January 2010 trading days
    assert!(h.session_id.starts_with("sess_"));
    // At the cap a second live session is refused.
    let e = reg
        .send(create(
            "alice",
            1,
            spec(&["GOOG"], "2010-01-01", "2010-02-01"),
        ))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ServiceBusy);
    // Another user is not affected.
    reg.send(create(
        "bob",
        1,
        spec(&["GOOG"], "2010-01-01", "2010-02-01"),
    ))
    .await
    .unwrap()
    .unwrap();

    let (tx, mut rx) = mpsc::channel(64);
    h.addr
        .send(Attach {
            sink: tx,
            resume_from: None,
            epoch: None,
        })
        .await
        .unwrap()
        .unwrap();
    h.addr
        .send(Start {
            pacing: Pacing::Stream { interval_ms: 0 },
        })
        .await
        .unwrap()
        .unwrap();
    while !matches!(rx.recv().await, Some(SessionOutput::End(_))) {}
    // Finished sessions no longer count toward the cap.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let listed = reg
        .send(ListSessions {
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(listed, vec![(h.session_id.clone(), false)]);
    reg.send(create(
        "alice",
        1,
        spec(&["GOOG"], "2011-01-01", "2011-02-01"),
    ))
    .await
    .unwrap()
    .unwrap();
    // Closing stops the actor and the registry forgets it.
    h.addr.send(Close).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = reg
        .send(GetSession {
            session_id: h.session_id,
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(e.unwrap_err(), LookupError::NotFound);
}

#[actix::test]
async fn errors_carry_protocol_codes() {
    let reg = registry();
    let e = reg
        .send(create("u", 5, spec(&["NOPE"], "2010-01-01", "2010-02-01")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::DataFetchFailed);
    assert!(e.message.contains("NOPE"), "{}", e.message);
    let e = reg
        .send(create("u", 5, spec(&["GOOG"], "2010-02-01", "2010-01-01")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let e = reg
        .send(create("u", 5, spec(&["GOOG"], "1990-01-01", "1991-01-01")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::DataFetchFailed);
    let mut s = spec(&["GOOG"], "2010-01-01", "2010-02-01");
    s.warmup_bars = 1_000_000;
    let e = reg.send(create("u", 5, s)).await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationError);
    let mut s = spec(&["GOOG"], "2010-01-01", "2010-02-01");
    s.slippage_bps = Some(20_000);
    let e = reg.send(create("u", 5, s)).await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationError);
}

#[actix::test]
async fn session_ids_are_unique_per_user() {
    let reg = registry();
    let mut s = spec(&["GOOG"], "2010-01-01", "2010-02-01");
    s.session_id = Some("mine".into());
    let h = reg
        .send(create("alice", 5, s.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.session_id, "mine");
    let e = reg.send(create("alice", 5, s)).await.unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let got = reg
        .send(GetSession {
            session_id: "mine".into(),
            user_id: "mallory".into(),
        })
        .await
        .unwrap();
    // Another user's session is not theirs: not found, as if nobody had the id.
    assert_eq!(got.unwrap_err(), LookupError::NotFound);
    let got = reg
        .send(GetSession {
            session_id: "mine".into(),
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    let alices = got.unwrap();
    assert_eq!(alices.session_id, "mine");
    // The same id is free for another user, and each sees their own.
    let mut s = spec(&["GOOG"], "2010-01-01", "2010-03-01");
    s.session_id = Some("mine".into());
    let h = reg.send(create("mallory", 5, s)).await.unwrap().unwrap();
    assert_eq!(h.session_id, "mine");
    assert_ne!(h.addr, alices.addr);
    for (user, ticks) in [("alice", alices.ticks_total), ("mallory", h.ticks_total)] {
        let got = reg
            .send(GetSession {
                session_id: "mine".into(),
                user_id: user.into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.ticks_total, ticks, "{user}");
    }
    assert_ne!(alices.ticks_total, h.ticks_total);
}

#[actix::test]
async fn market_hours_leave_24_hour_markets_whole() {
    let reg = registry();
    let mut all = spec(&["EURUSD"], "2017-05-01", "2017-05-08");
    all.timeframe = Timeframe::H1;
    let mut regular = all.clone();
    regular.market_hours = market_data::MarketHours::Regular;
    let a = reg.send(create("u", 5, all)).await.unwrap().unwrap();
    let r = reg.send(create("u", 5, regular)).await.unwrap().unwrap();
    assert!(a.ticks_total > 100);
    assert_eq!(a.ticks_total, r.ticks_total);
}
