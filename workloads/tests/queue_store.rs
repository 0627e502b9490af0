//! The behavioural suite every `QueueStore` (the queue projection) must
//! pass: the embedded store (local stack) and the Redis store (production,
//! against the real Redis of the test stack) run the very same cases. The
//! rules of places and admission themselves are the keeper's, tested in
//! `twinkle_domain::places`; the store must apply steps only on top of the
//! watermark they follow, restore whole, and keep sessions.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use twinkle_domain::{EventId, QueueId, places::Admission, queue::session_deadline};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{memory::MemoryStore, redis_store::RedisStore},
    ports::{Projection, QueueDelta, QueueSnapshot, QueueStore},
};

fn event_id() -> EventId {
    unique("ev").parse().expect("event id")
}

fn qid(id: &str) -> QueueId {
    id.parse().expect("queue id")
}

fn ids(n: usize, prefix: &str) -> Vec<QueueId> {
    (0..n).map(|i| qid(&format!("{prefix}{i}"))).collect()
}

/// Now, to the millisecond Redis keeps.
fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

fn at(t0: Timestamp, secs: u64) -> Timestamp {
    t0.checked_add(Duration::from_secs(secs)).unwrap()
}

const TTL: Duration = Duration::from_secs(300);
const HB: Duration = Duration::from_secs(30);

fn placing(first: u64, placed: Vec<QueueId>, serving: u64) -> QueueDelta {
    QueueDelta {
        first,
        placed,
        serving,
        ..QueueDelta::default()
    }
}

fn admitting(admitted: Vec<QueueId>, serving: u64, now: Timestamp) -> QueueDelta {
    QueueDelta {
        admitted,
        serving,
        admitted_at: Some(now),
        first_deadline: Some(session_deadline(now, now, TTL, HB)),
        ..QueueDelta::default()
    }
}

async fn fresh(store: &dyn QueueStore, ev: &EventId) {
    let empty = QueueSnapshot {
        order: &[],
        serving: 0,
        drawn: false,
        sessions: &[],
    };
    assert!(store.restore(ev, &empty, 0).await.unwrap());
}

async fn steps_apply_only_on_their_watermark(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let none = QueueDelta::default();
    assert_eq!(
        store.project(&ev, 0, 0, &none).await.unwrap(),
        Projection::Behind(None),
        "a store with no watermark holds none of the journal"
    );
    fresh(store.as_ref(), &ev).await;
    let a = ids(3, "a");
    assert_eq!(
        store
            .project(&ev, 0, 1, &placing(1, a.clone(), 0))
            .await
            .unwrap(),
        Projection::Applied(1)
    );
    // The same step again (a keeper that did not see its answer) is ahead.
    assert_eq!(
        store
            .project(&ev, 0, 1, &placing(1, a.clone(), 0))
            .await
            .unwrap(),
        Projection::Ahead(1)
    );
    assert_eq!(
        store.project(&ev, 3, 4, &none).await.unwrap(),
        Projection::Behind(Some(1))
    );
    let read = store
        .sequences(&ev, &[a[2].clone(), qid("nobody")])
        .await
        .unwrap();
    assert_eq!(read.watermark, Some(1));
    assert_eq!(read.value, vec![Some(3), None]);
    let counters = store.counters(&ev).await.unwrap();
    assert_eq!((counters.watermark, counters.value.assigned), (Some(1), 3));
}

async fn admissions_open_sessions_that_heartbeats_keep(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let t0 = now_ms();
    fresh(store.as_ref(), &ev).await;
    let a = ids(4, "s");
    store
        .project(&ev, 0, 1, &placing(1, a.clone(), 0))
        .await
        .unwrap();
    let step = admitting(a[..2].to_vec(), 2, t0);
    assert_eq!(
        store.project(&ev, 1, 2, &step).await.unwrap(),
        Projection::Applied(2)
    );
    let counters = store.counters(&ev).await.unwrap().value;
    assert_eq!((counters.serving, counters.active), (2, 2));
    // A check (an empty step) never moves the counter back.
    let check = QueueDelta::default();
    assert_eq!(
        store.project(&ev, 2, 2, &check).await.unwrap(),
        Projection::Applied(2)
    );
    assert_eq!(store.counters(&ev).await.unwrap().value.serving, 2);
    let sessions = store.sessions(&ev, &a[..3]).await.unwrap();
    assert_eq!(sessions.watermark, Some(2));
    assert_eq!(sessions.value[0], Some(at(t0, 30)));
    assert_eq!(sessions.value[2], None, "not admitted");

    assert!(
        store
            .heartbeat(&ev, &a[0], at(t0, 20), TTL, HB)
            .await
            .unwrap()
    );
    assert!(store.end_session(&ev, &a[1]).await.unwrap());
    // a[0] renewed to t0+50; a[1] left.
    let live = store.expire(&ev, at(t0, 40)).await.unwrap();
    assert_eq!((live.watermark, live.value), (Some(2), 1));
    let live = store.expire(&ev, at(t0, 51)).await.unwrap();
    assert_eq!(live.value, 0, "expired without a heartbeat");
    assert!(
        !store
            .heartbeat(&ev, &a[0], at(t0, 52), TTL, HB)
            .await
            .unwrap()
    );
}

