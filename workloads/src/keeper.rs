//! The queue keeper: the one writer of an event's queue journal. It gives
//! each entry of the queue topic its place, runs the opening draw and
//! advances the serving counter (admission), and every one of those is a
//! journal step before anyone can see it.
//!
//! Why a journal, and not the queue topic alone: the queue topic has many
//! partitions and the order a reader interleaves them in is not the same on
//! a second read, so places replayed from it would not be the places
//! customers were shown. The journal (one partition, kept forever) records
//! the order given, the draw and the serving counter; Redis is a projection
//! of it that may be lost, rolled back or emptied.
//!
//! Per session (one at a time per event: the holder of the keeper lease,
//! fenced by the journal's transactional id, as the decider is):
//!
//! 1. **open** the journal: fence every earlier keeper, replay every step
//!    into [`Places`];
//! 2. **restore** the projection from them if it is behind;
//! 3. per batch of entries and per admission tick: **decide** the steps in
//!    memory, **commit** them with the consumed queue offsets (one
//!    transaction), then **project** them (applied only on top of exactly
//!    the watermark they follow; a projection found behind is restored
//!    whole, reviving every session within its lifetime).
//!
//! Admission counts the live sessions in the projection, and only admits
//! against a projection that is whole: a projection that lost sessions is
//! restored first, so the active-session cap holds across a loss (a step
//! admitted just before a loss is restored with it).

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use prometheus_client::metrics::counter::Counter;
use rand::{SeedableRng, seq::SliceRandom};
use tokio::time::Instant;
use twinkle_domain::{
    EventConfig, OpeningMode, Places, QueueStep,
    queue::{AdmissionBucket, session_deadline},
};

use crate::{
    Error, Result,
    lease::{LEASE_TTL, Take, Writer},
    metrics::Metrics,
    ownership::{OwnershipWatch, Turn, Turns},
    ports::{JournalRecord, Projection, QueueDelta, QueueJournal, QueueSnapshot, QueueStore},
};

/// Largest batch of entries placed and committed in one transaction.
pub const MAX_BATCH: usize = 2000;
/// How often admission runs.
pub const TICK: Duration = Duration::from_millis(100);
/// Grace after `opensAt` before the opening draw, so entries produced just
/// before opening have reached the journal.
pub const DRAW_GRACE: Duration = Duration::from_secs(1);
/// How often an idle keeper checks that the projection is still whole.
const PROJECTION_CHECK: Duration = Duration::from_millis(500);
/// How often it checks whether the queue topic grew partitions (the
/// operator grows them for a bigger forecast; a session reads the ones it
/// was opened with, so it ends and a new one reads them all).
const PARTITIONS_CHECK: Duration = Duration::from_secs(2);

/// What the keeper talks to.
#[derive(Clone)]
pub struct Keeper {
    pub event: Arc<EventConfig>,
    pub store: Arc<dyn QueueStore>,
    pub metrics: Arc<Metrics>,
    /// Identity in the keeper lease (pod name).
    pub holder: String,
    /// In a DR pair: whether this region keeps the queue now. `None`:
    /// always.
    pub ownership: Option<OwnershipWatch>,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper")
            .field("event", &self.event.id)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// The admission loop's state within a session.
#[derive(Debug, Default)]
struct Admitting {
    bucket: AdmissionBucket,
    last: Option<Instant>,
    /// Exponentially weighted admissions per second.
    rate: f64,
}

impl Admitting {
    /// If a tick is due at `now`: the time since the last one (which `now`
    /// becomes).
    fn tick_due(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = self.last.map_or(TICK, |last| now - last);
        if elapsed < TICK {
            return None;
        }
        self.last = Some(now);
        Some(elapsed)
    }
}

#[async_trait::async_trait]
impl Writer for Keeper {
    type Log = dyn QueueJournal + 'static;

    fn name(&self) -> String {
        format!("queue keeper of {}", self.event.id)
    }

    fn lease(&self) -> Take {
        let (store, event, holder) = (
            self.store.clone(),
            self.event.id.clone(),
            self.holder.clone(),
        );
        Arc::new(move || {
            let (store, event, holder) = (store.clone(), event.clone(), holder.clone());
            Box::pin(async move { store.lead(&event, &holder, LEASE_TTL).await })
        })
    }

