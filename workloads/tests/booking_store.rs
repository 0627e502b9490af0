//! The behavioural suite every booking projection (`BookingStore`) must
//! pass — the embedded store (local stack) and the Redis store (production,
//! against the real Redis of the test stack) run the very same cases — the
//! fencing contract every `DecisionLog` must keep (embedded and real Kafka
//! transactions), and the log suite every outcomes `Log` must pass.

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
        kafka_fenced::KafkaDecisionLog,
        memory::{MemoryLog, MemoryStore},
        memory_fenced::MemoryDecisions,
        redis_store::RedisStore,
    },
    ports::{
        BookingOutcome, BookingRequest, BookingStore, DecisionLog, Log, ProjectedDecision,
        Projection, Registration,
    },
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
    let counts = store.slot_counts(event).await.unwrap().value;
    let c = counts.iter().find(|c| c.slot == slot).unwrap();
    assert!(c.consistent(), "{c:?}");
    c.remaining
}

fn decision(id: &str, customer: &str, slot: &str, decision: Decision) -> ProjectedDecision {
    ProjectedDecision {
        request_id: id.parse().unwrap(),
        queue_id: customer.parse().unwrap(),
        slot: slot.parse().unwrap(),
        decision,
    }
}

async fn a_fresh_projection_is_behind_until_restored(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    let s = slots(&[("a", 3), ("b", 1)]);
    assert_eq!(store.slot_counts(&ev).await.unwrap().watermark, None);
    assert_eq!(
        store.project(&ev, 0, &[]).await.unwrap(),
        Projection::Behind(None)
    );
    assert!(store.restore(&ev, &s, &Tally::default(), 0).await.unwrap());
    let read = store.slot_counts(&ev).await.unwrap();
    assert_eq!(read.watermark, Some(0));
    assert_eq!(read.value.len(), 2);
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 3);
    assert_eq!(
        store.project(&ev, 0, &[]).await.unwrap(),
        Projection::Applied(0)
    );
}

async fn decisions_apply_only_on_top_of_their_watermark(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .restore(&ev, &slots(&[("a", 3)]), &Tally::default(), 0)
        .await
        .unwrap();
    let first = [
        decision("r1", "c1", "a", Decision::Confirmed),
        decision("r2", "c2", "a", Decision::AlreadyBooked),
    ];
    assert_eq!(
        store.project(&ev, 0, &first).await.unwrap(),
        Projection::Applied(2)
    );
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 2);
    // A second writer from the same start (a superseded decider) changes
    // nothing; one from further on finds the projection behind.
    let late = [decision("r3", "c3", "a", Decision::Confirmed)];
    assert_eq!(
        store.project(&ev, 0, &late).await.unwrap(),
        Projection::Ahead(2)
    );
    assert_eq!(
        store.project(&ev, 5, &late).await.unwrap(),
        Projection::Behind(Some(2))
    );
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 2);
    let ids: Vec<RequestId> = ["r1", "r2", "r3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let read = store.bookings(&ev, &ids).await.unwrap();
    assert!(
        !read.value.registrations_complete,
        "after a restore, an unknown id may be a lost registration"
    );
    store.registrations_complete(&ev).await.unwrap();
    let read = store.bookings(&ev, &ids).await.unwrap();
    assert!(read.value.registrations_complete);
    assert_eq!(read.watermark, Some(2));
    let status: Vec<Option<BookingStatus>> = read
        .value
        .found
        .iter()
        .map(|b| b.as_ref().map(|b| b.booking.status))
        .collect();
    assert_eq!(
        status,
        [
            Some(BookingStatus::Confirmed),
            Some(BookingStatus::AlreadyBooked),
            None
        ]
    );
}

async fn concurrent_writers_from_one_watermark_apply_once(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .restore(&ev, &slots(&[("hot", 50)]), &Tally::default(), 0)
        .await
        .unwrap();
    let steps: Vec<Vec<ProjectedDecision>> = (0..20)
        .map(|w| {
            (0..10)
                .map(|i| {
                    decision(
                        &format!("w{w}r{i}"),
                        &format!("w{w}c{i}"),
                        "hot",
                        Decision::Confirmed,
                    )
                })
                .collect()
        })
        .collect();
    let answers = join_all(steps.iter().map(|step| {
        let (store, ev) = (store.clone(), ev.clone());
        async move { store.project(&ev, 0, step).await.unwrap() }
    }))
    .await;
    let applied = answers
        .iter()
        .filter(|a| matches!(a, Projection::Applied(10)))
        .count();
    assert_eq!(applied, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Projection::Applied(10) | Projection::Ahead(10)))
    );
    assert_eq!(remaining(store.as_ref(), &ev, "hot").await, 40);
}

