//! The booking decider: the one writer of an event's outcomes log.
//!
//! The log is the truth and Redis a projection of it, so the decider never
//! decides against Redis. Per session (one at a time per event: the holder
//! of the decider lease, fenced by the log itself):
//!
//! 1. **open** the decision log (under the decider lease, kept by
//!    [`lease`]): fence every earlier decider, replay every decision into a
//!    [`Ledger`] (the inventory as the log says it is);
//! 2. **restore** the projection from the ledger if it is behind;
//! 3. per batch of requests: **decide** against the ledger, **commit** the
//!    new decisions together with the consumed offsets (one transaction),
//!    then **project** them (applied only on top of exactly the watermark
//!    they follow; a projection found behind is restored whole).
//!
//! Any failure to commit ends the session and its ledger: the next session
//! starts again from the log, so memory never holds a decision the log does
//! not. A projection that fails is only late — the watermark check repairs
//! it on the next batch or tick.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use tokio::time::Instant;
use twinkle_domain::{Decision, EventConfig, Ledger};
use twinkle_dr::Region;

use prometheus_client::metrics::counter::Counter;

pub use crate::lease::{LEASE_RENEW, LEASE_TTL};
use crate::lease::{Take, Writer};

use crate::{
    Error, Result,
    metrics::{DecisionLabels, Metrics},
    ownership::{OwnershipWatch, Turn, Turns},
    ports::{
        BookingOutcome, BookingRequest, BookingStore, DecisionLog, LogEnd, ProjectedDecision,
        Projection, QueueStore,
    },
};

/// Largest batch decided and committed in one transaction.
pub const MAX_BATCH: usize = 500;
/// How long one read waits for requests.
const READ_WAIT: Duration = Duration::from_millis(200);
/// How often the decider checks that the projection is still whole.
const PROJECTION_CHECK: Duration = Duration::from_millis(500);
/// How often it checks whether the bookings topic grew partitions.
const PROGRESS_CHECK: Duration = Duration::from_secs(2);
/// Longest an API's append may still land after its registration was
/// lost (the producers' `message.timeout.ms`): after a restore, the end of
/// the bookings log to catch up with is read only once this has passed.
const APPEND_GRACE: Duration = Duration::from_secs(10);

/// What projecting (or checking) found.
#[derive(Debug, Clone, Copy)]
enum ProjectionState {
    /// Reflects the whole ledger.
    Whole,
    /// Was behind and has been (or may have been) restored.
    Restored { fresh: bool, whole: bool },
    /// Could not be told (the store is unreachable).
    Unknown,
}

impl ProjectionState {
    fn is_whole(self) -> bool {
        matches!(self, Self::Whole | Self::Restored { whole: true, .. })
    }

    /// A restore puts registrations in doubt.
    fn doubt(self) -> Option<Doubt> {
        match self {
            Self::Restored { fresh, .. } => Some(Doubt::after_restore(!fresh)),
            Self::Whole | Self::Unknown => None,
        }
    }
}

/// Registrations in doubt after a restore: lookups of unknown ids are
/// answered "retry" until every request accepted before it has been read.
#[derive(Debug)]
struct Doubt {
    since: Instant,
    /// Wait [`APPEND_GRACE`] before reading the end to reach (appends of
    /// requests registered before the loss may still be in flight).
    grace: bool,
    end: Option<LogEnd>,
}

impl Doubt {
    fn after_restore(grace: bool) -> Self {
        Self {
            since: Instant::now(),
            grace,
            end: None,
        }
    }

    fn grace_over(&self) -> bool {
        !self.grace || self.since.elapsed() >= APPEND_GRACE
    }
}

/// What the decider talks to.
#[derive(Clone)]
pub struct Decider {
    pub event: Arc<EventConfig>,
    pub projection: Arc<dyn BookingStore>,
    pub sessions: Arc<dyn QueueStore>,
    pub metrics: Arc<Metrics>,
    /// Identity in the decider lease (pod name).
    pub holder: String,
    /// In a DR pair: whether this region sells now. `None`: always.
    pub ownership: Option<OwnershipWatch>,
}