    fn sessions_ended(&self) -> Counter {
        self.metrics
            .queue_keeper_sessions_ended
            .get_or_create(&Metrics::label(&self.event.id))
            .clone()
    }

    async fn session(&self, log: &mut Self::Log) -> Result<std::convert::Infallible> {
        self.keep_session(log).await
    }

    fn close(log: &mut Self::Log) {
        log.close();
    }
}

impl Keeper {
    /// Runs sessions until `stop` resolves: waits for the lease, keeps the
    /// queue until the session fails, backs off, and starts again from the
    /// journal.
    pub async fn run(self, mut log: Box<dyn QueueJournal>, stop: impl Future<Output = ()>) {
        crate::lease::run_sessions(&self, log.as_mut(), stop).await;
        log.close();
        // A graceful stop hands over at once, not after the lease's TTL.
        if let Err(err) = self.store.release(&self.event.id, &self.holder).await {
            tracing::warn!(event = %self.event.id, %err, "releasing the keeper lease failed");
        }
    }

    /// One session: open, replay, then keep the queue step after step.
    async fn keep_session(&self, log: &mut dyn QueueJournal) -> Result<std::convert::Infallible> {
        let event = &self.event;
        let started = Instant::now();
        let history = log.open(&|_, _| {}).await?;
        let (steps, orphaned) = current_steps(history.iter().filter(|r| r.event == event.id));
        let mut places = Places::replay(steps)
            .map_err(|e| Error::Backend(format!("the queue journal of {}: {e}", event.id)))?;
        if orphaned > 0 {
            // A deposed region's tail, copied in after this region took
            // over: its places were never given here. Their customers
            // re-enter with their tickets (see the queue API's enter).
            tracing::warn!(event = %event.id, orphaned,
                "journal steps of an earlier owner arrived after a later owner's: not replayed");
        }
        tracing::info!(event = %event.id, holder = %self.holder, steps = places.watermark(),
            placed = places.assigned(), serving = places.serving(),
            ms = started.elapsed().as_millis(), "queue keeper session open: places replayed from the journal");
        let mut turns = Turns::new(self.ownership.clone(), self.name());
        let owner_gauge = self
            .metrics
            .queue_keeper_owner
            .get_or_create(&Metrics::label(&event.id))
            .clone();
        let mut admitting = Admitting::default();
        let mut whole = self
            .project(&places, places.watermark(), &QueueDelta::default())
            .await?;
        let mut checked = Instant::now();
        let mut partitions_checked = Instant::now();
        loop {
            let epoch = match turns.next(&owner_gauge)? {
                Turn::Write { epoch } => epoch,
                Turn::Wait => {
                    // Entries wait in the queue topic until this region
                    // keeps the queue again.
                    tokio::time::sleep(TICK).await;
                    continue;
                }
            };
            if partitions_checked.elapsed() >= PARTITIONS_CHECK {
                log.end().await?;
                partitions_checked = Instant::now();
            }
            let wait = admitting
                .last
                .map_or(Duration::ZERO, |at| TICK.saturating_sub(at.elapsed()));
            let batch = log.next_batch(MAX_BATCH, wait).await?;
            let (from, assigned, serving) =
                (places.watermark(), places.assigned(), places.serving());
            let mut steps = places.enter(
                batch
                    .iter()
                    .filter(|e| e.event == event.id)
                    .map(|e| (&e.queue_id, e.pre_queue)),
                event.queue.opening_mode,
            );
            let now = Timestamp::now();
            let mut drew = false;
            let instant = Instant::now();
            if let Some(elapsed) = admitting.tick_due(instant) {
                let before = steps.len();
                steps.extend(self.draw(&mut places, now));
                drew = steps.len() > before;
                if whole
                    && let Some(step) = self
                        .admit(&mut places, &mut admitting, elapsed, from, now)
                        .await
                {
                    steps.push(step);
                }
            }
            if steps.is_empty() && batch.is_empty() {
                if checked.elapsed() >= PROJECTION_CHECK {
                    whole = self.project(&places, from, &QueueDelta::default()).await?;
                    checked = Instant::now();
                }
                continue;
            }
            let records: Vec<JournalRecord> = steps
                .into_iter()
                .map(|step| JournalRecord {
                    event: event.id.clone(),
                    epoch,
                    step,
                })
                .collect();
            log.commit(&records).await?;
            let q = &event.queue;
            let delta = QueueDelta {
                first: assigned + 1,
                placed: places.numbered(assigned, places.assigned()).to_vec(),
                drew,
                admitted: places.numbered(serving, places.serving()).to_vec(),
                serving: places.serving(),
                admitted_at: Some(now),
                first_deadline: Some(session_deadline(
                    now,
                    now,
                    q.session_ttl,
                    q.heartbeat_timeout,
                )),
            };
            whole = self.project(&places, from, &delta).await?;
            checked = Instant::now();
        }
    }

