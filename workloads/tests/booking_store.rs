//! The behavioural suite every `BookingStore` must pass — the embedded store
//! (local stack) and the Redis store (production, against the real Redis of
//! the test stack) run the very same cases — and the log suite every
//! outcomes `Log` must pass (embedded log and real Kafka).

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, sync::Arc};

use futures::future::join_all;
use jiff::Timestamp;
use twinkle_domain::{
    BookingStatus, Decision, EventConfig, EventId, QueueId, RequestId, Slot, SlotId,
    booking::{Decided as Replayed, Tally},
};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{
        kafka::{self, KafkaLog, Topics},
        memory::{MemoryLog, MemoryStore},
        redis_store::RedisStore,
    },
    ports::{BookingOutcome, BookingRequest, BookingStore, Log, Registration},
};

mod support;

fn event_id() -> EventId {
    unique("ev").parse().unwrap()
}

fn slots(spec: &[(&str, u32)]) -> Vec<Slot> {
    spec.iter()
        .map(|(id, capacity)| Slot {
            id: id.parse().unwrap(),
            label: (*id).to_owned(),
            capacity: *capacity,
        })
        .collect()
}

fn request(event: &EventId, id: &str, customer: &str, slot: &str) -> BookingRequest {
    BookingRequest {
        event: event.clone(),
        request_id: id.parse().unwrap(),
        queue_id: customer.parse().unwrap(),
        slot: slot.parse().unwrap(),
        requested_at: Timestamp::now(),
    }
}

async fn remaining(store: &dyn BookingStore, event: &EventId, slot: &str) -> u32 {
    let slot: SlotId = slot.parse().unwrap();
    let counts = store.slot_counts(event).await.unwrap();
    let c = counts.iter().find(|c| c.slot == slot).unwrap();
    assert!(c.consistent(), "{c:?}");
    c.remaining
}

async fn init_never_resets_sold_seats(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    let s = slots(&[("a", 3), ("b", 1)]);
    store.init_inventory(&ev, &s).await.unwrap();
    let d = store
        .decide(&ev, 1, &[request(&ev, "r1", "c1", "a")])
        .await
        .unwrap();
    assert_eq!(d[0].decision, Decision::Confirmed);
    // Re-initialising (a restart, a second pod) keeps the sold seat; a slot
    // added later is created.
    let more = slots(&[("a", 3), ("b", 1), ("c", 5)]);
    store.init_inventory(&ev, &more).await.unwrap();
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 2);
    assert_eq!(remaining(store.as_ref(), &ev, "c").await, 5);
    assert_eq!(store.slot_counts(&ev).await.unwrap().len(), 3);
}

async fn decisions_follow_the_rule(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .init_inventory(&ev, &slots(&[("a", 1), ("b", 5)]))
        .await
        .unwrap();
    let batch = [
        request(&ev, "r1", "c1", "a"),  // takes the last seat of a
        request(&ev, "r2", "c2", "a"),  // a is sold out
        request(&ev, "r3", "c1", "b"),  // c1 is at the limit (1)
        request(&ev, "r4", "c2", "b"),  // c2 still may book b
        request(&ev, "r5", "c3", "zz"), // no such slot: no seats
    ];
    let d = store.decide(&ev, 1, &batch).await.unwrap();
    let got: Vec<Decision> = d.iter().map(|d| d.decision).collect();
    assert_eq!(
        got,
        vec![
            Decision::Confirmed,
            Decision::SoldOut,
            Decision::AlreadyBooked,
            Decision::Confirmed,
            Decision::SoldOut,
        ]
    );
    assert!(d.iter().all(|d| d.fresh));
    assert_eq!(
        d.iter().map(|d| d.customer_confirmed).collect::<Vec<_>>(),
        vec![1, 0, 1, 1, 0]
    );
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 0);
    assert_eq!(remaining(store.as_ref(), &ev, "b").await, 4);

    // A higher limit lets a customer book twice.
    let d = store
        .decide(&ev, 2, &[request(&ev, "r6", "c1", "b")])
        .await
        .unwrap();
    assert_eq!(d[0].decision, Decision::Confirmed);
    assert_eq!(d[0].customer_confirmed, 2);
}

