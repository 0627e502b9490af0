//! Booking rules: the vocabulary of requests and outcomes, the decision
//! (no oversell, at most `perCustomerLimit` per customer) as a pure function
//! that both stores implement, and the tally that rebuilds inventory from the
//! outcomes log and checks it against the live counters.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::event::{EventId, QueueId, RequestId, Slot, SlotId};

/// Where a booking request stands (the `status` of the booking JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Accepted (`202`), not decided yet.
    Pending,
    Confirmed,
    SoldOut,
    AlreadyBooked,
}

/// A final decision on a booking request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A seat was taken for this customer.
    Confirmed,
    /// The slot had no seat left.
    SoldOut,
    /// The customer already holds `perCustomerLimit` bookings.
    AlreadyBooked,
}

impl Decision {
    /// Stable wire name (also the status in the booking JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::SoldOut => "sold_out",
            Self::AlreadyBooked => "already_booked",
        }
    }

    /// Parses [`Decision::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Confirmed, Self::SoldOut, Self::AlreadyBooked]
            .into_iter()
            .find(|d| d.as_str() == name)
    }
}

impl From<Decision> for BookingStatus {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Confirmed => Self::Confirmed,
            Decision::SoldOut => Self::SoldOut,
            Decision::AlreadyBooked => Self::AlreadyBooked,
        }
    }
}

/// The one booking rule, applied by the decider's [`crate::Ledger`] (the
/// only place a booking is decided).
pub fn decide(remaining: u32, customer_confirmed: u32, per_customer_limit: u32) -> Decision {
    if customer_confirmed >= per_customer_limit {
        Decision::AlreadyBooked
    } else if remaining > 0 {
        Decision::Confirmed
    } else {
        Decision::SoldOut
    }
}

/// A booking as the customer sees it (HTTP and WebSocket alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub request_id: RequestId,
    pub slot: SlotId,
    pub status: BookingStatus,
}

/// One slot's live seats (what the slot picker shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SlotAvailability {
    pub id: SlotId,
    pub label: String,
    pub capacity: u32,
    pub remaining: u32,
    /// `remaining == 0`: the picker disables the slot.
    pub sold_out: bool,
}

/// A slot's counters in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotCount {
    pub slot: SlotId,
    pub capacity: u32,
    pub remaining: u32,
    /// Confirmed bookings recorded for the slot.
    pub confirmed: u32,
}

impl SlotCount {
    /// The inventory invariant: every seat that left `remaining` is a
    /// recorded confirmation, and nothing was sold beyond capacity.
    pub fn consistent(&self) -> bool {
        self.remaining <= self.capacity && self.confirmed == self.capacity - self.remaining
    }
}

/// The picker's view: every configured slot, live seats from `counts`
/// (a slot the store does not know yet shows its full capacity).
pub fn availability(slots: &[Slot], counts: &[SlotCount]) -> Vec<SlotAvailability> {
    slots
        .iter()
        .map(|slot| {
            let remaining = counts
                .iter()
                .find(|c| c.slot == slot.id)
                .map_or(slot.capacity, |c| c.remaining);
            SlotAvailability {
                id: slot.id.clone(),
                label: slot.label.clone(),
                capacity: slot.capacity,
                remaining,
                sold_out: remaining == 0,
            }
        })
        .collect()
}

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Why an idempotency key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters")]
pub struct InvalidIdempotencyKey;

/// The request id for a client-supplied idempotency key: a name-based UUID of
/// (event, customer, key), so a retry reaching any pod names the same request
/// without a lookup, and two customers can never collide.
pub fn request_id_for_key(
    event: &EventId,
    customer: &QueueId,
    key: &str,
) -> Result<RequestId, InvalidIdempotencyKey> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(InvalidIdempotencyKey);
    }
    let name = format!("{event}\n{customer}\n{key}");
    let id = uuid::Uuid::new_v5(&BOOKING_NAMESPACE, name.as_bytes());
    RequestId::try_from(id.simple().to_string()).map_err(|_| InvalidIdempotencyKey)
}

/// A fresh request id (no idempotency key given).
pub fn new_request_id() -> RequestId {
    RequestId::try_from(uuid::Uuid::new_v4().simple().to_string())
        .unwrap_or_else(|_| unreachable!("a simple UUID is 32 hex digits"))
}

/// Namespace of the name-based request ids (a fixed random UUID).
const BOOKING_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6b1f_3c0e_9d4a_4c2b_8e57_a1d2_f0c3_b9e4);

/// One decided request, as replayed from the outcomes log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub customer: QueueId,
    pub slot: SlotId,
    pub decision: Decision,
}

/// Replays the outcomes log: the first outcome of a request counts (a
/// redelivered request is re-published with the decision it already had);
/// the result is what the store must hold.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub decided: BTreeMap<RequestId, Decided>,
    pub confirmed_per_slot: BTreeMap<SlotId, u32>,
    pub confirmed_per_customer: HashMap<QueueId, u32>,
    /// Outcome records repeating an earlier one (redelivery; harmless).
    pub repeats: u64,
    /// Records contradicting the first decision of their request (must be 0).
    pub contradictions: u64,
}

impl Tally {
    pub fn add(&mut self, request: RequestId, decided: Decided) {
        match self.decided.get(&request) {
            Some(first) if *first == decided => self.repeats += 1,
            Some(_) => self.contradictions += 1,
            None => {
                if decided.decision == Decision::Confirmed {
                    *self
                        .confirmed_per_slot
                        .entry(decided.slot.clone())
                        .or_default() += 1;
                    *self
                        .confirmed_per_customer
                        .entry(decided.customer.clone())
                        .or_default() += 1;
                }
                self.decided.insert(request, decided);
            }
        }
    }