impl std::fmt::Debug for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decider")
            .field("event", &self.event.id)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Writer for Decider {
    type Log = dyn DecisionLog + 'static;

    fn name(&self) -> String {
        format!("decider of {}", self.event.id)
    }

    fn lease(&self) -> Take {
        let (store, event, holder) = (
            self.projection.clone(),
            self.event.id.clone(),
            self.holder.clone(),
        );
        Arc::new(move || {
            let (store, event, holder) = (store.clone(), event.clone(), holder.clone());
            Box::pin(async move { store.lead_decider(&event, &holder, LEASE_TTL).await })
        })
    }

    fn sessions_ended(&self) -> Counter {
        self.metrics
            .decider_sessions_ended
            .get_or_create(&Metrics::label(&self.event.id))
            .clone()
    }

    async fn session(&self, log: &mut Self::Log) -> Result<std::convert::Infallible> {
        self.decide_session(log).await
    }

    fn close(log: &mut Self::Log) {
        log.close();
    }
}

impl Decider {
    /// Runs sessions until `stop` resolves: waits for the lease, decides
    /// until the session fails, backs off, and starts again from the log.
    pub async fn run(self, mut log: Box<dyn DecisionLog>, stop: impl Future<Output = ()>) {
        crate::lease::run_sessions(&self, log.as_mut(), stop).await;
        log.close();
        // A graceful stop (a rollout) hands over at once, not after the
        // lease's TTL; a stale release is harmless (compare-and-delete).
        if let Err(err) = self
            .projection
            .release_decider(&self.event.id, &self.holder)
            .await
        {
            tracing::warn!(event = %self.event.id, %err, "releasing the decider lease failed");
        }
    }

    /// One session: open, replay, then decide batch after batch.
    async fn decide_session(&self, log: &mut dyn DecisionLog) -> Result<std::convert::Infallible> {
        let event = &self.event;
        let started = Instant::now();
        let history = log.open(&|_, _| {}).await?;
        let reserve = self.reserve(&history);
        let mut ledger = crate::rebuild::ledger(event, history).hold_back(reserve);
        self.metrics
            .decider_reserve
            .get_or_create(&Metrics::label(&event.id))
            .set(i64::from(reserve));
        tracing::info!(event = %event.id, holder = %self.holder, decisions = ledger.watermark(), reserve,
            ms = started.elapsed().as_millis(), "decider session open: ledger replayed from the outcomes log");
        let mut checked: Option<Instant> = None;
        let mut grown_checked = Instant::now();
        // A new session cannot know when an earlier one restored: if the
        // flag is still up (or cannot be read), it doubts with full grace.
        let mut doubt = match self.projection.bookings(&event.id, &[]).await {
            Ok(read) if read.value.registrations_complete => None,
            _ => Some(Doubt::after_restore(true)),
        };
        let mut whole = false;
        let mut turns = Turns::new(self.ownership.clone(), self.name());
        let owner_gauge = self
            .metrics
            .decider_owner
            .get_or_create(&Metrics::label(&event.id))
            .clone();
        loop {
            if checked.is_none_or(|at| at.elapsed() >= PROJECTION_CHECK) {
                self.observe_ledger(&ledger);
                let state = self.project(&ledger, &[]).await?;
                whole = state.is_whole();
                if let Some(d) = state.doubt() {
                    doubt = Some(d);
                }
                checked = Some(Instant::now());
            }
            if grown_checked.elapsed() >= PROGRESS_CHECK {
                // Ends the session if the bookings topic grew partitions.
                log.end().await?;
                grown_checked = Instant::now();
            }
            if whole && let Some(d) = &mut doubt {
                if d.end.is_none() && d.grace_over() {
                    d.end = Some(log.end().await?);
                }
                if d.end.as_ref().is_some_and(|end| log.reached(end)) {
                    match self.projection.registrations_complete(&event.id).await {
                        Ok(()) => doubt = None,
                        Err(err) => {
                            tracing::warn!(event = %event.id, %err, "marking registrations complete failed");
                        }
                    }
                }
            }
            self.metrics
                .projection_trusted
                .get_or_create(&Metrics::label(&event.id))
                .set(i64::from(doubt.is_none()));
            if turns.next(&owner_gauge)? == Turn::Wait {
                // Requests wait in the log until this region sells again.
                tokio::time::sleep(READ_WAIT).await;
                continue;
            }
            let batch = log.next_batch(MAX_BATCH, READ_WAIT).await?;
            if batch.is_empty() {
                continue;
            }
            let decided = self.decide(&mut ledger, &batch);
            let outcomes: Vec<BookingOutcome> = decided
                .iter()
                .map(|(r, d)| BookingOutcome {
                    event: r.event.clone(),
                    request_id: r.request_id.clone(),
                    queue_id: r.queue_id.clone(),
                    slot: r.slot.clone(),
                    decision: d.decision,
                    decided_at: Timestamp::now(),
                })
                .collect();
            log.commit(&outcomes).await?;
            self.count(&outcomes);
            let fresh: Vec<ProjectedDecision> = outcomes
                .iter()
                .map(|o| ProjectedDecision {
                    request_id: o.request_id.clone(),
                    queue_id: o.queue_id.clone(),
                    slot: o.slot.clone(),
                    decision: o.decision,
                })
                .collect();
            let (state, ()) = tokio::join!(
                self.project(&ledger, &fresh),
                self.end_sessions(&batch, &ledger)
            );
            let state = state?;
            whole = state.is_whole();
            if let Some(d) = state.doubt() {
                doubt = Some(d);
            }
        }
    }

