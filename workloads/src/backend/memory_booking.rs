//! The embedded booking projection: the same watermark rules as
//! `book_project.lua` and `book_promote.lua`, under one mutex per process
//! (the local stack has one process).

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use async_trait::async_trait;
use twinkle_domain::{
    Booking, BookingStatus, Decision, EventId, QueueId, RequestId, Slot, SlotCount, SlotId,
    booking::Tally,
};

use super::memory::{Lease, MemoryStore, lock, take_lease};
use crate::{
    Result,
    ports::{
        BookingRequest, BookingStore, Lookup, Projected, ProjectedDecision, Projection,
        Registration, StoredBooking,
    },
};

/// One event's projection.
#[derive(Debug, Default)]
pub(crate) struct EventBookings {
    /// Decisions reflected; `None` until the decider first restores it.
    watermark: Option<u64>,
    slots: BTreeMap<SlotId, SlotCount>,
    registered: HashMap<RequestId, (QueueId, SlotId)>,
    decided: HashMap<RequestId, (Decision, QueueId, SlotId)>,
    /// Set by a restore until the decider has caught up (see the port).
    registrations_incomplete: bool,
    lease: Lease,
}

impl MemoryStore {
    fn with_bookings<T>(
        &self,
        event: &EventId,
        f: impl FnOnce(&mut EventBookings) -> T,
    ) -> Result<T> {
        let mut all = lock(&self.bookings)?;
        Ok(f(all.entry(event.clone()).or_default()))
    }

    /// Forgets an event's booking projection and decider lease: what an
    /// emptied Redis looks like to the decider and the API.
    pub fn forget_bookings(&self, event: &EventId) -> Result<()> {
        self.with_bookings(event, |b| *b = EventBookings::default())
    }
}

impl EventBookings {
    fn apply(&mut self, d: &ProjectedDecision) {
        self.decided.insert(
            d.request_id.clone(),
            (d.decision, d.queue_id.clone(), d.slot.clone()),
        );
        if d.decision == Decision::Confirmed
            && let Some(seats) = self.slots.get_mut(&d.slot)
        {
            seats.remaining = seats.remaining.saturating_sub(1);
            seats.confirmed += 1;
        }
    }

    fn stored(&self, id: &RequestId) -> Option<StoredBooking> {
        let (status, customer, slot) = match self.decided.get(id) {
            Some((d, c, s)) => ((*d).into(), c, s),
            None => {
                let (c, s) = self.registered.get(id)?;
                (BookingStatus::Pending, c, s)
            }
        };
        Some(StoredBooking {
            customer: customer.clone(),
            booking: Booking {
                request_id: id.clone(),
                slot: slot.clone(),
                status,
            },
        })
    }
}

#[async_trait]
impl BookingStore for MemoryStore {
    async fn register(&self, request: &BookingRequest) -> Result<Registration> {
        self.with_bookings(&request.event, |b| {
            let value = (request.queue_id.clone(), request.slot.clone());
            match b.registered.get(&request.request_id) {
                None => {
                    b.registered.insert(request.request_id.clone(), value);
                    Registration::New
                }
                Some(existing) if *existing == value => Registration::Repeat,
                Some(_) => Registration::Conflict,
            }
        })
    }

    async fn bookings(&self, event: &EventId, ids: &[RequestId]) -> Result<Projected<Lookup>> {
        self.with_bookings(event, |b| Projected {
            watermark: b.watermark,
            value: Lookup {
                found: ids.iter().map(|id| b.stored(id)).collect(),
                registrations_complete: !b.registrations_incomplete,
            },
        })
    }

    async fn slot_counts(&self, event: &EventId) -> Result<Projected<Vec<SlotCount>>> {
        self.with_bookings(event, |b| Projected {
            watermark: b.watermark,
            value: b.slots.values().cloned().collect(),
        })
    }

    async fn project(
        &self,
        event: &EventId,
        from: u64,
        decisions: &[ProjectedDecision],
    ) -> Result<Projection> {
        self.with_bookings(event, |b| match b.watermark {
            None => Projection::Behind(None),
            Some(w) if w < from => Projection::Behind(Some(w)),
            Some(w) if w > from => Projection::Ahead(w),
            Some(_) => {
                for d in decisions {
                    b.apply(d);
                }
                let w = from + decisions.len() as u64;
                b.watermark = Some(w);
                Projection::Applied(w)
            }
        })
    }

    async fn restore(
        &self,
        event: &EventId,
        slots: &[Slot],
        tally: &Tally,
        watermark: u64,
    ) -> Result<bool> {
        self.with_bookings(event, |b| {
            if b.watermark.is_some_and(|w| w >= watermark) {
                return false;
            }
            b.slots = tally
                .counts(slots)
                .into_iter()
                .map(|c| (c.slot.clone(), c))
                .collect();
            b.decided = tally
                .decided
                .iter()
                .map(|(id, d)| (id.clone(), (d.decision, d.customer.clone(), d.slot.clone())))
                .collect();
            b.watermark = Some(watermark);
            b.registrations_incomplete = true;
            true
        })
    }

    async fn release_decider(&self, event: &EventId, holder: &str) -> Result<()> {
        self.with_bookings(event, |b| {
            if b.lease.as_ref().is_some_and(|(owner, _)| owner == holder) {
                b.lease = None;
            }
        })
    }

    async fn decider(&self, event: &EventId) -> Result<Option<String>> {
        let now = tokio::time::Instant::now();
        self.with_bookings(event, |b| {
            b.lease
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(holder, _)| holder.clone())
        })
    }

    async fn registrations_complete(&self, event: &EventId) -> Result<()> {
        self.with_bookings(event, |b| b.registrations_incomplete = false)
    }

    async fn lead_decider(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool> {
        self.with_bookings(event, |b| take_lease(&mut b.lease, holder, ttl))
    }
}
