//! Checking the booking projection (Redis) against the outcomes log, and
//! restoring it from there by hand. The outcomes log is the truth (the
//! decider commits each decision with the request's offset, and decides
//! against a ledger replayed from the log), so the projection can always be
//! recomputed from it; the running decider does that by itself whenever it
//! finds the projection's watermark behind.

use serde::Serialize;
use twinkle_domain::{
    EventConfig, Ledger, SlotCount, SlotId,
    booking::{Decided, Tally},
};

use crate::{
    Result,
    ports::{BookingOutcome, BookingStore, Log, Progress},
};

/// One slot, from the log and from the store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotReport {
    pub slot: SlotId,
    pub capacity: u32,
    /// Confirmed bookings according to the outcomes log.
    pub confirmed_in_log: u32,
    /// The store's counters (`None`: the store does not know the slot).
    pub store: Option<SlotCount>,
    /// Store counters agree with the log and with each other.
    pub ok: bool,
}

/// What a check or rebuild found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub event: String,
    /// Outcome records read (repeats included).
    pub records: u64,
    /// Distinct requests decided.
    pub decided: usize,
    /// Records repeating an earlier decision (redelivery; harmless).
    pub repeats: u64,
    /// Decisions the projection says it reflects (`None`: it holds none,
    /// e.g. an emptied Redis the decider has not restored yet).
    pub projected_watermark: Option<u64>,
    /// Decisions in the log the projection does not reflect.
    pub projection_lag: u64,
    /// Invariant violations found in the log itself (must be empty).
    pub violations: Vec<String>,
    pub slots: Vec<SlotReport>,
}

impl Report {
    /// No violation in the log, and the projection reflects all of it.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
            && self.projection_lag == 0
            && self.projected_watermark.is_some()
            && self.slots.iter().all(|s| s.ok)
    }
}

/// The ledger the event's outcome records say: what the decider decides
/// against, and what the projection must show.
pub fn ledger(event: &EventConfig, records: Vec<BookingOutcome>) -> Ledger {
    let mut ledger = Ledger::new(&event.slots);
    for r in records.into_iter().filter(|r| r.event == event.id) {
        ledger.replay(
            r.request_id,
            Decided {
                customer: r.queue_id,
                slot: r.slot,
                decision: r.decision,
            },
        );
    }
    ledger
}

/// Replays the event's outcomes log into a tally; also returns how many
/// of its records were the event's.
pub async fn replay(
    event: &EventConfig,
    outcomes: &dyn Log<BookingOutcome>,
    progress: Progress<'_>,
) -> Result<(Tally, u64)> {
    let records = outcomes.replay(progress).await?;
    let read = records.iter().filter(|r| r.event == event.id).count() as u64;
    Ok((ledger(event, records).tally().clone(), read))
}

/// Compares the store with the log.
pub async fn check(
    event: &EventConfig,
    outcomes: &dyn Log<BookingOutcome>,
    store: &dyn BookingStore,
    progress: Progress<'_>,
) -> Result<Report> {
    let (tally, records) = replay(event, outcomes, progress).await?;
    report(event, &tally, records, store).await
}

/// Restores the projection from the log if it is behind it, then checks.
/// Refused while a decider holds its lease: it restores by itself, and a
/// replay that ends partition by partition while it commits is no
/// consistent cut of its history.
pub async fn rebuild(
    event: &EventConfig,
    outcomes: &dyn Log<BookingOutcome>,
    store: &dyn BookingStore,
    progress: Progress<'_>,
) -> Result<Report> {
    if let Some(holder) = store.decider(&event.id).await? {
        return Err(crate::Error::DeciderRunning(holder));
    }
    let records = outcomes.replay(progress).await?;
    let read = records.iter().filter(|r| r.event == event.id).count() as u64;
    let ledger = ledger(event, records);
    store
        .restore(&event.id, &event.slots, ledger.tally(), ledger.watermark())
        .await?;
    report(event, ledger.tally(), read, store).await
}

async fn report(
    event: &EventConfig,
    tally: &Tally,
    records: u64,
    store: &dyn BookingStore,
) -> Result<Report> {
    let read = store.slot_counts(&event.id).await?;
    let live = read.value;
    let slots = tally
        .counts(&event.slots)
        .into_iter()
        .map(|expected| {
            let store = live.iter().find(|c| c.slot == expected.slot).cloned();
            let ok = store
                .as_ref()
                .is_some_and(|s| s.consistent() && s.confirmed == expected.confirmed);
            SlotReport {
                capacity: expected.capacity,
                confirmed_in_log: expected.confirmed,
                slot: expected.slot,
                store,
                ok,
            }
        })
        .collect();
    Ok(Report {
        event: event.id.to_string(),
        records,
        decided: tally.decided.len(),
        repeats: tally.repeats,
        projected_watermark: read.watermark,
        projection_lag: (tally.decided.len() as u64).saturating_sub(read.watermark.unwrap_or(0)),
        violations: tally.violations(&event.slots, event.per_customer_limit),
        slots,
    })
}