    /// The opening draw, once, [`DRAW_GRACE`] after opening (shuffle mode).
    fn draw(&self, places: &mut Places, now: Timestamp) -> Vec<QueueStep> {
        let event = &self.event;
        let draw_at = event
            .opens_at
            .checked_add(DRAW_GRACE)
            .unwrap_or(event.opens_at);
        if event.queue.opening_mode != OpeningMode::ShuffleAtOpen || places.drawn() || now < draw_at
        {
            return Vec::new();
        }
        let seed: u64 = rand::random();
        let steps = places.draw(|ids| ids.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed)));
        tracing::info!(event = %event.id, placed = places.assigned(), "opening draw done");
        steps
    }

    /// One admission tick: the step advancing the serving counter, if any.
    /// Sessions are counted in the projection, which must reflect exactly
    /// `from` (else it lost sessions, and is restored before admitting).
    async fn admit(
        &self,
        places: &mut Places,
        admitting: &mut Admitting,
        elapsed: Duration,
        from: u64,
        now: Timestamp,
    ) -> Option<QueueStep> {
        let event = &self.event;
        if now < event.opens_at {
            return None;
        }
        let active = match self.store.expire(&event.id, now).await {
            Ok(read) if read.watermark == Some(from) => read.value,
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(event = %event.id, %err, "counting live sessions failed; not admitting this tick");
                return None;
            }
        };
        let q = &event.queue;
        let budget = admitting.bucket.available(elapsed, q.admission_per_second);
        let serving = places.serving();
        let step = places.admit(now, budget, u64::from(q.max_active_sessions), active);
        let admitted = places.serving() - serving;
        admitting.bucket.spend(admitted);
        // EWMA over ~2 s of ticks.
        #[allow(clippy::cast_precision_loss)]
        let instant_rate = admitted as f64 / elapsed.as_secs_f64().max(1e-3);
        admitting.rate = 0.95 * admitting.rate + 0.05 * instant_rate;
        if let Err(err) = self.store.publish_rate(&event.id, admitting.rate).await {
            tracing::warn!(event = %event.id, %err, "publishing the admission rate failed");
        }
        step
    }

    /// Projects `delta` (the steps after `from`) or, with none, just checks
    /// the watermark; restores the whole projection when it is behind.
    /// Returns whether the projection is whole. Redis being unreachable is
    /// not the keeper's failure: the next check repairs it.
    async fn project(&self, places: &Places, from: u64, delta: &QueueDelta) -> Result<bool> {
        let event = &self.event;
        let label = Metrics::label(&event.id);
        let head = places.watermark();
        self.metrics
            .queue_journal_steps
            .get_or_create(&label)
            .set(i64::try_from(head).unwrap_or(i64::MAX));
        let behind = match self.store.project(&event.id, from, head, delta).await {
            Ok(Projection::Applied(_)) => {
                self.metrics
                    .queue_projection_lag
                    .get_or_create(&label)
                    .set(0);
                return Ok(true);
            }
            Ok(Projection::Ahead(at)) => {
                tracing::warn!(event = %event.id, projected = at, ours = head,
                    "the queue projection is ahead of this keeper's journal");
                return Err(Error::Fenced);
            }
            Ok(Projection::Behind(at)) => at,
            Err(err) => {
                tracing::warn!(event = %event.id, %err, "projecting queue steps failed; repaired on the next check");
                return Ok(false);
            }
        };
        let lag = head.saturating_sub(behind.unwrap_or(0));
        self.metrics
            .queue_projection_lag
            .get_or_create(&label)
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        let started = Instant::now();
        let now = Timestamp::now();
        let q = &event.queue;
        let sessions = places.live_admissions(now, q.session_ttl, q.heartbeat_timeout);
        let snapshot = QueueSnapshot {
            order: places.order(),
            serving: places.serving(),
            drawn: places.drawn(),
            sessions: &sessions,
        };
        match self.store.restore(&event.id, &snapshot, head).await {
            Ok(restored) => {
                self.metrics
                    .queue_projection_lag
                    .get_or_create(&label)
                    .set(0);
                // A fresh sale's first projection is not a repair.
                if restored && head > 0 {
                    self.metrics
                        .queue_projection_repairs
                        .get_or_create(&label)
                        .inc();
                    tracing::warn!(event = %event.id, projected = ?behind, journal = head,
                        placed = places.assigned(), sessions = sessions.len(),
                        ms = started.elapsed().as_millis(), "queue projection was behind the journal: restored");
                }
                Ok(true)
            }
            Err(err) => {
                tracing::warn!(event = %event.id, %err, "restoring the queue projection failed; retrying on the next check");
                Ok(false)
            }
        }
    }
}

