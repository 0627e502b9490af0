//! The production booking projection in Redis: what the booking API reads
//! (decisions by request id, seats per slot), written only by the decider
//! after its decisions are committed to the outcomes log. Every write
//! carries the watermark (decisions reflected) and is applied only on top
//! of exactly the state it follows (`book_project.lua`); a projection that
//! lost writes is replaced whole (`book_promote.lua`). Keys share the
//! event's `{event}` hash tag with the queue.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use twinkle_domain::{
    Booking, BookingStatus, Decision, EventId, RequestId, Slot, SlotCount, booking::Tally,
};

use super::redis_store::RedisStore;
use crate::{
    Error, Result,
    ports::{
        BookingRequest, BookingStore, Lookup, Projected, ProjectedDecision, Projection,
        Registration, StoredBooking,
    },
};

/// The booking scripts (loaded once per connection, EVALSHA afterwards).
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    register: Script,
    project: Script,
    promote: Script,
    lease: Script,
    pub(super) release: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            register: Script::new(include_str!("lua/book_register.lua")),
            project: Script::new(include_str!("lua/book_project.lua")),
            promote: Script::new(include_str!("lua/book_promote.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
            release: Script::new(include_str!("lua/lease_release.lua")),
        }
    }
}

/// Redis key names of one event's projection.
struct Keys {
    watermark: String,
    capacity: String,
    remaining: String,
    confirmed: String,
    registered: String,
    decided: String,
    lease: String,
    registrations_incomplete: String,
}

impl Keys {
    fn of(event: &EventId) -> Self {
        Self::named(event, "")
    }

    /// A private staging copy for one restore (`stage.<id>.` prefix).
    fn staged(event: &EventId) -> Self {
        Self::named(event, &format!("stage.{}.", uuid::Uuid::new_v4().simple()))
    }

    fn named(event: &EventId, prefix: &str) -> Self {
        let k = |name: &str| format!("tt:{{{event}}}:b:{prefix}{name}");
        Self {
            watermark: k("wm"),
            capacity: k("cap"),
            remaining: k("left"),
            confirmed: k("conf"),
            registered: k("req"),
            decided: k("out"),
            lease: k("lease"),
            registrations_incomplete: k("regs_incomplete"),
        }
    }
}

/// Largest number of fields per HSET when staging a restore.
const RESTORE_CHUNK: usize = 5000;