    /// The slot counters the store should hold for `slots`.
    pub fn counts(&self, slots: &[Slot]) -> Vec<SlotCount> {
        slots
            .iter()
            .map(|s| {
                let confirmed = self.confirmed_per_slot.get(&s.id).copied().unwrap_or(0);
                SlotCount {
                    slot: s.id.clone(),
                    capacity: s.capacity,
                    remaining: s.capacity.saturating_sub(confirmed),
                    confirmed,
                }
            })
            .collect()
    }

    /// Slots sold beyond capacity and customers beyond the limit (both must
    /// be empty: the two invariants, checked on the log itself).
    pub fn violations(&self, slots: &[Slot], per_customer_limit: u32) -> Vec<String> {
        let mut out = Vec::new();
        for (slot, confirmed) in &self.confirmed_per_slot {
            let capacity = slots.iter().find(|s| &s.id == slot).map(|s| s.capacity);
            if capacity.is_none_or(|c| *confirmed > c) {
                out.push(format!(
                    "slot {slot}: {confirmed} confirmed, capacity {capacity:?}"
                ));
            }
        }
        for (customer, confirmed) in &self.confirmed_per_customer {
            if *confirmed > per_customer_limit {
                out.push(format!(
                    "customer {customer}: {confirmed} confirmed, limit {per_customer_limit}"
                ));
            }
        }
        if self.contradictions > 0 {
            out.push(format!(
                "{} outcome records contradict an earlier decision",
                self.contradictions
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id<T: std::str::FromStr>(s: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        s.parse().unwrap()
    }

    #[test]
    fn decision_rule() {
        assert_eq!(decide(5, 0, 1), Decision::Confirmed);
        assert_eq!(decide(0, 0, 1), Decision::SoldOut);
        assert_eq!(decide(5, 1, 1), Decision::AlreadyBooked);
        // The limit is checked first: a customer at the limit hears
        // "already booked" even for a sold-out slot.
        assert_eq!(decide(0, 2, 2), Decision::AlreadyBooked);
        assert_eq!(decide(1, 1, 2), Decision::Confirmed);
    }

    #[test]
    fn wire_names_round_trip() {
        for d in [
            Decision::Confirmed,
            Decision::SoldOut,
            Decision::AlreadyBooked,
        ] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
            let status = serde_json::to_value(BookingStatus::from(d)).unwrap();
            assert_eq!(status, d.as_str());
        }
        assert_eq!(Decision::parse("pending"), None);
    }

    #[test]
    fn idempotency_keys_name_one_request_per_customer() {
        let (e, a, b) = (id("demo"), id("alice"), id("bob"));
        let first = request_id_for_key(&e, &a, "click-1").unwrap();
        assert_eq!(first, request_id_for_key(&e, &a, "click-1").unwrap());
        assert_ne!(first, request_id_for_key(&e, &a, "click-2").unwrap());
        assert_ne!(first, request_id_for_key(&e, &b, "click-1").unwrap());
        assert_ne!(
            first,
            request_id_for_key(&id("other"), &a, "click-1").unwrap()
        );
        for bad in ["", "has space", "é", &"x".repeat(129)] {
            assert_eq!(request_id_for_key(&e, &a, bad), Err(InvalidIdempotencyKey));
        }
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn tally_counts_first_outcomes_and_flags_violations() {
        let slots = vec![Slot {
            id: id("s1"),
            label: "one".into(),
            capacity: 2,
        }];
        let d = |c: &str, decision| Decided {
            customer: id(c),
            slot: id("s1"),
            decision,
        };
        let mut t = Tally::default();
        t.add(id("r1"), d("a", Decision::Confirmed));
        t.add(id("r1"), d("a", Decision::Confirmed)); // redelivered
        t.add(id("r2"), d("b", Decision::Confirmed));
        t.add(id("r3"), d("c", Decision::SoldOut));
        assert_eq!(t.repeats, 1);
        let counts = t.counts(&slots);
        assert_eq!(counts[0].remaining, 0);
        assert_eq!(counts[0].confirmed, 2);
        assert!(counts[0].consistent());
        assert!(t.violations(&slots, 1).is_empty());

        t.add(id("r4"), d("a", Decision::Confirmed)); // oversell + double
        t.add(id("r3"), d("c", Decision::Confirmed)); // contradiction
        let v = t.violations(&slots, 1);
        assert_eq!(v.len(), 3, "{v:?}");
    }

    #[test]
    fn consistency_and_availability() {
        let c = |remaining, confirmed| SlotCount {
            slot: id("s1"),
            capacity: 3,
            remaining,
            confirmed,
        };
        assert!(c(3, 0).consistent());
        assert!(c(1, 2).consistent());
        assert!(!c(1, 1).consistent());
        assert!(!c(4, 0).consistent());

        let slots = vec![
            Slot {
                id: id("s1"),
                label: "one".into(),
                capacity: 3,
            },
            Slot {
                id: id("s2"),
                label: "two".into(),
                capacity: 4,
            },
        ];
        let view = availability(&slots, &[c(0, 3)]);
        assert!(view[0].sold_out && view[0].remaining == 0);
        assert!(!view[1].sold_out && view[1].remaining == 4);
    }
}
