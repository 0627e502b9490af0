//! The behavioural suite every `QueueStore` must pass: the embedded store
//! (local stack) and the Redis store (production, against the real Redis of
//! the test stack) run the very same cases.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, sync::Arc, time::Duration};

use jiff::Timestamp;
use twinkle_domain::{EventId, OpeningMode, QueueId};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{memory::MemoryStore, redis_store::RedisStore},
    ports::{Assignment, QueueEntry, QueueStore},
};

fn event_id() -> EventId {
    unique("ev").parse().expect("event id")
}

fn qid(id: &str) -> QueueId {
    id.parse().expect("queue id")
}

fn entry(event: &EventId, id: &str, pre_queue: bool) -> QueueEntry {
    QueueEntry {
        event: event.clone(),
        queue_id: qid(id),
        entered_at: Timestamp::now(),
        pre_queue,
    }
}

fn seqs(assignments: &[Assignment]) -> Vec<u64> {
    assignments
        .iter()
        .map(|a| match a {
            Assignment::Sequence(s) => *s,
            Assignment::AwaitingDraw => 0,
        })
        .collect()
}

fn at(t0: Timestamp, secs: u64) -> Timestamp {
    t0.checked_add(Duration::from_secs(secs)).unwrap()
}

const TTL: Duration = Duration::from_secs(300);
const HB: Duration = Duration::from_secs(30);

async fn assign_is_idempotent_and_gapless(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let first = [
        entry(&ev, "a", false),
        entry(&ev, "b", false),
        entry(&ev, "c", false),
    ];
    let a = store.assign(&first, OpeningMode::Fifo).await.unwrap();
    assert_eq!(seqs(&a), vec![1, 2, 3]);
    // Redelivery of b and a, plus a new d, in one batch.
    let again = [
        entry(&ev, "b", false),
        entry(&ev, "a", false),
        entry(&ev, "d", false),
    ];
    let again = store.assign(&again, OpeningMode::Fifo).await.unwrap();
    assert_eq!(seqs(&again), vec![2, 1, 4]);
    let c = store.counters(&ev).await.unwrap();
    assert_eq!((c.assigned, c.serving, c.active), (4, 0, 0));
    let ids = [qid("d"), qid("zz"), qid("a")];
    assert_eq!(
        store.sequences(&ev, &ids).await.unwrap(),
        vec![Some(4), None, Some(1)]
    );
}