    /// Seats per slot this session leaves unsold: none in the primary
    /// region (or outside a DR pair); in the DR region the event's
    /// configured reserve, else one derived from the confirmations in the
    /// replayed log (the primary's last rate; after the DR region has
    /// sold itself, its own decisions count too, which only makes the
    /// reserve larger).
    fn reserve(&self, history: &[BookingOutcome]) -> u32 {
        let in_dr = self
            .ownership
            .as_ref()
            .is_some_and(|watch| watch.region() == Region::Dr);
        if !in_dr {
            return 0;
        }
        self.event.dr_reserve_per_slot.unwrap_or_else(|| {
            let confirmed: Vec<Timestamp> = history
                .iter()
                .filter(|o| o.event == self.event.id && o.decision == Decision::Confirmed)
                .map(|o| o.decided_at)
                .collect();
            twinkle_domain::ledger::derived_reserve(&confirmed)
        })
    }

    /// Decides a batch against the ledger; returns the fresh decisions (a
    /// request decided before is consumed again but not re-appended).
    fn decide<'b>(
        &self,
        ledger: &mut Ledger,
        batch: &'b [BookingRequest],
    ) -> Vec<(&'b BookingRequest, twinkle_domain::Verdict)> {
        let limit = self.event.per_customer_limit;
        batch
            .iter()
            .filter(|r| {
                // Only our API writes this topic, one event per topic.
                let mine = r.event == self.event.id;
                if !mine {
                    tracing::error!(event = %r.event, request = %r.request_id, "skipping a request for another event");
                }
                mine
            })
            .map(|r| (r, ledger.decide(&r.request_id, &r.queue_id, &r.slot, limit)))
            .filter(|(_, v)| v.fresh)
            .collect()
    }

    /// Projects `fresh` (the last decisions of `ledger`) or, with none, just
    /// checks the watermark; restores the whole projection when it is
    /// behind. Redis being unreachable is not the decider's failure: the
    /// next batch or tick finds the projection behind and repairs it.
    async fn project(
        &self,
        ledger: &Ledger,
        fresh: &[ProjectedDecision],
    ) -> Result<ProjectionState> {
        let event = &self.event;
        let label = Metrics::label(&event.id);
        let head = ledger.watermark();
        let from = head - fresh.len() as u64;
        let behind = match self.projection.project(&event.id, from, fresh).await {
            Ok(Projection::Applied(_)) => {
                self.metrics.projection_lag.get_or_create(&label).set(0);
                return Ok(ProjectionState::Whole);
            }
            Ok(Projection::Ahead(at)) => {
                // Only a decider that read more of the log than we did can
                // have written that: we are superseded.
                tracing::warn!(event = %event.id, projected = at, ours = head,
                    "the projection is ahead of this decider's ledger");
                return Err(Error::Fenced);
            }
            Ok(Projection::Behind(at)) => {
                self.metrics.projection_trusted.get_or_create(&label).set(0);
                at
            }
            Err(err) => {
                tracing::warn!(event = %event.id, %err, "projecting decisions failed; repaired on the next check");
                return Ok(ProjectionState::Unknown);
            }
        };
        let lag = head.saturating_sub(behind.unwrap_or(0));
        self.metrics
            .projection_lag
            .get_or_create(&label)
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        let started = Instant::now();
        // An empty store for a sale with no decision yet is a fresh sale's,
        // not a loss: registrations made meanwhile are all still there.
        let fresh = behind.is_none() && head == 0;
        match self
            .projection
            .restore(&event.id, &event.slots, ledger.tally(), head)
            .await
        {
            Ok(true) => {
                self.metrics.projection_lag.get_or_create(&label).set(0);
                self.metrics.projection_repairs.get_or_create(&label).inc();
                // A fresh sale's first projection is not a repair worth a
                // warning; a projection that lost decisions is.
                if !fresh {
                    tracing::warn!(event = %event.id, projected = ?behind, log = head,
                        ms = started.elapsed().as_millis(), "booking projection was behind the outcomes log: restored");
                }
                Ok(ProjectionState::Restored { fresh, whole: true })
            }
            // Someone restored it as far or further meanwhile.
            Ok(false) => Ok(ProjectionState::Restored { fresh, whole: true }),
            // It may have been promoted all the same (an answer lost):
            // doubt as after a restore.
            Err(err) => {
                tracing::warn!(event = %event.id, %err, "restoring the booking projection failed; retrying on the next check");
                Ok(ProjectionState::Restored {
                    fresh,
                    whole: false,
                })
            }
        }
    }

    /// Customers who can book no more leave, freeing their place for the
    /// next in the queue. Best effort: their next request is refused by the
    /// ledger anyway (`already_booked`).
    async fn end_sessions(&self, batch: &[BookingRequest], ledger: &Ledger) {
        let limit = self.event.per_customer_limit;
        let tally = ledger.tally();
        let done = batch.iter().filter(|r| {
            tally
                .confirmed_per_customer
                .get(&r.queue_id)
                .is_some_and(|n| *n >= limit)
        });
        // All at once: the multiplexed Redis connection pipelines them.
        let ended = futures::future::join_all(
            done.map(|r| self.sessions.end_session(&self.event.id, &r.queue_id)),
        )
        .await;
        if let Some(Err(err)) = ended.into_iter().find(Result::is_err) {
            tracing::warn!(event = %self.event.id, %err, "ending booked customers' sessions failed");
        }
    }

    fn count(&self, outcomes: &[BookingOutcome]) {
        for o in outcomes {
            self.metrics
                .booking_decisions
                .get_or_create(&DecisionLabels {
                    event: self.event.id.to_string(),
                    decision: o.decision.as_str().to_owned(),
                })
                .inc();
        }
    }

    /// The invariants, computed from the ledger (the log), not the store.
    fn observe_ledger(&self, ledger: &Ledger) {
        let label = Metrics::label(&self.event.id);
        let violations = ledger
            .tally()
            .violations(&self.event.slots, self.event.per_customer_limit);
        for v in &violations {
            tracing::error!(event = %self.event.id, violation = %v, "invariant broken in the outcomes log");
        }
        self.metrics
            .log_invariants_hold
            .get_or_create(&label)
            .set(i64::from(violations.is_empty()));
        self.metrics
            .log_decisions
            .get_or_create(&label)
            .set(i64::try_from(ledger.watermark()).unwrap_or(i64::MAX));
    }
}
