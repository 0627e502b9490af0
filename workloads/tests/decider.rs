//! The decider on the embedded backends, in-process (its real-Kafka/Redis
//! behaviour is proved by the pipeline fault tests): it decides against the
//! ledger replayed from the outcomes log, so an emptied projection is
//! restored with the seats already sold, and of two deciders only one ever
//! gets a decision into the log.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use tokio::sync::watch;
use twinkle_domain::{Decision, EventConfig, Slot, booking::Tally};
use twinkle_dr::{Millis, Ownership, OwnershipTiming, Region};
use twinkle_e2e::stack::unique;
use twinkle_workloads::{
    backend::{
        memory::{MemoryLog, MemoryStore},
        memory_fenced::MemoryDecisions,
    },
    decider::Decider,
    metrics::Metrics,
    ownership::{OwnershipSettings, OwnershipSource, OwnershipWatch},
    ports::{BookingOutcome, BookingRequest, BookingStore, Log},
};

mod support;

fn event(capacity: u32) -> EventConfig {
    let mut e = support::event(1, 1);
    e.id = unique("ev").parse().unwrap();
    e.slots = vec![Slot {
        id: "a".parse().unwrap(),
        label: "a".into(),
        capacity,
    }];
    e
}

fn request(event: &EventConfig, i: usize) -> BookingRequest {
    BookingRequest {
        event: event.id.clone(),
        request_id: format!("r{i}").parse().unwrap(),
        queue_id: format!("c{i}").parse().unwrap(),
        slot: "a".parse().unwrap(),
        requested_at: Timestamp::now(),
    }
}

struct Harness {
    event: Arc<EventConfig>,
    store: MemoryStore,
    requests: MemoryLog<BookingRequest>,
    outcomes: MemoryLog<BookingOutcome>,
    decisions: MemoryDecisions,
    stop: watch::Sender<bool>,
}

impl Harness {
    fn new(capacity: u32) -> Self {
        let requests = MemoryLog::default();
        let outcomes = MemoryLog::default();
        Self {
            event: Arc::new(event(capacity)),
            store: MemoryStore::default(),
            decisions: MemoryDecisions::new(requests.clone(), outcomes.clone()),
            requests,
            outcomes,
            stop: watch::channel(false).0,
        }
    }

    fn spawn_decider(&self, holder: &str) -> (tokio::task::JoinHandle<()>, Arc<Metrics>) {
        self.spawn_decider_in(holder, None)
    }

