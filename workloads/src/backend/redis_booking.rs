//! The production seat inventory in Redis. Every decision runs inside one Lua
//! script (`book_decide.lua`): atomic without locks, and idempotent per
//! request id. Keys share the event's `{event}` hash tag with the queue.

use async_trait::async_trait;
use redis::Script;
use twinkle_domain::{
    Booking, BookingStatus, Decision, EventId, RequestId, Slot, SlotCount, booking::Tally,
};

use super::redis_store::RedisStore;
use crate::{
    Error, Result,
    ports::{BookingRequest, BookingStore, Decided, Registration, StoredBooking},
};

/// The booking scripts (loaded once per connection, EVALSHA afterwards).
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    init: Script,
    register: Script,
    decide: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            init: Script::new(include_str!("lua/book_init.lua")),
            register: Script::new(include_str!("lua/book_register.lua")),
            decide: Script::new(include_str!("lua/book_decide.lua")),
        }
    }
}

/// Redis key names of one event's inventory.
struct Keys {
    capacity: String,
    remaining: String,
    confirmed: String,
    customers: String,
    registered: String,
    decided: String,
}

impl Keys {
    fn of(event: &EventId) -> Self {
        let k = |name: &str| format!("tt:{{{event}}}:b:{name}");
        Self {
            capacity: k("cap"),
            remaining: k("left"),
            confirmed: k("conf"),
            customers: k("cust"),
            registered: k("req"),
            decided: k("out"),
        }
    }
}

/// Largest number of fields per HSET when restoring.
const RESTORE_CHUNK: usize = 5000;

fn corrupt(what: &str, value: &str) -> Error {
    Error::Backend(format!("unreadable {what} in the booking store: {value:?}"))
}

/// Parses "decision|customer|slot" (decided) or "customer|slot" (registered).
fn parse_stored(id: &RequestId, value: &str, decided: bool) -> Result<StoredBooking> {
    let mut parts = value.splitn(3, '|');
    let status = if decided {
        let d = parts.next().and_then(Decision::parse);
        BookingStatus::from(d.ok_or_else(|| corrupt("decision", value))?)
    } else {
        BookingStatus::Pending
    };
    let (Some(customer), Some(slot)) = (parts.next(), parts.next()) else {
        return Err(corrupt("booking", value));
    };
    Ok(StoredBooking {
        customer: customer.parse().map_err(|_| corrupt("customer", value))?,
        booking: Booking {
            request_id: id.clone(),
            slot: slot.parse().map_err(|_| corrupt("slot", value))?,
            status,
        },
    })
}

#[async_trait]
impl BookingStore for RedisStore {
    async fn init_inventory(&self, event: &EventId, slots: &[Slot]) -> Result<()> {
        let keys = Keys::of(event);
        let mut inv = self.booking.init.prepare_invoke();
        inv.key(&keys.capacity)
            .key(&keys.remaining)
            .key(&keys.confirmed);
        for slot in slots {
            inv.arg(slot.id.as_str()).arg(slot.capacity);
        }
        let created: u64 = inv.invoke_async(&mut self.con()).await?;
        tracing::info!(%event, created, "seat inventory initialised");
        Ok(())
    }

    async fn register(&self, request: &BookingRequest) -> Result<Registration> {
        let keys = Keys::of(&request.event);
        let answer: String = self
            .booking
            .register
            .key(&keys.registered)
            .arg(request.request_id.as_str())
            .arg(format!("{}|{}", request.queue_id, request.slot))
            .invoke_async(&mut self.con())
            .await?;
        match answer.as_str() {
            "new" => Ok(Registration::New),
            "repeat" => Ok(Registration::Repeat),
            "conflict" => Ok(Registration::Conflict),
            other => Err(corrupt("registration answer", other)),
        }
    }