/// The steps a replay applies, in journal order, and how many it leaves
/// out: a step written under an older owner epoch than one already seen.
/// Such a step is a deposed region's write that replication copied in
/// after the new owner had started writing (the new owner never saw it
/// and numbered on without it), so applying it would contradict the places
/// given since. Outside a DR pair every step is epoch 0 and all are kept.
fn current_steps<'a>(
    records: impl IntoIterator<Item = &'a JournalRecord>,
) -> (Vec<&'a QueueStep>, usize) {
    let mut newest = 0;
    let mut orphaned = 0;
    let mut kept = Vec::new();
    for record in records {
        if record.epoch < newest {
            orphaned += 1;
            continue;
        }
        newest = record.epoch;
        kept.push(&record.step);
    }
    (kept, orphaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(epoch: u64, first: u64, id: &str) -> JournalRecord {
        JournalRecord {
            event: "e".parse().expect("an event id"),
            epoch,
            step: QueueStep::Placed {
                first,
                ids: vec![id.parse().expect("a queue id")],
            },
        }
    }

    #[test]
    fn a_deposed_owners_late_steps_are_left_out_and_the_rest_replays() {
        // Seoul (epoch 0) placed a and b; b's step crossed late, after
        // Singapore (epoch 1) had placed c as number 2.
        let journal = [placed(0, 1, "a"), placed(1, 2, "c"), placed(0, 2, "b")];
        let (steps, orphaned) = current_steps(&journal);
        assert_eq!(orphaned, 1);
        let places = Places::replay(steps).expect("a consistent journal");
        assert_eq!(places.assigned(), 2);
        assert_eq!(places.sequence(&"c".parse().expect("id")), Some(2));
        assert_eq!(places.sequence(&"b".parse().expect("id")), None);
        // Kept whole, the same journal is one no keeper could write.
        assert!(Places::replay(journal.iter().map(|r| &r.step)).is_err());
    }

    #[test]
    fn one_owners_journal_replays_whole() {
        let journal = [placed(0, 1, "a"), placed(0, 2, "b"), placed(3, 3, "c")];
        let (steps, orphaned) = current_steps(&journal);
        assert_eq!((steps.len(), orphaned), (3, 0));
    }

    #[test]
    fn the_epoch_is_left_out_of_epoch_zero_records_and_read_back() {
        let zero = serde_json::to_value(placed(0, 1, "a")).expect("json");
        assert!(zero.get("epoch").is_none(), "{zero}");
        let four: JournalRecord =
            serde_json::from_value(serde_json::to_value(placed(4, 1, "a")).expect("json"))
                .expect("read back");
        assert_eq!(four.epoch, 4);
        let old: JournalRecord = serde_json::from_value(zero).expect("an old record");
        assert_eq!(old.epoch, 0);
    }
}
