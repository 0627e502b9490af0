//! Multi-pod behaviour of the queue: one queue keeper (admission) per event
//! across pods (and it survives the holder stopping), and status fan-out
//! that costs O(1) store round trips per pod per tick, whatever the number
//! of clients.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use jiff::Timestamp;
use support::{Kind, enter, ever_admitted, open_web};
use tokio::sync::watch;
use twinkle_domain::{EventId, QueueCounters, QueueId, tokens::TokenKeys};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    Result,
    backend::{
        memory::{MemoryLog, MemoryStore},
        memory_fenced::MemoryFenced,
    },
    keeper::Keeper,
    metrics::Metrics,
    ports::{
        BookingRequest, JournalRecord, Projected, Projection, QueueDelta, QueueEntry,
        QueueSnapshot, QueueStore,
    },
    runtime::{self, Backends, RunOptions},
    web::{self, AppState, EventRuntime, Hub, SlotHub, app},
};

/// Two pods run the queue keeper; only the lease holder admits (the rate
/// does not double), and when it stops the other takes over.
#[tokio::test(flavor = "multi_thread")]
async fn admission_is_single_and_survives_the_leader_dying() {
    let stack = Stack::require();
    let event = support::event(5, 1000);
    let id = event.id.to_string();
    let pod_a = support::start(Kind::Real, event.clone(), open_web()).await;
    // Let pod A take the lease first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pod_b = runtime::start(RunOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        events: vec![event],
        backends: Backends::Real {
            kafka: stack.kafka_bootstrap.clone(),
            redis: stack.redis_url.clone(),
        },
        token_secret: support::SECRET.to_vec(),
        web: open_web(),
        keeper: true,
        decider: false,
        holder: unique("pod-b"),
        group: support::group(&id),
        topic_prefix: None,
        ownership: None,
        replicate_from: None,
    })
    .await
    .unwrap();
    let base_a = format!("http://{}", pod_a.addr);
    let base_b = format!("http://{}", pod_b.addr);
    let mut tickets = Vec::new();
    for _ in 0..40 {
        tickets.push(enter(&base_a, &id).await.1);
    }
    // Both pods tick; the admitted count grows at one loop's rate (5/s).
    let last = tickets.last().expect("40 tickets").clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = support::place_of(&base_b, &id, &last).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = support::place_of(&base_b, &id, &last).await;
    let rate = support::admission_rate(before, after);
    assert!(
        (3.0..=7.5).contains(&rate),
        "one admission loop at 5/s, not two: measured {rate}/s"
    );

    // The holder stops (and lets the lease go); the other pod continues
    // from the journal.
    pod_a.shutdown().await.unwrap();
    let at_death = ever_admitted(&base_b, &id, &tickets).await;
    assert!(at_death < tickets.len(), "admission not finished yet");
    let resumed = support::eventually(Duration::from_secs(10), || async {
        ever_admitted(&base_b, &id, &tickets).await >= at_death + 5
    })
    .await;
    assert!(resumed, "pod B took over the admission loop");
    pod_b.shutdown().await.unwrap();
}

/// Counts the store calls the status fan-out makes.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    counters: AtomicU64,
    sequences: AtomicU64,
    sessions: AtomicU64,
}