async fn a_restore_replaces_places_and_revives_sessions(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let t0 = now_ms();
    fresh(store.as_ref(), &ev).await;
    let old = ids(2, "old");
    store
        .project(&ev, 0, 1, &placing(1, old.clone(), 0))
        .await
        .unwrap();
    store
        .project(&ev, 1, 2, &admitting(vec![old[0].clone()], 1, t0))
        .await
        .unwrap();
    store
        .heartbeat(&ev, &old[0], at(t0, 25), TTL, HB)
        .await
        .unwrap();

    // The journal says more than the store holds (it lost writes): large
    // enough to be staged in chunks.
    let order = ids(12_001, "r");
    let mut order_with_old = old.clone();
    order_with_old.extend(order.iter().cloned());
    let sessions = vec![
        Admission {
            id: old[0].clone(),
            admitted_at: t0,
            deadline: at(t0, 35),
        },
        Admission {
            id: old[1].clone(),
            admitted_at: t0,
            deadline: at(t0, 40),
        },
    ];
    let snapshot = QueueSnapshot {
        order: &order_with_old,
        serving: 2,
        drawn: true,
        sessions: &sessions,
    };
    assert!(store.restore(&ev, &snapshot, 9).await.unwrap());
    assert!(
        !store.restore(&ev, &snapshot, 9).await.unwrap(),
        "never over the same or newer"
    );
    let counters = store.counters(&ev).await.unwrap();
    assert_eq!(counters.watermark, Some(9));
    assert_eq!(
        (counters.value.assigned, counters.value.serving),
        (12_003, 2)
    );
    let read = store
        .sequences(&ev, &[order[12_000].clone(), old[1].clone()])
        .await
        .unwrap();
    assert_eq!(read.value, vec![Some(12_003), Some(2)]);
    let live = store.sessions(&ev, &old).await.unwrap().value;
    assert_eq!(
        live[0],
        Some(at(t0, 55)),
        "a live session keeps its later deadline"
    );
    assert_eq!(live[1], Some(at(t0, 40)), "a lost session is revived");
    // Steps go on from the restored watermark.
    assert_eq!(
        store
            .project(&ev, 9, 10, &placing(12_004, vec![qid("next")], 2))
            .await
            .unwrap(),
        Projection::Applied(10)
    );
}

async fn an_emptied_store_reads_as_behind(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let read = store.counters(&ev).await.unwrap();
    assert_eq!(read.watermark, None);
    assert_eq!(store.sessions(&ev, &[]).await.unwrap().watermark, None);
    assert_eq!(
        store.expire(&ev, Timestamp::now()).await.unwrap().watermark,
        None
    );
    fresh(store.as_ref(), &ev).await;
    assert_eq!(store.sessions(&ev, &[]).await.unwrap().watermark, Some(0));
}

async fn only_one_lease_holder(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let ttl = Duration::from_millis(300);
    assert!(store.lead(&ev, "pod-a", ttl).await.unwrap());
    assert!(!store.lead(&ev, "pod-b", ttl).await.unwrap());
    assert!(
        store.lead(&ev, "pod-a", ttl).await.unwrap(),
        "holder renews"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        store.lead(&ev, "pod-b", ttl).await.unwrap(),
        "an expired lease moves"
    );
    assert!(!store.lead(&ev, "pod-a", ttl).await.unwrap());
    store.release(&ev, "pod-a").await.unwrap();
    assert!(
        !store.lead(&ev, "pod-a", ttl).await.unwrap(),
        "only the holder releases"
    );
    store.release(&ev, "pod-b").await.unwrap();
    assert!(
        store.lead(&ev, "pod-a", ttl).await.unwrap(),
        "released: free at once"
    );
}

async fn memory() -> Arc<dyn QueueStore> {
    Arc::new(MemoryStore::default())
}

async fn redis() -> Arc<dyn QueueStore> {
    let stack = Stack::require();
    Arc::new(
        RedisStore::connect(&stack.redis_url)
            .await
            .expect("connect to the test Redis"),
    )
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $case() { super::$case(super::memory().await).await })*
        }
        mod redis_backend {
            $(#[tokio::test] async fn $case() { super::$case(super::redis().await).await })*
        }
    };
}

suite!(
    steps_apply_only_on_their_watermark,
    admissions_open_sessions_that_heartbeats_keep,
    a_restore_replaces_places_and_revives_sessions,
    an_emptied_store_reads_as_behind,
    only_one_lease_holder,
);
