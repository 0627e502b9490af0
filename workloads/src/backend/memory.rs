//! Embedded backends: an in-process log and store with the same semantics as
//! Kafka + Redis, so the local stack needs nothing else running.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use jiff::Timestamp;
use twinkle_domain::{EventId, QueueCounters, QueueId, queue::session_deadline};

use crate::{
    Error, Result,
    ports::{
        Log, Progress, Projected, Projection, QueueDelta, QueueSnapshot, QueueStore, Record, Source,
    },
};

/// An embedded lease: (holder, until).
pub(super) type Lease = Option<(String, tokio::time::Instant)>;

/// Takes or renews `lease` for `holder` (free, expired, or already theirs);
/// the same rule as `lease.lua`, for the admission and decider leases.
pub(super) fn take_lease(lease: &mut Lease, holder: &str, ttl: Duration) -> bool {
    let now = tokio::time::Instant::now();
    match lease {
        Some((owner, until)) if owner != holder && *until > now => false,
        _ => {
            *lease = Some((holder.to_owned(), now + ttl));
            true
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::Backend("embedded state poisoned".into()))
}

/// An append-only in-process log with one committed read position (one
/// consumer group), like a single-partition topic.
#[derive(Debug)]
pub struct MemoryLog<R> {
    inner: Arc<LogInner<R>>,
}

impl<R> Clone for MemoryLog<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R> Default for MemoryLog<R> {
    fn default() -> Self {
        Self {
            inner: Arc::new(LogInner {
                records: Mutex::new(Vec::new()),
                committed: Mutex::new(0),
                appended: tokio::sync::Notify::new(),
            }),
        }
    }
}

#[derive(Debug)]
struct LogInner<R> {
    records: Mutex<Vec<R>>,
    committed: Mutex<usize>,
    appended: tokio::sync::Notify,
}

impl<R> MemoryLog<R> {
    pub fn source(&self) -> MemorySource<R> {
        MemorySource {
            log: self.clone(),
            read: None,
        }
    }
    pub fn len(&self) -> usize {
        self.inner.records.lock().map(|e| e.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends without waiting (the decision log appends under its own lock).
    pub(super) fn extend(&self, records: &[R]) -> Result<()>
    where
        R: Clone,
    {
        lock(&self.inner.records)?.extend_from_slice(records);
        self.inner.appended.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl<R: Record> Log<R> for MemoryLog<R> {
    async fn append(&self, record: &R) -> Result<()> {
        lock(&self.inner.records)?.push(record.clone());
        self.inner.appended.notify_waiters();
        Ok(())
    }
    async fn append_all(&self, records: &[R]) -> Result<()> {
        self.extend(records)
    }
    async fn replay(&self, progress: Progress<'_>) -> Result<Vec<R>> {
        let all = lock(&self.inner.records)?.clone();
        let n = all.len() as u64;
        progress(n, n);
        Ok(all)
    }
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}

/// Reads a [`MemoryLog`] from its committed position, like a consumer group
/// member: uncommitted records are redelivered to the next source.
#[derive(Debug)]
pub struct MemorySource<R> {
    log: MemoryLog<R>,
    /// Position after the last returned record (uncommitted).
    read: Option<usize>,
}

#[async_trait]
impl<R: Record> Source<R> for MemorySource<R> {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<R>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.log.inner.appended.notified();
            {
                let records = lock(&self.log.inner.records)?;
                let from = match self.read {
                    Some(pos) => pos,
                    None => *lock(&self.log.inner.committed)?,
                };
                if from < records.len() {
                    let to = records.len().min(from + max);
                    self.read = Some(to);
                    return Ok(records[from..to].to_vec());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
    async fn commit(&mut self) -> Result<()> {
        self.commit_now()
    }
}

impl<R> MemorySource<R> {
    /// Position after the last record returned (or the committed one).
    pub(super) fn position(&self) -> usize {
        self.read
            .or_else(|| self.log.inner.committed.lock().ok().map(|c| *c))
            .unwrap_or(0)
    }

    /// Commits what was returned so far (synchronously).
    pub(super) fn commit_now(&mut self) -> Result<()> {
        if let Some(pos) = self.read {
            *lock(&self.log.inner.committed)? = pos;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct EventQueue {
    seq_of: HashMap<QueueId, u64>,
    order: Vec<QueueId>,
    serving: u64,
    drawn: bool,
    /// Journal steps reflected (`None`: none of the history, as after the
    /// store was emptied).
    watermark: Option<u64>,
    /// Live sessions: id → (admitted_at, deadline).
    sessions: HashMap<QueueId, (Timestamp, Timestamp)>,
    rate: f64,
    lease: Lease,
}

impl EventQueue {
    fn counters(&self) -> QueueCounters {
        QueueCounters {
            assigned: self.order.len() as u64,
            serving: self.serving,
            active: self.sessions.len() as u64,
            admitted_per_second: self.rate,
        }
    }

    fn projected<T>(&self, value: T) -> Projected<T> {
        Projected {
            watermark: self.watermark,
            value,
        }
    }
}

/// The embedded queue store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    events: Arc<Mutex<BTreeMap<EventId, EventQueue>>>,
    /// Seat inventories (see `memory_booking`).
    pub(super) bookings: Arc<Mutex<BTreeMap<EventId, super::memory_booking::EventBookings>>>,
}

impl MemoryStore {
    fn with<T>(&self, event: &EventId, f: impl FnOnce(&mut EventQueue) -> T) -> Result<T> {
        let mut events = lock(&self.events)?;
        Ok(f(events.entry(event.clone()).or_default()))
    }

    /// Forgets the event's queue state, as an emptied Redis would (tests
    /// of the keeper's restore).
    pub fn forget_queue(&self, event: &EventId) -> Result<()> {
        lock(&self.events)?.remove(event);
        Ok(())
    }
}

#[async_trait]
impl QueueStore for MemoryStore {
    async fn project(
        &self,
        event: &EventId,
        from: u64,
        to: u64,
        delta: &QueueDelta,
    ) -> Result<Projection> {
        self.with(event, |q| match q.watermark {
            Some(w) if w == from => {
                for id in &delta.placed {
                    q.order.push(id.clone());
                    q.seq_of.insert(id.clone(), q.order.len() as u64);
                }
                q.drawn |= delta.drew;
                if let (Some(at), Some(deadline)) = (delta.admitted_at, delta.first_deadline) {
                    for id in &delta.admitted {
                        q.sessions.insert(id.clone(), (at, deadline));
                    }
                }
                q.serving = q.serving.max(delta.serving);
                q.watermark = Some(to);
                Projection::Applied(to)
            }
            Some(w) if w > from => Projection::Ahead(w),
            other => Projection::Behind(other),
        })
    }

    async fn restore(
        &self,
        event: &EventId,
        snapshot: &QueueSnapshot<'_>,
        watermark: u64,
    ) -> Result<bool> {
        self.with(event, |q| {
            if q.watermark.is_some_and(|w| w >= watermark) {
                return false;
            }
            q.order = snapshot.order.to_vec();
            q.seq_of = q
                .order
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u64 + 1))
                .collect();
            q.serving = snapshot.serving;
            q.drawn = snapshot.drawn;
            for a in snapshot.sessions {
                let session = q
                    .sessions
                    .entry(a.id.clone())
                    .or_insert((a.admitted_at, a.deadline));
                session.1 = session.1.max(a.deadline);
            }
            q.watermark = Some(watermark);
            true
        })
    }

    async fn expire(&self, event: &EventId, now: Timestamp) -> Result<Projected<u64>> {
        self.with(event, |q| {
            q.sessions.retain(|_, (_, deadline)| *deadline > now);
            q.projected(q.sessions.len() as u64)
        })
    }

    async fn counters(&self, event: &EventId) -> Result<Projected<QueueCounters>> {
        self.with(event, |q| q.projected(q.counters()))
    }

    async fn sequences(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<u64>>>> {
        self.with(event, |q| {
            q.projected(ids.iter().map(|id| q.seq_of.get(id).copied()).collect())
        })
    }

    async fn sessions(
        &self,
        event: &EventId,
        ids: &[QueueId],
    ) -> Result<Projected<Vec<Option<Timestamp>>>> {
        self.with(event, |q| {
            q.projected(
                ids.iter()
                    .map(|id| q.sessions.get(id).map(|(_, deadline)| *deadline))
                    .collect(),
            )
        })
    }

    async fn publish_rate(&self, event: &EventId, per_second: f64) -> Result<()> {
        self.with(event, |q| q.rate = per_second)
    }

    async fn heartbeat(
        &self,
        event: &EventId,
        id: &QueueId,
        now: Timestamp,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<bool> {
        self.with(event, |q| match q.sessions.get_mut(id) {
            Some((admitted_at, d)) if *d > now => {
                *d = session_deadline(*admitted_at, now, session_ttl, heartbeat_timeout);
                true
            }
            _ => false,
        })
    }

    async fn end_session(&self, event: &EventId, id: &QueueId) -> Result<bool> {
        self.with(event, |q| q.sessions.remove(id).is_some())
    }

    async fn lead(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool> {
        self.with(event, |q| take_lease(&mut q.lease, holder, ttl))
    }

    async fn release(&self, event: &EventId, holder: &str) -> Result<()> {
        self.with(event, |q| {
            if q.lease.as_ref().is_some_and(|(owner, _)| owner == holder) {
                q.lease = None;
            }
        })
    }

    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}
