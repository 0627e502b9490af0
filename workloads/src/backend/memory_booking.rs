//! The embedded seat inventory: the same decisions as `decide.lua`, under one
//! mutex per process (the local stack has one process).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use twinkle_domain::{
    Booking, Decision, EventId, QueueId, RequestId, Slot, SlotCount, SlotId,
    booking::{self, Tally},
};

use super::memory::{MemoryStore, lock};
use crate::{
    Result,
    ports::{BookingRequest, BookingStore, Decided, Registration, StoredBooking},
};

#[derive(Debug, Default, Clone, Copy)]
struct Seats {
    capacity: u32,
    remaining: u32,
    confirmed: u32,
}

/// One event's inventory and decisions.
#[derive(Debug, Default)]
pub(crate) struct EventBookings {
    slots: BTreeMap<SlotId, Seats>,
    per_customer: HashMap<QueueId, u32>,
    registered: HashMap<RequestId, (QueueId, SlotId)>,
    decided: HashMap<RequestId, (Decision, QueueId, SlotId)>,
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
}

impl EventBookings {
    fn decide_one(&mut self, limit: u32, r: &BookingRequest) -> Decided {
        if let Some((decision, ..)) = self.decided.get(&r.request_id) {
            return Decided {
                decision: *decision,
                customer_confirmed: self.per_customer.get(&r.queue_id).copied().unwrap_or(0),
                fresh: false,
            };
        }
        let mine = self.per_customer.entry(r.queue_id.clone()).or_default();
        // A slot the inventory does not know has no seats.
        let seats = self.slots.get_mut(&r.slot);
        let remaining = seats.as_ref().map_or(0, |s| s.remaining);
        let decision = booking::decide(remaining, *mine, limit);
        if let (Decision::Confirmed, Some(seats)) = (decision, seats) {
            seats.remaining -= 1;
            seats.confirmed += 1;
            *mine += 1;
        }
        let customer_confirmed = *mine;
        self.decided.insert(
            r.request_id.clone(),
            (decision, r.queue_id.clone(), r.slot.clone()),
        );
        Decided {
            decision,
            customer_confirmed,
            fresh: true,
        }
    }
}

#[async_trait]
impl BookingStore for MemoryStore {
    async fn init_inventory(&self, event: &EventId, slots: &[Slot]) -> Result<()> {
        self.with_bookings(event, |b| {
            for slot in slots {
                b.slots.entry(slot.id.clone()).or_insert(Seats {
                    capacity: slot.capacity,
                    remaining: slot.capacity,
                    confirmed: 0,
                });
            }
        })
    }

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

    async fn decide(
        &self,
        event: &EventId,
        per_customer_limit: u32,
        requests: &[BookingRequest],
    ) -> Result<Vec<Decided>> {
        self.with_bookings(event, |b| {
            requests
                .iter()
                .map(|r| b.decide_one(per_customer_limit, r))
                .collect()
        })
    }

    async fn bookings(
        &self,
        event: &EventId,
        ids: &[RequestId],
    ) -> Result<Vec<Option<StoredBooking>>> {
        self.with_bookings(event, |b| {
            ids.iter()
                .map(|id| {
                    let (status, customer, slot) = match b.decided.get(id) {
                        Some((d, c, s)) => ((*d).into(), c, s),
                        None => {
                            let (c, s) = b.registered.get(id)?;
                            (twinkle_domain::BookingStatus::Pending, c, s)
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
                })
                .collect()
        })
    }

    async fn slot_counts(&self, event: &EventId) -> Result<Vec<SlotCount>> {
        self.with_bookings(event, |b| {
            b.slots
                .iter()
                .map(|(slot, s)| SlotCount {
                    slot: slot.clone(),
                    capacity: s.capacity,
                    remaining: s.remaining,
                    confirmed: s.confirmed,
                })
                .collect()
        })
    }

    async fn restore(&self, event: &EventId, slots: &[Slot], tally: &Tally) -> Result<()> {
        self.with_bookings(event, |b| {
            b.slots = tally
                .counts(slots)
                .into_iter()
                .map(|c| {
                    let seats = Seats {
                        capacity: c.capacity,
                        remaining: c.remaining,
                        confirmed: c.confirmed,
                    };
                    (c.slot, seats)
                })
                .collect();
            b.per_customer = tally.confirmed_per_customer.clone();
            b.decided = tally
                .decided
                .iter()
                .map(|(id, d)| (id.clone(), (d.decision, d.customer.clone(), d.slot.clone())))
                .collect();
        })
    }
}
