//! One suite for every store: the in-memory one and Redis (the real server at
//! `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; these tests fail rather than
//! skip when it is unreachable).

use std::sync::Arc;
use std::time::Duration;

use engine::{CancelOrders, SubmitOrders};
use protocol::orders::ExecutionMode;

use super::*;

fn ttl() -> StoreTtl {
    StoreTtl {
        lease: Duration::from_secs(5),
        state: Duration::from_secs(60),
    }
}

fn meta(epoch: u64) -> SessionMeta {
    SessionMeta {
        user_id: "u1".into(),
        epoch,
        params: r#"{"symbols":["GOOG"]}"#.into(),
        state: StoredState::Running,
        pacing: StoredPacing {
            flow_control: true,
            window: 1,
            interval_ms: 0,
        },
    }
}

fn checkpoint(seq: u64, journal_next: u64) -> Checkpoint {
    Checkpoint {
        sequence_id: seq,
        journal_next,
        snapshot: vec![0, 159, 255, seq as u8],
    }
}

fn cancel(index: u64, seq: u64) -> JournalEntry {
    JournalEntry {
        index,
        sequence_id: seq,
        input: Command::Cancel(CancelOrders {
            order_ids: vec![format!("o{index}")],
        }),
    }
}

pub(crate) async fn redis_store() -> RedisStore {
    let url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    // A prefix of its own per test, so runs and tests never see each other's keys.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RedisStore::connect(&url, &format!("test-{}-{nanos}-{n}", std::process::id()))
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required for these tests: {e}"))
}

async fn ownership_and_fencing(store: Arc<dyn SessionStore>) {
    let a = store.acquire("s", "node-a", 0, ttl()).await.unwrap();
    assert_eq!(a.token, 1);
    assert_eq!(
        store.acquire("s", "node-b", 0, ttl()).await,
        Err(StoreError::Conflict { current: 1 })
    );
    // Acquired but never written: not a resumable session yet.
    assert_eq!(store.load("s").await.unwrap(), None);

    store
        .write(&a, Write::Full(meta(1), checkpoint(0, 0)), ttl())
        .await
        .unwrap();
    for (i, seq) in [(0, 3), (1, 3), (2, 9)] {
        store
            .write(&a, Write::Append(cancel(i, seq)), ttl())
            .await
            .unwrap();
    }
    let r = store.load("s").await.unwrap().unwrap();
    assert_eq!(
        (r.token, &r.meta, &r.checkpoint),
        (1, &meta(1), &checkpoint(0, 0))
    );
    assert_eq!(r.journal, vec![cancel(0, 3), cancel(1, 3), cancel(2, 9)]);

    // A checkpoint drops the entries it contains.
    store
        .write(&a, Write::Checkpoint(checkpoint(5, 2)), ttl())
        .await
        .unwrap();
    let mut paused = meta(1);
    paused.state = StoredState::Paused;
    store
        .write(&a, Write::Meta(paused.clone()), ttl())
        .await
        .unwrap();
    let r = store.load("s").await.unwrap().unwrap();
    assert_eq!(
        (r.checkpoint, r.journal, r.meta),
        (checkpoint(5, 2), vec![cancel(2, 9)], paused)
    );

    // Node B takes over with the token it read; A is fenced from then on.
    let b = store.acquire("s", "node-b", r.token, ttl()).await.unwrap();
    assert_eq!(b.token, 2);
    assert_eq!(
        store
            .write(&a, Write::Checkpoint(checkpoint(99, 3)), ttl())
            .await,
        Err(StoreError::Fenced)
    );
    assert_eq!(store.renew(&a, ttl()).await, Err(StoreError::Fenced));
    assert_eq!(store.release(&a).await, Err(StoreError::Fenced));
    assert_eq!(store.delete(&a).await, Err(StoreError::Fenced));
    store.renew(&b, ttl()).await.unwrap();
    store
        .write(&b, Write::Append(cancel(3, 10)), ttl())
        .await
        .unwrap();
    let r = store.load("s").await.unwrap().unwrap();
    assert_eq!(
        (r.token, r.checkpoint.sequence_id, r.journal.len()),
        (2, 5, 2)
    );

    // Release keeps the state for another node.
    store.release(&b).await.unwrap();
    assert!(store.load("s").await.unwrap().is_some());

    // Delete removes the state and fences every older lease.
    store.delete(&b).await.unwrap();
    assert_eq!(store.load("s").await.unwrap(), None);
    assert_eq!(
        store.write(&b, Write::Meta(meta(1)), ttl()).await,
        Err(StoreError::Fenced)
    );
    let Err(StoreError::Conflict { current }) = store.acquire("s", "node-c", 0, ttl()).await else {
        panic!("a deleted session's token stays ahead");
    };
    let c = store.acquire("s", "node-c", current, ttl()).await.unwrap();
    assert!(c.token > b.token);
}

async fn racing_takeovers_have_one_winner(store: Arc<dyn SessionStore>) {
    let a = store.acquire("race", "node-a", 0, ttl()).await.unwrap();
    store
        .write(&a, Write::Full(meta(1), checkpoint(0, 0)), ttl())
        .await
        .unwrap();
    let token = store.load("race").await.unwrap().unwrap().token;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .acquire("race", &format!("node-{i}"), token, ttl())
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(lease) => {
                won += 1;
                assert_eq!(lease.token, token + 1);
            }
            Err(e) => assert_eq!(e, StoreError::Conflict { current: token + 1 }),
        }
    }
    assert_eq!(won, 1);
}

async fn state_expires(store: Arc<dyn SessionStore>) {
    let short = StoreTtl {
        lease: Duration::from_millis(40),
        state: Duration::from_millis(80),
    };
    let a = store.acquire("x", "node-a", 0, short).await.unwrap();
    store
        .write(&a, Write::Full(meta(1), checkpoint(0, 0)), short)
        .await
        .unwrap();
    store
        .write(&a, Write::Append(cancel(0, 1)), short)
        .await
        .unwrap();
    assert!(store.load("x").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.load("x").await.unwrap(), None);
    assert_eq!(store.renew(&a, short).await, Err(StoreError::Lost));
    // Gone entirely: a new owner starts from token 0 again.
    assert_eq!(
        store.acquire("x", "node-b", 0, ttl()).await.unwrap().token,
        1
    );
}

macro_rules! for_each_store {
    ($($name:ident),*) => {
        mod memory_store {
            $(#[tokio::test]
            async fn $name() {
                super::$name(std::sync::Arc::new(super::MemoryStore::new())).await;
            })*
        }
        mod redis_store {
            $(#[tokio::test]
            async fn $name() {
                super::$name(std::sync::Arc::new(super::redis_store().await)).await;
            })*
        }
    };
}

for_each_store!(
    ownership_and_fencing,
    racing_takeovers_have_one_winner,
    state_expires
);

#[test]
fn checkpoints_round_trip_and_short_ones_are_refused() {
    let cp = checkpoint(7, 3);
    assert_eq!(Checkpoint::decode(&cp.encode()).unwrap(), cp);
    assert!(matches!(
        Checkpoint::decode(&[1, 2, 3]),
        Err(StoreError::Corrupt(_))
    ));
    let entry = JournalEntry {
        index: 0,
        sequence_id: 1,
        input: Command::Submit(SubmitOrders {
            orders: Vec::new(),
            mode: ExecutionMode::BestEffort,
        }),
    };
    let json = serde_json::to_string(&entry).unwrap();
    assert_eq!(serde_json::from_str::<JournalEntry>(&json).unwrap(), entry);
}