async fn restore_never_goes_back(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    let s = slots(&[("a", 3), ("b", 2)]);
    let mut tally = Tally::default();
    for i in 0..5 {
        tally.add(
            format!("r{i}").parse().unwrap(),
            Replayed {
                customer: format!("c{i}").parse().unwrap(),
                slot: (if i % 2 == 0 { "a" } else { "b" }).parse().unwrap(),
                decision: if i < 4 {
                    Decision::Confirmed
                } else {
                    Decision::SoldOut
                },
            },
        );
    }
    assert!(store.restore(&ev, &s, &tally, 5).await.unwrap());
    let whole = store.slot_counts(&ev).await.unwrap();
    assert_eq!(whole.watermark, Some(5));
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 1);
    assert_eq!(remaining(store.as_ref(), &ev, "b").await, 0);
    // An older ledger (a zombie decider's) never replaces a newer one.
    assert!(!store.restore(&ev, &s, &Tally::default(), 3).await.unwrap());
    assert!(!store.restore(&ev, &s, &tally, 5).await.unwrap());
    assert_eq!(store.slot_counts(&ev).await.unwrap(), whole);
    let read = store
        .bookings(&ev, &["r3".parse().unwrap(), "r4".parse().unwrap()])
        .await
        .unwrap();
    assert_eq!(
        read.value.found[0].as_ref().unwrap().booking.status,
        BookingStatus::Confirmed
    );
    assert_eq!(
        read.value.found[1].as_ref().unwrap().booking.status,
        BookingStatus::SoldOut
    );
    // Later decisions project on top of the restored watermark.
    assert_eq!(
        store
            .project(&ev, 5, &[decision("r5", "c5", "a", Decision::Confirmed)])
            .await
            .unwrap(),
        Projection::Applied(6)
    );
    assert_eq!(remaining(store.as_ref(), &ev, "a").await, 0);
}

async fn registration_and_lookup(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    store
        .restore(&ev, &slots(&[("a", 1), ("b", 1)]), &Tally::default(), 0)
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
    let found = store.bookings(&ev, &ids).await.unwrap().value.found;
    let pending = found[0].as_ref().unwrap();
    assert_eq!(pending.customer.as_str(), "c1");
    assert_eq!(pending.booking.status, BookingStatus::Pending);
    assert_eq!(pending.booking.slot.as_str(), "a");
    assert!(found[1].is_none());

    store
        .project(&ev, 0, &[decision("r1", "c1", "a", Decision::Confirmed)])
        .await
        .unwrap();
    let found = store.bookings(&ev, &ids[..1]).await.unwrap().value.found;
    assert_eq!(
        found[0].as_ref().unwrap().booking.status,
        BookingStatus::Confirmed
    );
    // Decided without registration (the API's register failed, the append
    // did not; or the store lost it): still known.
    store
        .project(&ev, 1, &[decision("r2", "c2", "a", Decision::SoldOut)])
        .await
        .unwrap();
    let found = store.bookings(&ev, &["r2".parse().unwrap()]).await.unwrap();
    assert_eq!(
        found.value.found[0].as_ref().unwrap().booking.status,
        BookingStatus::SoldOut
    );
}

async fn one_decider_lease_at_a_time(store: Arc<dyn BookingStore>) {
    let ev = event_id();
    let ttl = std::time::Duration::from_millis(400);
    assert!(store.lead_decider(&ev, "a", ttl).await.unwrap());
    assert!(!store.lead_decider(&ev, "b", ttl).await.unwrap());
    assert!(store.lead_decider(&ev, "a", ttl).await.unwrap(), "renewed");
    tokio::time::sleep(ttl * 2).await;
    assert!(store.lead_decider(&ev, "b", ttl).await.unwrap(), "expired");
    assert!(!store.lead_decider(&ev, "a", ttl).await.unwrap());
    // Only the holder can give it up; then it is free at once.
    store.release_decider(&ev, "a").await.unwrap();
    assert_eq!(store.decider(&ev).await.unwrap().as_deref(), Some("b"));
    store.release_decider(&ev, "b").await.unwrap();
    assert_eq!(store.decider(&ev).await.unwrap(), None);
    assert!(store.lead_decider(&ev, "a", ttl).await.unwrap());
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
    a_fresh_projection_is_behind_until_restored,
    decisions_apply_only_on_top_of_their_watermark,
    concurrent_writers_from_one_watermark_apply_once,
    restore_never_goes_back,
    registration_and_lookup,
    one_decider_lease_at_a_time,
);

