//! `ResultStore` tests of the shared suite (run on SQLite and Postgres by `store.rs`).

use auth::{
    AuthError, Database, NewUser, Page, ResultStore, SimulationRecord, SimulationSummary, UserStore,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use protocol::EndReason;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::Ctx;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

/// A plausible record: the JSON is the shape the gateway stores, with awkward floats.
fn record(user_id: Uuid, session_id: &str, created_at: DateTime<Utc>) -> SimulationRecord {
    SimulationRecord {
        summary: SimulationSummary {
            session_id: session_id.to_owned(),
            user_id,
            symbols: vec!["GOOG".into(), "BRK.B".into()],
            timeframe: "daily".into(),
            start_date: at(-86_400 * 365),
            end_date: at(-86_400),
            initial_capital: "100000.00".into(),
            final_equity: "194777.00".into(),
            total_return_pct: Some(94.777),
            total_trades: 12,
            reason: EndReason::Completed,
            // Sub-microsecond digits on purpose: stores keep microseconds.
            created_at: created_at + TimeDelta::nanoseconds(123_456_789),
            finished_at: created_at + TimeDelta::seconds(3),
        },
        params: json!({"symbols": ["GOOG", "BRK.B"], "initial_capital": "100000",
                       "metadata": {"note": "quote ' and \" and \\ and ünïcode"}})
        .to_string(),
        metrics: json!({"final_equity": "194777.00", "sharpe_ratio": 0.1234567890123456,
                        "tiny": 1.2345678901234567e-7, "huge": 1e300, "negative": -2.5,
                        "profit_factor": null, "ticks_processed": 2148})
        .to_string(),
        trades: json!([{"symbol": "GOOG", "side": "long", "quantity": 100,
                        "entry_time": "2004-09-01T00:00:00Z", "pnl": "-12.34",
                        "return_pct": -0.1}])
        .to_string(),
        equity_curve: json!([{"time": "2004-08-19T00:00:00Z", "equity": "100000.00"}]).to_string(),
        analytics: Some(
            json!({"curve": [{"time": "2004-08-19T00:00:00Z", "equity": "100000.00",
                              "buy_and_hold": "100000.00", "drawdown_pct": "0.0000"}],
                   "monthly_returns": [{"period": "2004-08", "return_pct": "-1.2345",
                                        "end_equity": "98765.50"}],
                   "yearly_returns": [{"period": "2004", "return_pct": "-1.2345",
                                       "end_equity": "98765.50"}],
                   "trade_returns_pct": ["-0.1000"]})
            .to_string(),
        ),
    }
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `written` as a store hands it back: microsecond times, JSON compared parsed.
fn assert_same(read: &SimulationRecord, written: &SimulationRecord) {
    let mut want = written.summary.clone();
    for t in [
        &mut want.start_date,
        &mut want.end_date,
        &mut want.created_at,
        &mut want.finished_at,
    ] {
        *t = chrono::SubsecRound::trunc_subsecs(*t, 6);
    }
    assert_eq!(read.summary, want);
    for (got, want) in [
        (&read.params, &written.params),
        (&read.metrics, &written.metrics),
        (&read.trades, &written.trades),
        (&read.equity_curve, &written.equity_curve),
    ] {
        assert_eq!(parsed(got), parsed(want));
    }
    assert_eq!(
        read.analytics.as_deref().map(parsed),
        written.analytics.as_deref().map(parsed)
    );
}

async fn user(store: &Database, email: &str) -> Uuid {
    store.create_user(NewUser::new(email)).await.unwrap().id
}

fn not_found<T: std::fmt::Debug>(result: Result<T, AuthError>) {
    assert!(
        matches!(result, Err(AuthError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

fn invalid<T: std::fmt::Debug>(result: Result<T, AuthError>, field: &str) {
    match result {
        Err(AuthError::InvalidInput { field: f, .. }) if f == field => {}
        other => panic!("expected InvalidInput({field}), got {other:?}"),
    }
}

async fn ids(store: &Database, user: Uuid, page: Page) -> Vec<String> {
    store
        .list_results(user, page)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect()
}

pub async fn results_round_trip_and_stay_with_their_owner(ctx: Ctx) {
    let store = &ctx.store;
    let alice = user(store, "alice@example.com").await;
    let bob = user(store, "bob@example.com").await;
    let written = record(alice, "sess_1", at(0));
    store.save_result(written.clone()).await.unwrap();

    let read = store.result_for_user(alice, "sess_1").await.unwrap();
    assert_same(&read, &written);
    assert_eq!(
        parsed(&read.metrics)["tiny"].as_f64(),
        Some(1.2345678901234567e-7)
    );
    let listed = store.list_results(alice, Page::default()).await.unwrap();
    assert_eq!(listed, vec![read.summary.clone()]);

    // Bob cannot read, list or delete it: the same answer as for an id nobody has.
    not_found(store.result_for_user(bob, "sess_1").await);
    not_found(store.result_for_user(bob, "sess_missing").await);
    assert!(store
        .list_results(bob, Page::default())
        .await
        .unwrap()
        .is_empty());
    not_found(store.delete_result(bob, "sess_1").await);
    assert_same(
        &store.result_for_user(alice, "sess_1").await.unwrap(),
        &written,
    );

    // Session ids are per user: Bob may use the same one without touching Alice's.
    let mut bobs = record(bob, "sess_1", at(10));
    bobs.summary.final_equity = "1.00".into();
    store.save_result(bobs.clone()).await.unwrap();
    assert_same(&store.result_for_user(bob, "sess_1").await.unwrap(), &bobs);
    assert_same(
        &store.result_for_user(alice, "sess_1").await.unwrap(),
        &written,
    );

    // Saving the same (user, id) again replaces the row.
    let mut again = record(alice, "sess_1", at(20));
    again.summary.reason = EndReason::Stopped;
    again.summary.total_return_pct = None;
    again.trades = "[]".into();
    again.analytics = None;
    store.save_result(again.clone()).await.unwrap();
    let read = store.result_for_user(alice, "sess_1").await.unwrap();
    assert_same(&read, &again);
    assert_eq!(read.analytics, None, "no analytics reads back as none");
    assert_eq!(ids(store, alice, Page::default()).await, ["sess_1"]);

    // A user that does not exist has nowhere to keep results.
    not_found(
        store
            .save_result(record(Uuid::new_v4(), "orphan", at(0)))
            .await,
    );
}

pub async fn results_list_newest_first_in_pages(ctx: Ctx) {
    let store = &ctx.store;
    let owner = user(store, "pages@example.com").await;
    let other = user(store, "other@example.com").await;
    // Saved out of order; two share a creation time and are ordered by id, descending.
    for (id, t) in [
        ("s3", 30),
        ("s1", 10),
        ("s5", 50),
        ("s2", 20),
        ("s4b", 40),
        ("s4a", 40),
    ] {
        store.save_result(record(owner, id, at(t))).await.unwrap();
    }
    store
        .save_result(record(other, "other-1", at(60)))
        .await
        .unwrap();

    let all = ["s5", "s4b", "s4a", "s3", "s2", "s1"];
    assert_eq!(ids(store, owner, Page::default()).await, all);
    let mut pages = Vec::new();
    for offset in (0..8).step_by(2) {
        pages.push(ids(store, owner, Page::new(offset, 2)).await);
    }
    assert_eq!(
        pages,
        [
            vec!["s5", "s4b"],
            vec!["s4a", "s3"],
            vec!["s2", "s1"],
            vec![]
        ]
    );
    assert!(ids(store, owner, Page::new(0, 0)).await.is_empty());
    assert!(ids(store, owner, Page::new(u64::MAX, 10)).await.is_empty());
    // Limits beyond the maximum are clamped, not refused.
    assert_eq!(ids(store, owner, Page::new(1, u32::MAX)).await, all[1..]);
    assert_eq!(ids(store, other, Page::default()).await, ["other-1"]);
}

pub async fn results_can_be_deleted(ctx: Ctx) {
    let store = &ctx.store;
    let owner = user(store, "delete@example.com").await;
    for (id, t) in [("keep", 1), ("drop", 2)] {
        store.save_result(record(owner, id, at(t))).await.unwrap();
    }
    store.delete_result(owner, "drop").await.unwrap();
    not_found(store.result_for_user(owner, "drop").await);
    not_found(store.delete_result(owner, "drop").await);
    assert_eq!(ids(store, owner, Page::default()).await, ["keep"]);
    store.result_for_user(owner, "keep").await.unwrap();
    // A deleted id can be used again.
    store
        .save_result(record(owner, "drop", at(3)))
        .await
        .unwrap();
    assert_eq!(ids(store, owner, Page::default()).await, ["drop", "keep"]);
}

pub async fn sql_injection_strings_in_session_ids_are_plain_ids(ctx: Ctx) {
    let store = &ctx.store;
    let owner = user(store, "inject@example.com").await;
    let other = user(store, "bystander@example.com").await;
    store
        .save_result(record(other, "victim", at(0)))
        .await
        .unwrap();
    let hostile = [
        "'; DROP TABLE simulation_results; --",
        "' OR '1'='1",
        "x' OR user_id IS NOT NULL --",
        "\" OR 1=1 --",
        "%",
        "_",
        "$1 ? ?1 :name @p1",
        "back\\slash \\0 名前 🗝️",
        "victim",
    ];
    for (i, id) in hostile.iter().enumerate() {
        store
            .save_result(record(owner, id, at(i as i64)))
            .await
            .unwrap();
    }
    let longest = "é".repeat(64); // 128 bytes
    store
        .save_result(record(owner, &longest, at(100)))
        .await
        .unwrap();
    for id in hostile.iter().copied().chain([longest.as_str()]) {
        let read = store.result_for_user(owner, id).await.unwrap();
        assert_eq!(read.summary.session_id, id);
        assert_eq!(read.summary.user_id, owner);
        if id != "victim" {
            not_found(store.result_for_user(other, id).await);
        }
    }
    let victim = store.result_for_user(other, "victim").await.unwrap();
    assert_eq!(victim.summary.user_id, other);
    assert_eq!(
        victim.summary.created_at,
        at(0) + TimeDelta::microseconds(123_456)
    );
    let listed = ids(store, owner, Page::default()).await;
    assert_eq!(listed.len(), hostile.len() + 1);
    // Wildcards and quotes matched nothing but themselves.
    assert_eq!(ids(store, other, Page::default()).await, ["victim"]);
    not_found(store.result_for_user(owner, "' OR 1=1 --").await);
    not_found(store.result_for_user(owner, "%%").await);

    // Ids no backend can store are refused on save and simply absent on lookup.
    for bad in ["", "nul\0byte", &"x".repeat(129)] {
        invalid(
            store.save_result(record(owner, bad, at(0))).await,
            "session_id",
        );
        not_found(store.result_for_user(owner, bad).await);
        not_found(store.delete_result(owner, bad).await);
    }
    for id in hostile {
        store.delete_result(owner, id).await.unwrap();
    }
    assert_eq!(ids(store, owner, Page::default()).await, [longest]);
    assert_eq!(ids(store, other, Page::default()).await, ["victim"]);
}

pub async fn results_that_no_backend_can_hold_are_refused_alike(ctx: Ctx) {
    let store = &ctx.store;
    let owner = user(store, "strict@example.com").await;
    let base = record(owner, "s", at(0));

    let mut r = base.clone();
    r.metrics = "{not json".into();
    invalid(store.save_result(r).await, "metrics");
    let mut r = base.clone();
    r.params = json!({"metadata": "nul \u{0} inside"}).to_string();
    invalid(store.save_result(r).await, "params");
    let mut r = base.clone();
    r.trades = json!([{"k\u{0}": 1}]).to_string();
    invalid(store.save_result(r).await, "trades");
    let mut r = base.clone();
    r.equity_curve = String::new();
    invalid(store.save_result(r).await, "equity_curve");
    let mut r = base.clone();
    r.analytics = Some("[1,".into());
    invalid(store.save_result(r).await, "analytics");
    let mut r = base.clone();
    r.analytics = Some(json!({"curve": "nul \u{0}"}).to_string());
    invalid(store.save_result(r).await, "analytics");
    for money in ["1e5", "12,50", "", "NaN"] {
        let mut r = base.clone();
        r.summary.final_equity = money.into();
        invalid(store.save_result(r).await, "final_equity");
    }
    let mut r = base.clone();
    r.summary.initial_capital = "-".into();
    invalid(store.save_result(r).await, "initial_capital");
    not_found(store.result_for_user(owner, "s").await);

    // A non-finite return is stored as "undefined".
    let mut r = base.clone();
    r.summary.total_return_pct = Some(f64::NAN);
    store.save_result(r).await.unwrap();
    let read = store.result_for_user(owner, "s").await.unwrap();
    assert_eq!(read.summary.total_return_pct, None);
    // Escaped text that merely looks like NUL is fine.
    let mut r = base;
    r.params = r#"{"note": "literally \\u0000"}"#.into();
    store.save_result(r.clone()).await.unwrap();
    assert_eq!(
        parsed(&store.result_for_user(owner, "s").await.unwrap().params)["note"],
        "literally \\u0000"
    );
}