    async fn decide(
        &self,
        event: &EventId,
        per_customer_limit: u32,
        requests: &[BookingRequest],
    ) -> Result<Vec<Decided>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let keys = Keys::of(event);
        let mut inv = self.booking.decide.prepare_invoke();
        inv.key(&keys.decided)
            .key(&keys.remaining)
            .key(&keys.confirmed)
            .key(&keys.customers)
            .arg(per_customer_limit);
        for r in requests {
            inv.arg(r.request_id.as_str())
                .arg(r.queue_id.as_str())
                .arg(r.slot.as_str());
        }
        let rows: Vec<(String, u32, u8)> = inv.invoke_async(&mut self.con()).await?;
        rows.into_iter()
            .map(|(decision, customer_confirmed, fresh)| {
                Ok(Decided {
                    decision: Decision::parse(&decision)
                        .ok_or_else(|| corrupt("decision", &decision))?,
                    customer_confirmed,
                    fresh: fresh == 1,
                })
            })
            .collect()
    }

    async fn bookings(
        &self,
        event: &EventId,
        ids: &[RequestId],
    ) -> Result<Vec<Option<StoredBooking>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = Keys::of(event);
        let names: Vec<&str> = ids.iter().map(RequestId::as_str).collect();
        let (decided, registered): (Vec<Option<String>>, Vec<Option<String>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&keys.decided)
            .arg(&names)
            .cmd("HMGET")
            .arg(&keys.registered)
            .arg(&names)
            .query_async(&mut self.con())
            .await?;
        ids.iter()
            .zip(decided.into_iter().zip(registered))
            .map(|(id, found)| match found {
                (Some(d), _) => parse_stored(id, &d, true).map(Some),
                (None, Some(r)) => parse_stored(id, &r, false).map(Some),
                (None, None) => Ok(None),
            })
            .collect()
    }

    async fn slot_counts(&self, event: &EventId) -> Result<Vec<SlotCount>> {
        use std::collections::HashMap;
        let keys = Keys::of(event);
        let (capacity, remaining, confirmed): (
            HashMap<String, u32>,
            HashMap<String, i64>,
            HashMap<String, u32>,
        ) = redis::pipe()
            .hgetall(&keys.capacity)
            .hgetall(&keys.remaining)
            .hgetall(&keys.confirmed)
            .query_async(&mut self.con())
            .await?;
        let mut counts: Vec<SlotCount> = capacity
            .into_iter()
            .map(|(slot, capacity)| {
                Ok(SlotCount {
                    remaining: u32::try_from(remaining.get(&slot).copied().unwrap_or(0))
                        .map_err(|_| corrupt("remaining seats", &slot))?,
                    confirmed: confirmed.get(&slot).copied().unwrap_or(0),
                    slot: slot.parse().map_err(|_| corrupt("slot", &slot))?,
                    capacity,
                })
            })
            .collect::<Result<_>>()?;
        counts.sort_by(|a, b| a.slot.cmp(&b.slot));
        Ok(counts)
    }

    async fn restore(&self, event: &EventId, slots: &[Slot], tally: &Tally) -> Result<()> {
        let keys = Keys::of(event);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&[
                &keys.capacity,
                &keys.remaining,
                &keys.confirmed,
                &keys.customers,
                &keys.decided,
            ])
            .ignore();
        for c in tally.counts(slots) {
            pipe.hset(&keys.capacity, c.slot.as_str(), c.capacity)
                .ignore()
                .hset(&keys.remaining, c.slot.as_str(), c.remaining)
                .ignore()
                .hset(&keys.confirmed, c.slot.as_str(), c.confirmed)
                .ignore();
        }
        let customers: Vec<(String, u32)> = tally
            .confirmed_per_customer
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect();
        for chunk in customers.chunks(RESTORE_CHUNK) {
            pipe.hset_multiple(&keys.customers, chunk).ignore();
        }
        let decided: Vec<(String, String)> = tally
            .decided
            .iter()
            .map(|(id, d)| {
                let value = format!("{}|{}|{}", d.decision.as_str(), d.customer, d.slot);
                (id.to_string(), value)
            })
            .collect();
        for chunk in decided.chunks(RESTORE_CHUNK) {
            pipe.hset_multiple(&keys.decided, chunk).ignore();
        }
        let () = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }
}
