//! Ports: what the queue needs from its log (Kafka, or the embedded log) and
//! its shared state (Redis, or the embedded store). Adapters implement these;
//! the HTTP layer, the queue keeper and the decider only see the traits.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use twinkle_domain::{
    Booking, Decision, EventId, QueueCounters, QueueId, QueueStep, RequestId, Slot, SlotCount,
    SlotId, booking::Tally, places::Admission,
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

/// One step of an event's queue, as appended to its queue journal by the
/// queue keeper (see [`twinkle_domain::places`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalRecord {
    pub event: EventId,
    /// The owner epoch the keeper wrote under (0 outside a DR pair, and in
    /// journals written before epochs were recorded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    #[serde(flatten)]
    pub step: QueueStep,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Record for JournalRecord {
    fn key(&self) -> &str {
        self.event.as_str()
    }
}

/// What one keeper step changes in the queue projection (the journal
/// steps it follows are already committed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDelta {
    /// Newly placed customers, numbered from `first`.
    pub first: u64,
    pub placed: Vec<QueueId>,
    /// The opening draw was done.
    pub drew: bool,
    /// Newly admitted customers (the serving counter moves past them).
    pub admitted: Vec<QueueId>,
    /// The serving counter after the step.
    pub serving: u64,
    /// When they were admitted, and their sessions' first deadline.
    pub admitted_at: Option<Timestamp>,
    pub first_deadline: Option<Timestamp>,
}

/// The whole queue as the journal has it, for a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot<'a> {
    /// Every placed customer; number = index + 1.
    pub order: &'a [QueueId],
    pub serving: u64,
    pub drawn: bool,
    /// The admitted within their session's lifetime.
    pub sessions: &'a [Admission],
}

/// The event's queue projection (Redis, or the embedded store): what the
/// APIs read. Places and admissions are written only by the queue keeper,
/// after they are in the queue journal; it may be lost, rolled back or
/// emptied at any moment: every write carries the watermark (journal steps
/// reflected) and the keeper restores it from the journal when it is
/// behind. Heartbeats and session ends are written by the APIs and the
/// decider directly (a restore revives every session within its
/// lifetime, with a heartbeat's grace).
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Applies `delta`, which moves the watermark from `from` to `to`,
    /// only if the projection reflects exactly `from` (an empty delta just
    /// checks that).
    async fn project(
        &self,
        event: &EventId,
        from: u64,
        to: u64,
        delta: &QueueDelta,
    ) -> Result<Projection>;

    /// Replaces the places and counters with `snapshot` at `watermark`
    /// atomically, unless the projection already reflects `watermark` or
    /// more; revives the snapshot's sessions (a live one keeps its later
    /// deadline). True if replaced.
    async fn restore(
        &self,
        event: &EventId,
        snapshot: &QueueSnapshot<'_>,
        watermark: u64,
    ) -> Result<bool>;

    /// Ends sessions past their deadline; returns the live ones left, with
    /// the projection's watermark (the keeper admits only against a whole
    /// projection).
    async fn expire(&self, event: &EventId, now: Timestamp) -> Result<Projected<u64>>;

    /// The shared counters, read once per tick per pod.
    async fn counters(&self, event: &EventId) -> Result<Projected<QueueCounters>>;

    /// Sequence numbers of several customers in one round trip.
    async fn sequences(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<u64>>>>;

    /// Session deadlines of several admitted customers in one round trip
    /// (`None`: no live session — never admitted, ended or expired).
    async fn sessions(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<Timestamp>>>>;

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

    /// Takes or renews the event's queue keeper lease: true while `holder`
    /// owns it. Only the holder keeps the queue (liveness); the journal's
    /// fencing keeps a stale holder's steps out.
    async fn lead(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool>;

    /// Gives the keeper lease up if `holder` still has it.
    async fn release(&self, event: &EventId, holder: &str) -> Result<()>;

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

/// A single writer's exclusive, fenced session on its event's logs (the
/// decider's: bookings in, outcomes out; the queue keeper's: queue entries
/// in, journal steps out): reads the input log, and appends to the output
/// log atomically with the consumed positions (Kafka: one transaction;
/// `transactional.id` per writer and event, so opening a session fences
/// every earlier one).
#[async_trait]
pub trait FencedLog<In, Out>: Send {
    /// Fences every earlier session of this writer (their open writes are
    /// aborted, their later commits refused), then replays the whole
    /// output log, to the end.
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<Out>>;

    /// Input records after the consumed position, in log order (per key).
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<In>>;

    /// Appends `records` and marks everything returned so far as consumed,
    /// all or nothing. [`crate::Error::Fenced`] once a newer session opened.
    async fn commit(&mut self, records: &[Out]) -> Result<()>;

    /// Where the input log ends now (what has been appended so far).
    /// Kafka: also ends the session with an error if the topic has grown
    /// partitions this session does not read.
    async fn end(&mut self) -> Result<LogEnd>;

    /// Whether every input record before `end` has been returned (no I/O).
    fn reached(&self, end: &LogEnd) -> bool;

    /// Ends the session and lets go of its clients (a standby holds none).
    fn close(&mut self);
}

/// The decider's fenced log.
pub trait DecisionLog: FencedLog<BookingRequest, BookingOutcome> {}
impl<T: FencedLog<BookingRequest, BookingOutcome> + ?Sized> DecisionLog for T {}

/// The queue keeper's fenced log.
pub trait QueueJournal: FencedLog<QueueEntry, JournalRecord> {}
impl<T: FencedLog<QueueEntry, JournalRecord> + ?Sized> QueueJournal for T {}
