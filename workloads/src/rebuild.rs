//! Rebuilding the seat inventory from the outcomes log, and checking the
//! live inventory against it. The outcomes log is the durable record of
//! every decision (appended before the request's offset is committed), so
//! the store can always be recomputed from it.

use serde::Serialize;
use twinkle_domain::{
    EventConfig, SlotCount, SlotId,
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
    /// Invariant violations found in the log itself (must be empty).
    pub violations: Vec<String>,
    pub slots: Vec<SlotReport>,
}

impl Report {
    /// No violation in the log, and the store agrees with it everywhere.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.slots.iter().all(|s| s.ok)
    }
}

/// Replays the event's outcomes into a tally.
pub async fn replay(
    event: &EventConfig,
    outcomes: &dyn Log<BookingOutcome>,
    progress: Progress<'_>,
) -> Result<(Tally, u64)> {
    let records = outcomes.replay(progress).await?;
    let mut tally = Tally::default();
    let mut read = 0u64;
    for r in records.into_iter().filter(|r| r.event == event.id) {
        read += 1;
        tally.add(
            r.request_id,
            Decided {
                customer: r.queue_id,
                slot: r.slot,
                decision: r.decision,
            },
        );
    }
    Ok((tally, read))
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

/// Replaces the store's inventory with the one replayed from the log, then
/// checks. Stop the deciders first (scale the booking consumer to 0):
/// a decision made during the rebuild could be overwritten.
pub async fn rebuild(
    event: &EventConfig,
    outcomes: &dyn Log<BookingOutcome>,
    store: &dyn BookingStore,
    progress: Progress<'_>,
) -> Result<Report> {
    let (tally, records) = replay(event, outcomes, progress).await?;
    store.restore(&event.id, &event.slots, &tally).await?;
    report(event, &tally, records, store).await
}

async fn report(
    event: &EventConfig,
    tally: &Tally,
    records: u64,
    store: &dyn BookingStore,
) -> Result<Report> {
    let live = store.slot_counts(&event.id).await?;
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
        violations: tally.violations(&event.slots, event.per_customer_limit),
        slots,
    })
}
