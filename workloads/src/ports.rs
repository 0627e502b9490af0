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

/// A decision, as appended to the outcomes topic in the same transaction as
/// the request's consumed offset: the truth the decider's ledger is replayed
/// from, one record per decided request.
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

/// A stored booking and whose it is (only its customer may read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBooking {
    pub customer: QueueId,
    pub booking: Booking,
}

/// A read from a projection, with the watermark it reflected: how many of
/// the event's decisions it holds (`None`: it holds none of the history,
/// e.g. an emptied Redis before the decider repaired it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected<T> {
    pub watermark: Option<u64>,
    pub value: T,
}

/// Bookings read by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Per id: the booking (decided, or pending if only registered), or
    /// `None` if unknown.
    pub found: Vec<Option<StoredBooking>>,
    /// False after a restore until the decider has read every request
    /// accepted before it: an unknown id may then be a registration lost
    /// with the store, not a request that never was.
    pub registrations_complete: bool,
}

/// One decision as projected: the outcome and the counters it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedDecision {
    pub request_id: RequestId,
    pub queue_id: QueueId,
    pub slot: SlotId,
    pub decision: Decision,
}

/// What a projection step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Applied; the projection now reflects this many decisions.
    Applied(u64),
    /// The projection is behind the step's start (lost, rolled back or
    /// emptied): nothing applied; the caller restores it whole.
    Behind(Option<u64>),
    /// The projection is already past the step's start: a newer decider
    /// wrote it, so this one is superseded. Nothing applied.
    Ahead(u64),
}

/// The event's booking projection (Redis, or the embedded store): what the
/// APIs read, written only by the decider after its decisions are in the
/// outcomes log. It may be lost, rolled back or emptied at any moment: every
/// write carries the watermark it reflects, so the decider notices and
/// restores it, and readers can tell a projection that is behind.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Records an accepted request, so its status is known while pending.
    async fn register(&self, request: &BookingRequest) -> Result<Registration>;

    /// Bookings by id in one round trip, with the watermark they were read
    /// at.
    async fn bookings(&self, event: &EventId, ids: &[RequestId]) -> Result<Projected<Lookup>>;

    /// Every slot's counters in one round trip, with their watermark.
    async fn slot_counts(&self, event: &EventId) -> Result<Projected<Vec<SlotCount>>>;

    /// Applies `decisions`, the ones after the first `from`, atomically and
    /// only if the projection reflects exactly `from` decisions (an empty
    /// step just checks that).
    async fn project(
        &self,
        event: &EventId,
        from: u64,
        decisions: &[ProjectedDecision],
    ) -> Result<Projection>;

    /// Replaces the projection with the whole ledger at `watermark`
    /// atomically, unless it already reflects `watermark` or more decisions
    /// (an older decider never overwrites a newer one's). True if replaced;
    /// the registrations of undecided requests are then taken as possibly
    /// lost until [`Self::registrations_complete`].
    async fn restore(
        &self,
        event: &EventId,
        slots: &[Slot],
        tally: &Tally,
        watermark: u64,
    ) -> Result<bool>;

    /// Takes or renews the event's decider lease: true while `holder` owns
    /// it. Only the holder decides (liveness: one decider at a time); the
    /// outcomes log's transactional fencing keeps a stale holder's
    /// decisions out even if the lease is lost with the store.
    async fn lead_decider(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool>;

    /// Gives the decider lease up if `holder` still has it (a graceful stop:
    /// a standby takes over at once instead of after the lease's TTL).
    async fn release_decider(&self, event: &EventId, holder: &str) -> Result<()>;

    /// Who holds the decider lease, if anyone.
    async fn decider(&self, event: &EventId) -> Result<Option<String>>;

    /// Every request accepted before the last restore has been decided (so
    /// its decision, not its lost registration, answers for it): lookups of
    /// unknown ids are trusted again.
    async fn registrations_complete(&self, event: &EventId) -> Result<()>;
}

/// A position in a log: the next offset per partition (index = partition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEnd(pub Vec<i64>);

/// The decider's exclusive, fenced session on its event's logs: reads the
/// bookings log, and appends decisions to the outcomes log atomically with
/// the consumed positions (Kafka: one transaction; `transactional.id` per
/// event, so opening a session fences every earlier one).
#[async_trait]
pub trait DecisionLog: Send {
    /// Fences every earlier session of this event (their open writes are
    /// aborted, their later commits refused), then replays every decision
    /// in the outcomes log, to the end.
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<BookingOutcome>>;

    /// Requests after the consumed position, in log order (per customer).
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<BookingRequest>>;

    /// Appends `outcomes` and marks everything returned so far as consumed,
    /// all or nothing. [`crate::Error::Fenced`] once a newer session opened.
    async fn commit(&mut self, outcomes: &[BookingOutcome]) -> Result<()>;

    /// Where the bookings log ends now (what has been appended so far).
    /// Kafka: also ends the session with an error if the topic has grown
    /// partitions this session does not read.
    async fn end(&mut self) -> Result<LogEnd>;

    /// Whether every request before `end` has been returned (no I/O).
    fn reached(&self, end: &LogEnd) -> bool;

    /// Ends the session and lets go of its clients (a standby holds none).
    fn close(&mut self);
}
