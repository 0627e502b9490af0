//! Embedded backends: an in-process log and store with the same semantics as
//! Kafka + Redis, so the local stack needs nothing else running.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use jiff::Timestamp;
use rand::{SeedableRng, seq::SliceRandom};
use twinkle_domain::{EventId, OpeningMode, QueueCounters, QueueId, queue::session_deadline};

use crate::{
    Error, Result,
    ports::{AdmitOutcome, Assignment, Log, Progress, QueueEntry, QueueStore, Record, Source},
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
    id_of: HashMap<u64, QueueId>,
    assigned: u64,
    serving: u64,
    drawn: bool,
    pending: Vec<(QueueId, bool)>,
    /// Live sessions: id → (admitted_at, deadline).
    sessions: HashMap<QueueId, (Timestamp, Timestamp)>,
    rate: f64,
    lease: Lease,
}

impl EventQueue {
    fn place(&mut self, id: &QueueId) -> u64 {
        self.assigned += 1;
        self.seq_of.insert(id.clone(), self.assigned);
        self.id_of.insert(self.assigned, id.clone());
        self.assigned
    }
    fn counters(&self) -> QueueCounters {
        QueueCounters {
            assigned: self.assigned,
            serving: self.serving,
            active: self.sessions.len() as u64,
            admitted_per_second: self.rate,
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
}

#[async_trait]
impl QueueStore for MemoryStore {
    async fn assign(&self, entries: &[QueueEntry], mode: OpeningMode) -> Result<Vec<Assignment>> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let a = self.with(&entry.event, |q| {
                if let Some(seq) = q.seq_of.get(&entry.queue_id) {
                    Assignment::Sequence(*seq)
                } else if mode == OpeningMode::ShuffleAtOpen && !q.drawn {
                    if !q.pending.iter().any(|(id, _)| id == &entry.queue_id) {
                        q.pending.push((entry.queue_id.clone(), entry.pre_queue));
                    }
                    Assignment::AwaitingDraw
                } else {
                    Assignment::Sequence(q.place(&entry.queue_id))
                }
            })?;
            out.push(a);
        }
        Ok(out)
    }

    async fn draw(&self, event: &EventId, seed: u64) -> Result<Option<u64>> {
        self.with(event, |q| {
            if q.drawn {
                return None;
            }
            let pending = std::mem::take(&mut q.pending);
            let (mut early, late): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(_, pre)| *pre);
            early.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let placed = (early.len() + late.len()) as u64;
            for (id, _) in early.into_iter().chain(late) {
                q.place(&id);
            }
            q.drawn = true;
            Some(placed)
        })
    }

    async fn drawn(&self, event: &EventId) -> Result<bool> {
        self.with(event, |q| q.drawn)
    }

    async fn counters(&self, event: &EventId) -> Result<QueueCounters> {
        self.with(event, |q| q.counters())
    }

    async fn sequences(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<u64>>> {
        self.with(event, |q| {
            ids.iter().map(|id| q.seq_of.get(id).copied()).collect()
        })
    }

    async fn sessions(&self, event: &EventId, ids: &[QueueId]) -> Result<Vec<Option<Timestamp>>> {
        self.with(event, |q| {
            ids.iter()
                .map(|id| q.sessions.get(id).map(|(_, deadline)| *deadline))
                .collect()
        })
    }

    async fn admit(
        &self,
        event: &EventId,
        now: Timestamp,
        budget: u64,
        max_active: u64,
        session_ttl: Duration,
        heartbeat_timeout: Duration,
    ) -> Result<AdmitOutcome> {
        self.with(event, |q| {
            let before = q.sessions.len();
            q.sessions.retain(|_, (_, deadline)| *deadline > now);
            let expired = (before - q.sessions.len()) as u64;
            let free = max_active.saturating_sub(q.sessions.len() as u64);
            let n = budget.min(free).min(q.assigned - q.serving);
            for seq in q.serving + 1..=q.serving + n {
                if let Some(id) = q.id_of.get(&seq).cloned() {
                    let d = session_deadline(now, now, session_ttl, heartbeat_timeout);
                    q.sessions.insert(id, (now, d));
                }
            }
            q.serving += n;
            AdmitOutcome {
                admitted: n,
                expired,
                counters: q.counters(),
            }
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

    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}