async fn redelivery_decides_once(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .init_inventory(&ev, &slots(&[("a", 10)]))
        .await
        .unwrap();
    let r = request(&ev, "r1", "c1", "a");
    let mut fresh = 0;
    for _ in 0..5 {
        let d = store
            .decide(&ev, 1, std::slice::from_ref(&r))
            .await
            .unwrap();
        assert_eq!(d[0].decision, Decision::Confirmed);
        assert_eq!(d[0].customer_confirmed, 1);
        fresh += usize::from(d[0].fresh);
    }
    assert_eq!(fresh, 1);
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 9);
    // Redelivered in one batch, too.
    let d = store
        .decide(&ev, 1, &[r.clone(), r.clone(), r])
        .await
        .unwrap();
    assert!(
        d.iter()
            .all(|d| !d.fresh && d.decision == Decision::Confirmed)
    );
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 9);
}

async fn concurrent_customers_never_oversell(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .init_inventory(&ev, &slots(&[("hot", 50)]))
        .await
        .unwrap();
    // 2,000 customers in 40 concurrent batches of 50 (as 40 consumers would).
    let batches: Vec<Vec<BookingRequest>> = (0..40)
        .map(|b| {
            (0..50)
                .map(|i| {
                    let n = b * 50 + i;
                    request(&ev, &format!("r{n}"), &format!("c{n}"), "hot")
                })
                .collect()
        })
        .collect();
    let results = join_all(batches.iter().map(|batch| {
        let store = store.clone();
        let ev = ev.clone();
        async move { store.decide(&ev, 1, batch).await.unwrap() }
    }))
    .await;
    let confirmed = results
        .iter()
        .flatten()
        .filter(|d| d.decision == Decision::Confirmed)
        .count();
    let sold_out = results
        .iter()
        .flatten()
        .filter(|d| d.decision == Decision::SoldOut)
        .count();
    assert_eq!((confirmed, sold_out), (50, 1950));
    assert_eq!(remaining(store.as_ref(), &ev, "hot").await, 0);
}

async fn registration_and_lookup(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .init_inventory(&ev, &slots(&[("a", 1), ("b", 1)]))
        .await
        .unwrap();
    let r = request(&ev, "r1", "c1", "a");
    assert_eq!(store.register(&r).await.unwrap(), Registration::New);
    assert_eq!(store.register(&r).await.unwrap(), Registration::Repeat);
    let other_slot = request(&ev, "r1", "c1", "b");
    assert_eq!(
        store.register(&other_slot).await.unwrap(),
        Registration::Conflict
    );
    let other_customer = request(&ev, "r1", "c2", "a");
    assert_eq!(
        store.register(&other_customer).await.unwrap(),
        Registration::Conflict
    );

    let ids: Vec<RequestId> = ["r1", "nope"].iter().map(|s| s.parse().unwrap()).collect();
    let found = store.bookings(&ev, &ids).await.unwrap();
    let pending = found[0].as_ref().unwrap();
    assert_eq!(pending.customer.as_str(), "c1");
    assert_eq!(pending.booking.status, BookingStatus::Pending);
    assert_eq!(pending.booking.slot.as_str(), "a");
    assert!(found[1].is_none());

    store.decide(&ev, 1, &[r]).await.unwrap();
    let found = store.bookings(&ev, &ids[..1]).await.unwrap();
    assert_eq!(
        found[0].as_ref().unwrap().booking.status,
        BookingStatus::Confirmed
    );
    // Decided without registration (the API's register failed, the append
    // did not): still known.
    store
        .decide(&ev, 1, &[request(&ev, "r2", "c2", "a")])
        .await
        .unwrap();
    let found = store.bookings(&ev, &["r2".parse().unwrap()]).await.unwrap();
    assert_eq!(
        found[0].as_ref().unwrap().booking.status,
        BookingStatus::SoldOut
    );
}