/// How long a staged copy lives if its writer dies before promoting it.
const STAGE_TTL_MS: u64 = 120_000;

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

    async fn bookings(&self, event: &EventId, ids: &[RequestId]) -> Result<Projected<Lookup>> {
        let keys = Keys::of(event);
        let names: Vec<&str> = ids.iter().map(RequestId::as_str).collect();
        // MULTI/EXEC: the watermark and the data it vouches for are read at
        // one instant (a flush in between would pass off nothing as whole).
        let mut pipe = redis::pipe();
        pipe.atomic()
            .get(&keys.watermark)
            .exists(&keys.registrations_incomplete);
        if !ids.is_empty() {
            pipe.cmd("HMGET")
                .arg(&keys.decided)
                .arg(&names)
                .cmd("HMGET")
                .arg(&keys.registered)
                .arg(&names);
        }
        let (watermark, incomplete, decided, registered): (
            Option<u64>,
            bool,
            Vec<Option<String>>,
            Vec<Option<String>>,
        ) = if ids.is_empty() {
            let (w, incomplete): (Option<u64>, bool) = pipe.query_async(&mut self.con()).await?;
            (w, incomplete, Vec::new(), Vec::new())
        } else {
            pipe.query_async(&mut self.con()).await?
        };
        let found = ids
            .iter()
            .zip(decided.into_iter().zip(registered))
            .map(|(id, found)| match found {
                (Some(d), _) => parse_stored(id, &d, true).map(Some),
                (None, Some(r)) => parse_stored(id, &r, false).map(Some),
                (None, None) => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(Projected {
            watermark,
            value: Lookup {
                found,
                registrations_complete: !incomplete,
            },
        })
    }

    async fn slot_counts(&self, event: &EventId) -> Result<Projected<Vec<SlotCount>>> {
        use std::collections::HashMap;
        let keys = Keys::of(event);
        let (watermark, capacity, remaining, confirmed): (
            Option<u64>,
            HashMap<String, u32>,
            HashMap<String, i64>,
            HashMap<String, u32>,
        ) = redis::pipe()
            .atomic()
            .get(&keys.watermark)
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
        Ok(Projected {
            watermark,
            value: counts,
        })
    }

    async fn project(
        &self,
        event: &EventId,
        from: u64,
        decisions: &[ProjectedDecision],
    ) -> Result<Projection> {
        let keys = Keys::of(event);
        let mut inv = self.booking.project.prepare_invoke();
        inv.key(&keys.watermark)
            .key(&keys.decided)
            .key(&keys.remaining)
            .key(&keys.confirmed)
            .arg(from);
        for d in decisions {
            inv.arg(d.request_id.as_str())
                .arg(d.queue_id.as_str())
                .arg(d.slot.as_str())
                .arg(d.decision.as_str());
        }
        let (answer, at): (String, i64) = inv.invoke_async(&mut self.con()).await?;
        let at_known = u64::try_from(at).ok();
        match (answer.as_str(), at_known) {
            ("applied", Some(w)) => Ok(Projection::Applied(w)),
            ("behind", w) => Ok(Projection::Behind(w)),
            ("ahead", Some(w)) => Ok(Projection::Ahead(w)),
            _ => Err(corrupt("projection answer", &format!("{answer} {at}"))),
        }
    }

    async fn restore(
        &self,
        event: &EventId,
        slots: &[Slot],
        tally: &Tally,
        watermark: u64,
    ) -> Result<bool> {
        // Staged under private names (nobody reads them, so chunked writes
        // are fine), then promoted in one script: readers see the old
        // projection or the new one, never a mix.
        let (live, staged) = (Keys::of(event), Keys::staged(event));
        let ttl = i64::try_from(STAGE_TTL_MS).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        let counts = tally.counts(slots);
        for c in &counts {
            pipe.hset(&staged.capacity, c.slot.as_str(), c.capacity)
                .ignore()
                .hset(&staged.remaining, c.slot.as_str(), c.remaining)
                .ignore()
                .hset(&staged.confirmed, c.slot.as_str(), c.confirmed)
                .ignore();
        }
        let decided: Vec<(String, String)> = tally
            .decided
            .iter()
            .map(|(id, d)| {
                let value = format!("{}|{}|{}", d.decision.as_str(), d.customer, d.slot);
                (id.to_string(), value)
            })
            .collect();
        for key in [&staged.capacity, &staged.remaining, &staged.confirmed] {
            pipe.pexpire(key, ttl).ignore();
        }
        let () = pipe.query_async(&mut self.con()).await?;
        // One request per chunk: each answers well within the connection's
        // response timeout, however large the sale.
        for chunk in decided.chunks(RESTORE_CHUNK) {
            let () = redis::pipe()
                .hset_multiple(&staged.decided, chunk)
                .ignore()
                .pexpire(&staged.decided, ttl)
                .ignore()
                .query_async(&mut self.con())
                .await?;
        }
        let promoted: i64 = self
            .booking
            .promote
            .key(&live.watermark)
            .key(&live.capacity)
            .key(&live.remaining)
            .key(&live.confirmed)
            .key(&live.decided)
            .key(&staged.capacity)
            .key(&staged.remaining)
            .key(&staged.confirmed)
            .key(&staged.decided)
            .key(&live.registrations_incomplete)
            .arg(watermark)
            .arg(counts.len())
            .arg(decided.len())
            .invoke_async(&mut self.con())
            .await?;
        match promoted {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(Error::Backend(
                "the staged booking projection was lost before it was promoted (Redis emptied or failed over mid-restore)".into(),
            )),
        }
    }

    async fn release_decider(&self, event: &EventId, holder: &str) -> Result<()> {
        let _: i64 = self
            .booking
            .release
            .key(Keys::of(event).lease)
            .arg(holder)
            .invoke_async(&mut self.con())
            .await?;
        Ok(())
    }

    async fn decider(&self, event: &EventId) -> Result<Option<String>> {
        let holder: Option<String> = redis::cmd("GET")
            .arg(Keys::of(event).lease)
            .query_async(&mut self.con())
            .await?;
        Ok(holder)
    }

    async fn registrations_complete(&self, event: &EventId) -> Result<()> {
        let _: u64 = redis::cmd("DEL")
            .arg(Keys::of(event).registrations_incomplete)
            .query_async(&mut self.con())
            .await?;
        Ok(())
    }

    async fn lead_decider(&self, event: &EventId, holder: &str, ttl: Duration) -> Result<bool> {
        let held: i64 = self
            .booking
            .lease
            .key(Keys::of(event).lease)
            .arg(holder)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.con())
            .await?;
        Ok(held == 1)
    }
}