fn outcome(ev: &EventId, r: &BookingRequest, decision: Decision) -> BookingOutcome {
    BookingOutcome {
        event: ev.clone(),
        request_id: r.request_id.clone(),
        queue_id: r.queue_id.clone(),
        slot: r.slot.clone(),
        decision,
        decided_at: Timestamp::now(),
    }
}

/// Reads until `n` requests came back (a Kafka consumer needs a moment to
/// be assigned), failing after 30 s.
async fn read_n(log: &mut dyn DecisionLog, n: usize) -> Vec<BookingRequest> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {n} requests in 30 s",
            got.len()
        );
        got.extend(
            log.next_batch(n - got.len(), std::time::Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    got
}

/// The decision-log contract: a session replays what earlier sessions
/// committed, resumes after their consumed position, and once a newer
/// session opened, an older one can commit nothing more.
async fn a_new_session_fences_the_old_one(
    requests: Arc<dyn Log<BookingRequest>>,
    mut first: Box<dyn DecisionLog>,
    mut second: Box<dyn DecisionLog>,
    ev: EventId,
) {
    let all: Vec<BookingRequest> = (0..6)
        .map(|i| request(&ev, &format!("r{i}"), &format!("c{i}"), "a"))
        .collect();
    requests.append_all(&all[..4]).await.unwrap();
    assert!(first.open(&|_, _| {}).await.unwrap().is_empty());
    let batch = read_n(first.as_mut(), 4).await;
    let mut ids: Vec<&str> = batch.iter().map(|r| r.request_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["r0", "r1", "r2", "r3"]);
    let decided: Vec<BookingOutcome> = batch
        .iter()
        .map(|r| outcome(&ev, r, Decision::Confirmed))
        .collect();
    first.commit(&decided).await.unwrap();
    requests.append_all(&all[4..]).await.unwrap();

    let replayed = second.open(&|_, _| {}).await.unwrap();
    let mut replayed_ids: Vec<String> = replayed.iter().map(|o| o.request_id.to_string()).collect();
    replayed_ids.sort_unstable();
    let mut committed_ids: Vec<String> = decided.iter().map(|o| o.request_id.to_string()).collect();
    committed_ids.sort_unstable();
    assert_eq!(replayed_ids, committed_ids);

    // The fenced session's decisions are refused and never seen.
    let zombie = [outcome(&ev, &all[5], Decision::Confirmed)];
    let refused = first.commit(&zombie).await;
    assert!(
        matches!(refused, Err(twinkle_workloads::Error::Fenced)),
        "{refused:?}"
    );
    // The new session resumes after what the old one consumed.
    let rest = read_n(second.as_mut(), 2).await;
    let rest_ids: HashSet<&str> = rest.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(rest_ids, HashSet::from(["r4", "r5"]));
    second
        .commit(&[outcome(&ev, &all[4], Decision::SoldOut)])
        .await
        .unwrap();
    let third_view = second.open(&|_, _| {}).await.unwrap();
    assert_eq!(third_view.len(), 5, "{third_view:?}");
    assert!(
        third_view.iter().all(|o| o.request_id.as_str() != "r5"),
        "a fenced commit never reaches the log"
    );
}

#[tokio::test]
async fn embedded_decision_log_fences_the_old_session() {
    let requests = MemoryLog::<BookingRequest>::default();
    let decisions = MemoryDecisions::new(requests.clone(), MemoryLog::default());
    a_new_session_fences_the_old_one(
        Arc::new(requests),
        Box::new(decisions.session()),
        Box::new(decisions.session()),
        event_id(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_decision_log_fences_the_old_session() {
    let stack = Stack::require();
    let mut event: EventConfig = support::event(1, 1);
    event.id = event_id();
    support::create_topics(&stack, &event, 3).await;
    let topics = Topics::for_event(&event.id);
    let producer = kafka::producer(&stack.kafka_bootstrap).unwrap();
    let requests = KafkaLog::new(producer, &stack.kafka_bootstrap, topics.bookings.clone());
    let group = unique("decider");
    let session = || {
        Box::new(KafkaDecisionLog::new(
            &stack.kafka_bootstrap,
            &group,
            &topics.bookings,
            &topics.outcomes,
        ))
    };
    a_new_session_fences_the_old_one(Arc::new(requests), session(), session(), event.id).await;
}

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