async fn concurrent_redelivery_never_duplicates_or_skips(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let n = 300;
    let mut tasks = Vec::new();
    // Four "consumers" deliver overlapping batches of the same entries.
    for worker in 0..4 {
        let store = store.clone();
        let ev = ev.clone();
        tasks.push(tokio::spawn(async move {
            let mut order: Vec<usize> = (0..n).collect();
            order.rotate_left(worker * 37);
            for chunk in order.chunks(25) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|i| entry(&ev, &format!("c{i}"), false))
                    .collect();
                store.assign(&batch, OpeningMode::Fifo).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ids: Vec<QueueId> = (0..n).map(|i| qid(&format!("c{i}"))).collect();
    let got: Vec<u64> = store
        .sequences(&ev, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let distinct: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(distinct.len(), n, "every customer has exactly one number");
    assert_eq!(distinct, (1..=n as u64).collect::<HashSet<_>>(), "no gaps");
    assert_eq!(store.counters(&ev).await.unwrap().assigned, n as u64);
}

async fn admission_respects_budget_cap_and_reclaims_sessions(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let batch: Vec<_> = (0..20)
        .map(|i| entry(&ev, &format!("p{i}"), false))
        .collect();
    store.assign(&batch, OpeningMode::Fifo).await.unwrap();
    let t0 = Timestamp::now();
    // Budget 5 → 5 admitted, in sequence order.
    let out = store.admit(&ev, t0, 5, 8, TTL, HB).await.unwrap();
    assert_eq!(
        (out.admitted, out.counters.serving, out.counters.active),
        (5, 5, 5)
    );
    // Cap of 8 live sessions: only 3 more however large the budget.
    let out = store.admit(&ev, t0, 100, 8, TTL, HB).await.unwrap();
    assert_eq!(
        (out.admitted, out.counters.serving, out.counters.active),
        (3, 8, 8)
    );
    let first: Vec<QueueId> = (0..9).map(|i| qid(&format!("p{i}"))).collect();
    let sessions = store.sessions(&ev, &first).await.unwrap();
    assert!(sessions[..8].iter().all(Option::is_some));
    assert!(sessions[8].is_none(), "p8 is not admitted yet");
    // Booking ends p0's session: its capacity is reused at once.
    assert!(store.end_session(&ev, &first[0]).await.unwrap());
    assert!(
        !store.end_session(&ev, &first[0]).await.unwrap(),
        "ending twice is a no-op"
    );
    let out = store.admit(&ev, t0, 100, 8, TTL, HB).await.unwrap();
    assert_eq!((out.admitted, out.counters.serving), (1, 9));
    // p1 heartbeats; everyone else abandons. After the heartbeat timeout only
    // p1 is alive and the freed places go to the next in line.
    assert!(
        store
            .heartbeat(&ev, &first[1], at(t0, 20), TTL, HB)
            .await
            .unwrap()
    );
    let after = at(t0, 31);
    let out = store.admit(&ev, after, 100, 8, TTL, HB).await.unwrap();
    assert_eq!(out.expired, 7, "abandoned sessions are reclaimed");
    assert_eq!(
        (out.admitted, out.counters.serving, out.counters.active),
        (7, 16, 8)
    );
    assert!(
        !store
            .heartbeat(&ev, &first[2], after, TTL, HB)
            .await
            .unwrap(),
        "an expired session cannot be revived"
    );
    // Never past the last assigned number.
    let out = store.admit(&ev, after, 100, 1000, TTL, HB).await.unwrap();
    assert_eq!((out.admitted, out.counters.serving), (4, 20));
    let out = store.admit(&ev, after, 100, 1000, TTL, HB).await.unwrap();
    assert_eq!(out.admitted, 0);
}

async fn session_lifetime_is_capped_by_ttl(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    store
        .assign(&[entry(&ev, "x", false)], OpeningMode::Fifo)
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let ttl = Duration::from_secs(60);
    store.admit(&ev, t0, 1, 10, ttl, HB).await.unwrap();
    let x = qid("x");
    // Heartbeats every 20 s keep it alive, but not beyond the TTL.
    for secs in [20, 40] {
        assert!(
            store
                .heartbeat(&ev, &x, at(t0, secs), ttl, HB)
                .await
                .unwrap()
        );
    }
    let deadline = store.sessions(&ev, std::slice::from_ref(&x)).await.unwrap()[0].unwrap();
    assert_eq!(deadline.as_millisecond(), at(t0, 60).as_millisecond());
    let out = store.admit(&ev, at(t0, 61), 0, 10, ttl, HB).await.unwrap();
    assert_eq!(out.expired, 1);
}

async fn shuffle_draw_permutes_the_pre_queue_then_fifo(store: Arc<dyn QueueStore>) {
    let ev = event_id();
    let mode = OpeningMode::ShuffleAtOpen;
    let pre: Vec<_> = (0..40)
        .map(|i| entry(&ev, &format!("e{i}"), true))
        .collect();
    let held = store.assign(&pre, mode).await.unwrap();
    assert!(held.iter().all(|a| *a == Assignment::AwaitingDraw));
    // Redelivery before the draw is still held, not duplicated.
    store.assign(&pre[..5], mode).await.unwrap();
    // An entry after opening but before the draw queues behind the pre-queue.
    store
        .assign(&[entry(&ev, "late1", false)], mode)
        .await
        .unwrap();
    assert!(!store.drawn(&ev).await.unwrap());
    assert_eq!(store.counters(&ev).await.unwrap().assigned, 0);

    assert_eq!(store.draw(&ev, 42).await.unwrap(), Some(41));
    assert_eq!(
        store.draw(&ev, 43).await.unwrap(),
        None,
        "the draw happens once"
    );
    let after = store
        .assign(&[entry(&ev, "late2", false), pre[3].clone()], mode)
        .await
        .unwrap();
    assert_eq!(
        seqs(&after)[0],
        42,
        "later arrivals are FIFO after the draw"
    );
    assert!(
        (1..=40).contains(&seqs(&after)[1]),
        "a redelivered pre-queue entry keeps its drawn number"
    );

    let ids: Vec<QueueId> = (0..40).map(|i| qid(&format!("e{i}"))).collect();
    let drawn: Vec<u64> = store
        .sequences(&ev, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        drawn.iter().copied().collect::<HashSet<_>>(),
        (1..=40).collect()
    );
    assert_ne!(
        drawn,
        (1..=40).collect::<Vec<_>>(),
        "a seeded shuffle of 40 is not the identity"
    );
    assert_eq!(
        store.sequences(&ev, &[qid("late1")]).await.unwrap(),
        vec![Some(41)]
    );
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
    assign_is_idempotent_and_gapless,
    concurrent_redelivery_never_duplicates_or_skips,
    admission_respects_budget_cap_and_reclaims_sessions,
    session_lifetime_is_capped_by_ttl,
    shuffle_draw_permutes_the_pre_queue_then_fifo,
    only_one_lease_holder,
);