#[async_trait]
impl QueueStore for CountingStore {
    async fn project(&self, e: &EventId, from: u64, to: u64, d: &QueueDelta) -> Result<Projection> {
        self.inner.project(e, from, to, d).await
    }
    async fn restore(&self, e: &EventId, s: &QueueSnapshot<'_>, wm: u64) -> Result<bool> {
        self.inner.restore(e, s, wm).await
    }
    async fn expire(&self, e: &EventId, now: Timestamp) -> Result<Projected<u64>> {
        self.inner.expire(e, now).await
    }
    async fn counters(&self, e: &EventId) -> Result<Projected<QueueCounters>> {
        self.counters.fetch_add(1, Ordering::Relaxed);
        self.inner.counters(e).await
    }
    async fn sequences(&self, e: &EventId, ids: &[QueueId]) -> Result<Projected<Vec<Option<u64>>>> {
        self.sequences.fetch_add(1, Ordering::Relaxed);
        self.inner.sequences(e, ids).await
    }
    async fn sessions(
        &self,
        e: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<Timestamp>>>> {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.inner.sessions(e, ids).await
    }
    async fn publish_rate(&self, e: &EventId, r: f64) -> Result<()> {
        self.inner.publish_rate(e, r).await
    }
    async fn heartbeat(
        &self,
        e: &EventId,
        id: &QueueId,
        now: Timestamp,
        ttl: Duration,
        hb: Duration,
    ) -> Result<bool> {
        self.inner.heartbeat(e, id, now, ttl, hb).await
    }
    async fn end_session(&self, e: &EventId, id: &QueueId) -> Result<bool> {
        self.inner.end_session(e, id).await
    }
    async fn lead(&self, e: &EventId, holder: &str, ttl: Duration) -> Result<bool> {
        self.inner.lead(e, holder, ttl).await
    }
    async fn release(&self, e: &EventId, holder: &str) -> Result<()> {
        self.inner.release(e, holder).await
    }
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// 60 WebSocket clients waiting on one pod: the pod's store round trips per
/// second stay at the hub's tick rate, not per client.
#[tokio::test(flavor = "multi_thread")]
async fn status_fan_out_is_constant_per_pod_per_tick() {
    use futures::StreamExt;
    let mut event = support::event(1, 1);
    // In the pre-queue window: everyone gets a number, nobody is admitted
    // (the keeper runs here, and would admit one).
    event.opens_at = Timestamp::now()
        .checked_add(Duration::from_secs(300))
        .unwrap();
    event.closes_at = event
        .opens_at
        .checked_add(Duration::from_secs(3600))
        .unwrap();
    let id = event.id.to_string();
    let store = Arc::new(CountingStore::default());
    let log = MemoryLog::<QueueEntry>::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let dyn_store: Arc<dyn QueueStore> = store.clone();
    let config = Arc::new(event);
    let journal = MemoryFenced::new(log.clone(), MemoryLog::<JournalRecord>::default()).session();
    let keeper = Keeper {
        event: config.clone(),
        store: dyn_store.clone(),
        metrics: Arc::new(Metrics::default()),
        holder: "keeper".to_owned(),
        ownership: None,
    };
    tokio::spawn(keeper.run(Box::new(journal), stopped()));
    let hub = Hub::spawn(config.id.clone(), dyn_store.clone(), stopped());
    let seats = Arc::new(MemoryStore::default());
    let metrics = Arc::new(Metrics::default());
    let slots = SlotHub::spawn(config.clone(), seats.clone(), metrics.clone(), stopped());
    let state = AppState::new(
        vec![EventRuntime { config, hub, slots }],
        TokenKeys::from_secret(support::SECRET).unwrap(),
        web::Backends {
            queue_log: Arc::new(log),
            queue_store: dyn_store,
            booking_log: Arc::new(MemoryLog::<BookingRequest>::default()),
            bookings: seats,
        },
        metrics,
        open_web(),
        stop_rx,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let base = format!("http://{addr}");

    let mut sockets = Vec::new();
    for _ in 0..60 {
        let (_, ticket) = enter(&base, &id).await;
        let url = format!("ws://{addr}/ws/events/{id}/queue?ticket={ticket}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        sockets.push(ws);
    }
    // Everyone has received a status with a number.
    for ws in &mut sockets {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let s: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if s["position"].as_u64().is_some() {
                break;
            }
        }
    }
    let (c0, q0, s0) = (
        store.counters.load(Ordering::Relaxed),
        store.sequences.load(Ordering::Relaxed),
        store.sessions.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counters = store.counters.load(Ordering::Relaxed) - c0;
    let sequences = store.sequences.load(Ordering::Relaxed) - q0;
    let sessions = store.sessions.load(Ordering::Relaxed) - s0;
    // The hub ticks every 250 ms: ~8 counter reads in 2 s for 60 clients.
    assert!(
        (4..=12).contains(&counters),
        "counters read {counters} times in 2 s"
    );
    assert!(sequences <= 2, "no per-client number lookups: {sequences}");
    assert_eq!(sessions, 0, "nobody admitted, no session lookups");
    let _ = stop_tx.send(true);
}
