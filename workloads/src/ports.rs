//! Ports: what the queue needs from its log (Kafka, or the embedded log) and
//! its shared state (Redis, or the embedded store). Adapters implement these;
//! the HTTP layer, the assigner and the admission loop only see the traits.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use twinkle_domain::{
    Booking, Decision, EventId, OpeningMode, QueueCounters, QueueId, RequestId, Slot, SlotCount,
    SlotId, booking::Tally,
};

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

/// A record of one of an event's logs (Kafka topics): JSON, partitioned by
/// `key` so one customer's records stay in order.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    fn key(&self) -> &str;
}

impl Record for QueueEntry {
    fn key(&self) -> &str {
        self.queue_id.as_str()
    }
}

/// Reports replay progress: (records read, records in the log).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Appends records durably: `append` returns only once the log acknowledged
/// (for Kafka: all in-sync replicas, `acks=all`).
#[async_trait]
pub trait Log<R: Record>: Send + Sync {
    async fn append(&self, record: &R) -> Result<()>;
    /// Appends several (per-key order kept), returning once all are acked.
    async fn append_all(&self, records: &[R]) -> Result<()>;
    /// Every record from the start of the log, in per-key order (rebuilds
    /// and checks read the outcomes log this way).
    async fn replay(&self, progress: Progress<'_>) -> Result<Vec<R>>;
    /// Whether the log is reachable (for `/readyz`).
    async fn ready(&self) -> Result<()>;
}

/// Reads records in log order as a consumer-group member; `commit` marks
/// everything returned so far as done (called only after its effect is
/// durable), so a crash redelivers instead of losing.
#[async_trait]
pub trait Source<R: Record>: Send {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<R>>;
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

/// A booking request, as appended to the event's bookings topic (keyed by
/// customer, so one customer's requests are decided in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingRequest {
    pub event: EventId,
    pub request_id: RequestId,
    pub queue_id: QueueId,
    pub slot: SlotId,
    pub requested_at: Timestamp,
}

impl Record for BookingRequest {
    fn key(&self) -> &str {
        self.queue_id.as_str()
    }
}

/// A decision, as appended to the outcomes topic before the request's
/// offset is committed: the log the inventory can be rebuilt from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingOutcome {
    pub event: EventId,
    pub request_id: RequestId,
    pub queue_id: QueueId,
    pub slot: SlotId,
    pub decision: Decision,
    pub decided_at: Timestamp,
}

impl Record for BookingOutcome {
    fn key(&self) -> &str {
        self.queue_id.as_str()
    }
}

/// Registering an accepted request under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// First time this id is seen.
    New,
    /// The same request again (a client retry with its idempotency key).
    Repeat,
    /// The id is taken by a different request (same key, other slot).
    Conflict,
}

/// What deciding one request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub decision: Decision,
    /// The customer's confirmed bookings after this decision.
    pub customer_confirmed: u32,
    /// False when the request had been decided before (redelivery): the
    /// recorded decision is returned and nothing changed.
    pub fresh: bool,
}

/// A stored booking and whose it is (only its customer may read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBooking {
    pub customer: QueueId,
    pub booking: Booking,
}

/// The event's shared seat inventory and booking decisions.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Creates the slots that do not exist yet with their capacity. A slot
    /// that exists is left alone: re-initialising a running sale never
    /// resets sold seats.
    async fn init_inventory(&self, event: &EventId, slots: &[Slot]) -> Result<()>;

    /// Records an accepted request, so its status is known while pending.
    async fn register(&self, request: &BookingRequest) -> Result<Registration>;

    /// Decides requests in order, each atomically (no locks): at the
    /// customer's limit → `already_booked`; a seat left → take it,
    /// `confirmed`; else `sold_out` (see `twinkle_domain::booking::decide`).
    /// A request decided before gets its recorded decision back and changes
    /// nothing, however often it is redelivered.
    async fn decide(
        &self,
        event: &EventId,
        per_customer_limit: u32,
        requests: &[BookingRequest],
    ) -> Result<Vec<Decided>>;

    /// Bookings by id in one round trip (`None`: unknown id).
    async fn bookings(
        &self,
        event: &EventId,
        ids: &[RequestId],
    ) -> Result<Vec<Option<StoredBooking>>>;

    /// Every slot's counters in one round trip.
    async fn slot_counts(&self, event: &EventId) -> Result<Vec<SlotCount>>;

    /// Replaces counters, customer totals and decisions with the ones
    /// replayed from the outcomes log (the rebuild; consumers stopped).
    async fn restore(&self, event: &EventId, slots: &[Slot], tally: &Tally) -> Result<()>;
}
