//! Ports: what the queue needs from its log (Kafka, or the embedded log) and
//! its shared state (Redis, or the embedded store). Adapters implement these;
//! the HTTP layer, the assigner and the admission loop only see the traits.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use twinkle_domain::{EventId, OpeningMode, QueueCounters, QueueId};

use crate::Result;

/// One "book" button press, as appended to the event's queue topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    pub event: EventId,
    pub queue_id: QueueId,
    pub entered_at: Timestamp,
    /// Entered in the pre-queue window (before `opensAt`).
    pub pre_queue: bool,
}

/// Appends entries durably (the API answers only after the append is acked).
#[async_trait]
pub trait QueueLog: Send + Sync {
    async fn append(&self, entry: &QueueEntry) -> Result<()>;
    /// Whether the log is reachable (for `/readyz`).
    async fn ready(&self) -> Result<()>;
}

/// Reads entries in log order for the assigner; `commit` marks everything
/// returned so far as done (called only after the store applied it).
#[async_trait]
pub trait QueueSource: Send {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<QueueEntry>>;
    async fn commit(&mut self) -> Result<()>;
}

/// Result of assigning one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Has this sequence number (the same one on every redelivery).
    Sequence(u64),
    /// Held for the opening draw (shuffle mode, before the draw).
    AwaitingDraw,
}

/// What one admission step did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AdmitOutcome {
    pub admitted: u64,
    pub expired: u64,
    pub counters: QueueCounters,
}

/// The event's shared queue state.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Assigns sequence numbers in the given (log) order, idempotently: an
    /// entry seen before keeps its number, so redelivery never creates a
    /// duplicate or a gap. In `ShuffleAtOpen` mode, entries are held for the
    /// draw until it has happened.
    async fn assign(&self, entries: &[QueueEntry], mode: OpeningMode) -> Result<Vec<Assignment>>;

    /// Runs the opening draw once: pre-queue entries in a random order, then
    /// the rest in arrival order. Returns how many were placed, or `None` if
    /// the draw had already happened.
    async fn draw(&self, event: &EventId, seed: u64) -> Result<Option<u64>>;

    /// Whether the opening draw is done (always true in FIFO mode once any
    /// entry was assigned; used by the admission loop).
    async fn drawn(&self, event: &EventId) -> Result<bool>;

    /// The shared counters, read once per tick per pod.
    async fn counters(&self, event: &EventId) -> Result<QueueCounters>;

    /// Sequence numbers of several customers in one round trip.
    async fn sequences(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<u64>>>;

    /// Session deadlines of several admitted customers in one round trip
    /// (`None`: no live session — never admitted, ended or expired).
    async fn sessions(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<Timestamp>>>;

    /// Expires dead sessions, then advances the serving counter by at most
    /// `budget`, never past `max_active` live sessions nor past the last
    /// assigned number. New sessions last `session_ttl`, renewed by heartbeats
    /// every `heartbeat_timeout`.
    async fn admit(
        &self,
        event: &EventId,
        now: Timestamp,
        budget: u64,
        max_active: u64,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<AdmitOutcome>;

    /// Publishes the measured admission rate for everyone's ETA.
    async fn publish_rate(&self, event: &EventId, per_second: f64) -> Result<()>;

    /// Extends a live session; false if it has ended or expired.
    async fn heartbeat(
        &self,
        event: &EventId,
        id: &QueueId,
        now: Timestamp,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<bool>;

    /// Ends a session (booked, or left), freeing its capacity at once.
    async fn end_session(&self, event: &EventId, id: &QueueId) -> Result<bool>;

    /// Takes or renews the event's admission lease: true while `holder` owns
    /// it. Exactly one admission loop per event advances the counter.
    async fn lead(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool>;

    /// Whether the store is reachable (for `/readyz`).
    async fn ready(&self) -> Result<()>;
}