async fn restore_reproduces_the_inventory(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    let s = slots(&[("a", 3), ("b", 2)]);
    store.init_inventory(&ev, &s).await.unwrap();
    let batch: Vec<BookingRequest> = (0..8)
        .map(|i| {
            let slot = if i % 2 == 0 { "a" } else { "b" };
            request(&ev, &format!("r{i}"), &format!("c{}", i % 6), slot)
        })
        .collect();
    let decided = store.decide(&ev, 1, &batch).await.unwrap();
    let before = store.slot_counts(&ev).await.unwrap();

    let mut tally = Tally::default();
    for (r, d) in batch.iter().zip(&decided) {
        tally.add(
            r.request_id.clone(),
            Replayed {
                customer: r.queue_id.clone(),
                slot: r.slot.clone(),
                decision: d.decision,
            },
        );
    }
    // Wipe by restoring an empty tally, then restore the real one.
    store.restore(&ev, &s, &Tally::default()).await.unwrap();
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 3);
    store.restore(&ev, &s, &tally).await.unwrap();
    assert_eq!(store.slot_counts(&ev).await.unwrap(), before);
    // Decisions and customer totals came back too: a redelivery is answered
    // from the record, a customer at the limit stays there.
    let again = store.decide(&ev, 1, &batch).await.unwrap();
    assert_eq!(
        again.iter().map(|d| d.decision).collect::<Vec<_>>(),
        decided.iter().map(|d| d.decision).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|d| !d.fresh));
    assert_eq!(store.slot_counts(&ev).await.unwrap(), before);
}

async fn memory() -> Arc<dyn BookingStore> {
    Arc::new(MemoryStore::default())
}

async fn redis() -> Arc<dyn BookingStore> {
    Arc::new(
        RedisStore::connect(&Stack::require().redis_url)
            .await
            .unwrap(),
    )
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::memory().await).await })*
        }
        mod redis_backend {
            $(#[tokio::test(flavor = "multi_thread")] async fn $case() { super::$case(super::redis().await).await })*
        }
    };
}

suite!(
    init_never_resets_sold_seats,
    decisions_follow_the_rule,
    redelivery_decides_once,
    concurrent_customers_never_oversell,
    registration_and_lookup,
    restore_reproduces_the_inventory,
);

/// The outcomes log replays everything appended, in per-customer order.
async fn replay_returns_every_record(log: Arc<dyn Log<BookingOutcome>>, ev: EventId) {
    let outcomes: Vec<BookingOutcome> = (0..300)
        .map(|i| BookingOutcome {
            event: ev.clone(),
            request_id: format!("r{i}").parse().unwrap(),
            queue_id: format!("c{}", i % 7).parse::<QueueId>().unwrap(),
            slot: "a".parse().unwrap(),
            decision: Decision::SoldOut,
            decided_at: Timestamp::now(),
        })
        .collect();
    log.append_all(&outcomes[..100]).await.unwrap();
    for o in &outcomes[100..] {
        log.append(o).await.unwrap();
    }
    let seen = std::sync::Mutex::new(Vec::new());
    let replayed = log
        .replay(&|read, total| seen.lock().unwrap().push((read, total)))
        .await
        .unwrap();
    assert_eq!(replayed.len(), 300);
    let ids: HashSet<&RequestId> = replayed.iter().map(|o| &o.request_id).collect();
    assert_eq!(ids.len(), 300);
    for customer in 0..7 {
        let mine: Vec<&str> = replayed
            .iter()
            .filter(|o| o.queue_id.as_str() == format!("c{customer}"))
            .map(|o| o.request_id.as_str())
            .collect();
        let expected: Vec<String> = (0..300)
            .filter(|i| i % 7 == customer)
            .map(|i| format!("r{i}"))
            .collect();
        assert_eq!(mine, expected, "per-customer order");
    }
    assert_eq!(seen.lock().unwrap().last(), Some(&(300, 300)));
}

#[tokio::test]
async fn embedded_log_replays_every_record() {
    replay_returns_every_record(Arc::new(MemoryLog::default()), event_id()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_log_replays_every_record() {
    let stack = Stack::require();
    let mut event: EventConfig = support::event(1, 1);
    event.id = event_id();
    support::create_topics(&stack, &event, 3).await;
    let producer = kafka::producer(&stack.kafka_bootstrap).unwrap();
    let log = KafkaLog::new(
        producer,
        &stack.kafka_bootstrap,
        Topics::for_event(&event.id).outcomes,
    );
    replay_returns_every_record(Arc::new(log), event.id).await;
}