    fn spawn_decider_in(
        &self,
        holder: &str,
        ownership: Option<OwnershipWatch>,
    ) -> (tokio::task::JoinHandle<()>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let decider = Decider {
            event: self.event.clone(),
            projection: Arc::new(self.store.clone()),
            sessions: Arc::new(self.store.clone()),
            metrics: metrics.clone(),
            holder: holder.to_owned(),
            ownership,
        };
        let mut stop = self.stop.subscribe();
        let task = tokio::spawn(decider.run(Box::new(self.decisions.session()), async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        (task, metrics)
    }

    async fn projection_at(&self, watermark: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let read = self.store.slot_counts(&self.event.id).await.unwrap();
            if read.watermark == Some(watermark) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "projection at {:?}, want {watermark}",
                read.watermark
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn log_tally(&self) -> Tally {
        twinkle_workloads::rebuild::replay(&self.event, &self.outcomes, &|_, _| {})
            .await
            .unwrap()
            .0
    }
}

/// Decider sessions ended so far, over all deciders.
fn sessions_ended(deciders: &[(tokio::task::JoinHandle<()>, Arc<Metrics>)]) -> u64 {
    deciders
        .iter()
        .flat_map(|(_, m)| {
            m.render()
                .lines()
                .filter(|l| l.starts_with("twinkle_booking_decider_sessions_ended_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

#[tokio::test]
async fn an_emptied_projection_gets_the_sold_seats_back_not_the_capacity() {
    let h = Harness::new(5);
    let (decider, _) = h.spawn_decider("one");
    let first: Vec<BookingRequest> = (0..3).map(|i| request(&h.event, i)).collect();
    h.requests.append_all(&first).await.unwrap();
    h.projection_at(3).await;

    h.store.forget_bookings(&h.event.id).unwrap();
    h.projection_at(3).await;
    let seats = h.store.slot_counts(&h.event.id).await.unwrap().value;
    assert_eq!(seats[0].remaining, 2, "{seats:?}");

    // Deciding goes on against the ledger: 2 more confirmed, then sold out;
    // a redelivered request keeps its decision and adds no record.
    let more: Vec<BookingRequest> = (3..8).map(|i| request(&h.event, i)).collect();
    h.requests.append_all(&more).await.unwrap();
    h.requests.append(&first[0]).await.unwrap();
    h.projection_at(8).await;
    let tally = h.log_tally().await;
    assert_eq!(tally.confirmed_per_slot.values().sum::<u32>(), 5);
    assert_eq!(tally.decided.len(), 8);
    assert_eq!(tally.repeats, 0, "one record per request");
    let sold_out = tally
        .decided
        .values()
        .filter(|d| d.decision == Decision::SoldOut)
        .count();
    assert_eq!(sold_out, 3);
    h.stop.send(true).unwrap();
    decider.await.unwrap();
}

#[tokio::test]
async fn of_two_deciders_the_log_takes_one_decision_per_request() {
    let h = Harness::new(50);
    let deciders = [h.spawn_decider("one"), h.spawn_decider("two")];
    for chunk in (0..200).collect::<Vec<_>>().chunks(20) {
        let batch: Vec<BookingRequest> = chunk.iter().map(|i| request(&h.event, *i)).collect();
        h.requests.append_all(&batch).await.unwrap();
        // Lose the store (and the lease with it) now and then, and let a
        // third party grab the lease for a moment: the holder's session
        // ends, and either decider may take over and fence the other.
        if chunk[0] > 0 && chunk[0] % 60 == 0 {
            // Once one of them decides again…
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !matches!(
                h.store.decider(&h.event.id).await.unwrap().as_deref(),
                Some("one" | "two")
            ) {
                assert!(tokio::time::Instant::now() < deadline, "nobody took over");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let before = sessions_ended(&deciders);
            h.store.forget_bookings(&h.event.id).unwrap();
            assert!(
                h.store
                    .lead_decider(&h.event.id, "intruder", Duration::from_millis(1500))
                    .await
                    .unwrap()
            );
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while sessions_ended(&deciders) == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the holder kept deciding without its lease"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    h.projection_at(200).await;
    let tally = h.log_tally().await;
    assert_eq!(tally.decided.len(), 200);
    assert_eq!(tally.repeats + tally.contradictions, 0, "{tally:?}");
    assert_eq!(tally.confirmed_per_slot.values().sum::<u32>(), 50);
    assert!(tally.violations(&h.event.slots, 1).is_empty());
    let seats = h.store.slot_counts(&h.event.id).await.unwrap().value;
    assert_eq!((seats[0].remaining, seats[0].confirmed), (0, 50));
    assert!(sessions_ended(&deciders) >= 3, "the lease changed hands");
    h.stop.send(true).unwrap();
    for (d, _) in deciders {
        d.await.unwrap();
    }
}

#[tokio::test]
async fn a_decider_stopped_gracefully_hands_its_lease_over_at_once() {
    let h = Harness::new(5);
    let (decider, _) = h.spawn_decider("one");
    h.requests.append(&request(&h.event, 0)).await.unwrap();
    h.projection_at(1).await;
    assert_eq!(
        h.store.decider(&h.event.id).await.unwrap().as_deref(),
        Some("one")
    );
    h.stop.send(true).unwrap();
    decider.await.unwrap();
    assert_eq!(
        h.store.decider(&h.event.id).await.unwrap(),
        None,
        "released, not left to expire"
    );
}

/// The ownership record as a test sets it: a value, or unreachable.
#[derive(Default)]
struct ScriptedOwnership(std::sync::Mutex<Option<Ownership>>);

impl ScriptedOwnership {
    fn set(&self, value: Option<Ownership>) {
        *self.0.lock().unwrap() = value;
    }
}

#[async_trait::async_trait]
impl OwnershipSource for ScriptedOwnership {
    async fn read(&self) -> twinkle_workloads::Result<Ownership> {
        (*self.0.lock().unwrap())
            .ok_or_else(|| twinkle_workloads::Error::Ownership("unreachable (test)".into()))
    }
}

/// How many requests the log has decided.
async fn decided(h: &Harness) -> usize {
    h.log_tally().await.decided.len()
}

/// The gate in the decider (the rules themselves are proved in
/// `twinkle-dr`): requests wait in the log while another region owns the
/// sale, are decided once ownership moves here and the previous owner's
/// lease has run out, and wait again once ownership can no longer be
/// confirmed.
#[tokio::test]
async fn a_decider_decides_only_while_its_region_owns_the_sale() {
    let h = Harness::new(100);
    let source = Arc::new(ScriptedOwnership::default());
    source.set(Some(Ownership {
        region: Region::Dr,
        epoch: 1,
    }));
    // A 3 s lease the decider re-confirms every 100 ms; it decides while
    // more than the 2 s budget of it is left.
    let timing = OwnershipTiming {
        lease: Millis(3_000),
        margin: Millis(100),
    };
    let watch = OwnershipWatch::spawn(&OwnershipSettings {
        region: Region::Primary,
        source: source.clone(),
        timing,
        poll: Duration::from_millis(100),
    })
    .unwrap();
    let (decider, metrics) = h.spawn_decider_in("seoul", Some(watch));
    let first: Vec<BookingRequest> = (0..10).map(|i| request(&h.event, i)).collect();
    h.requests.append_all(&first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(decided(&h).await, 0, "the DR region owns the sale");
    assert!(
        metrics.render().contains("twinkle_booking_decider_owner{"),
        "{}",
        metrics.render()
    );

    // Failback: ours at epoch 2. The previous owner may decide for one
    // lease after we first see it, so nothing is decided before that.
    let moved = tokio::time::Instant::now();
    source.set(Some(Ownership {
        region: Region::Primary,
        epoch: 2,
    }));
    let deadline = moved + Duration::from_secs(10);
    while decided(&h).await < 10 {
        assert!(tokio::time::Instant::now() < deadline, "never decided");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waited = moved.elapsed();
    assert!(
        waited >= Duration::from_millis(3_100),
        "decided {waited:?} after the move, before the old owner's lease ran out"
    );

    // Cut off from the record: the last confirmation runs out and the
    // requests that arrive afterwards wait.
    source.set(None);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let later: Vec<BookingRequest> = (10..20).map(|i| request(&h.event, i)).collect();
    h.requests.append_all(&later).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(decided(&h).await, 10, "decided while unconfirmed");

    // Reachable again, still ours: deciding resumes at once (same epoch).
    source.set(Some(Ownership {
        region: Region::Primary,
        epoch: 2,
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while decided(&h).await < 20 {
        assert!(tokio::time::Instant::now() < deadline, "did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop.send(true).unwrap();
    decider.await.unwrap();
}
