//! The decider's ledger: the seat inventory as the outcomes log says it is.
//!
//! The outcomes log is the truth; this is that truth in memory. The decider
//! builds it by replaying the log when it starts, decides every request
//! against it, and only then appends the decisions (atomically with the
//! consumed offsets). Redis is a projection of it, never consulted to
//! decide, so losing Redis cannot sell a seat twice.
//!
//! ```text
//!   outcomes log ──replay──▶ Ledger ──decide──▶ outcomes log (+ offsets, one txn)
//!                               │
//!                               └──project (watermark = decisions)──▶ Redis
//! ```

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;

use crate::{
    Decision,
    booking::{self, Decided, Tally},
    event::{QueueId, RequestId, Slot, SlotId},
};

/// The replication lag the derived DR reserve covers: MirrorMaker 2's
/// steady lag measured here is well under a second (BENCHMARKS.md); twice
/// that margin again for a loaded link.
pub const REPLICATION_LAG_BUDGET: Duration = Duration::from_secs(2);
/// The window the primary's decision rate is measured over, ending at its
/// last replicated decision.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The reserve per slot a DR region holds back when none is configured:
/// the primary's confirmations per second over the [`RATE_WINDOW`] before
/// its last replicated decision, times the [`REPLICATION_LAG_BUDGET`],
/// rounded up. Every seat confirmed in the lag may be in one slot, so the
/// whole amount is held in each. `confirmed_at`: when each replicated
/// confirmation was decided.
pub fn derived_reserve(confirmed_at: &[Timestamp]) -> u32 {
    let Some(last) = confirmed_at.iter().max() else {
        return 0;
    };
    let from = last
        .checked_sub(RATE_WINDOW)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let recent = confirmed_at.iter().filter(|t| **t > from).count();
    let per_second = recent as f64 / RATE_WINDOW.as_secs_f64();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let reserve = (per_second * REPLICATION_LAG_BUDGET.as_secs_f64()).ceil() as u32;
    reserve
}

/// What deciding one request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The customer's confirmed bookings after this decision.
    pub customer_confirmed: u32,
    /// False when the request was decided before: the recorded decision is
    /// returned, nothing changes and nothing new is appended.
    pub fresh: bool,
}

/// An event's seats, customers and decisions, replayed from its outcomes.
#[derive(Debug, Clone)]
pub struct Ledger {
    capacity: BTreeMap<SlotId, u32>,
    /// Seats per slot this ledger will not sell (see [`Ledger::hold_back`]).
    reserve: u32,
    tally: Tally,
}

impl Ledger {
    /// An empty ledger for the event's slots (nothing decided yet).
    pub fn new(slots: &[Slot]) -> Self {
        Self {
            capacity: slots.iter().map(|s| (s.id.clone(), s.capacity)).collect(),
            reserve: 0,
            tally: Tally::default(),
        }
    }

    /// Holds back `seats` per slot: fresh requests see each slot as that
    /// much smaller. The DR region decides with a reserve for what the
    /// primary may have confirmed without its decisions having replicated
    /// yet: those seats stay unsold here, so merging both histories cannot
    /// exceed a slot's capacity while the unreplicated tail stays within
    /// the reserve.
    #[must_use]
    pub fn hold_back(mut self, seats: u32) -> Self {
        self.reserve = seats;
        self
    }

    /// Adds one decision read back from the log (the replay at start).
    pub fn replay(&mut self, request: RequestId, decided: Decided) {
        self.tally.add(request, decided);
    }

    /// Decides one request by the one rule ([`booking::decide`]): at the
    /// customer's limit → `already_booked`; a seat left → `confirmed`;
    /// else (or an unknown slot) `sold_out`. A request decided before gets
    /// its recorded decision back, however often it is redelivered.
    pub fn decide(
        &mut self,
        request: &RequestId,
        customer: &QueueId,
        slot: &SlotId,
        per_customer_limit: u32,
    ) -> Verdict {
        let mine = |t: &Tally| t.confirmed_per_customer.get(customer).copied().unwrap_or(0);
        if let Some(first) = self.tally.decided.get(request) {
            return Verdict {
                decision: first.decision,
                customer_confirmed: mine(&self.tally),
                fresh: false,
            };
        }
        let sold = self
            .tally
            .confirmed_per_slot
            .get(slot)
            .copied()
            .unwrap_or(0);
        let remaining = self.capacity.get(slot).map_or(0, |capacity| {
            capacity.saturating_sub(self.reserve).saturating_sub(sold)
        });
        let decision = booking::decide(remaining, mine(&self.tally), per_customer_limit);
        self.tally.add(
            request.clone(),
            Decided {
                customer: customer.clone(),
                slot: slot.clone(),
                decision,
            },
        );
        Verdict {
            decision,
            customer_confirmed: mine(&self.tally),
            fresh: true,
        }
    }

    /// Distinct requests decided: the position in the history of decisions
    /// that a projection reflecting all of them carries as its watermark.
    pub fn watermark(&self) -> u64 {
        self.tally.decided.len() as u64
    }

    /// Everything decided, for a full projection.
    pub fn tally(&self) -> &Tally {
        &self.tally
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

    fn ledger(spec: &[(&str, u32)]) -> Ledger {
        let slots: Vec<Slot> = spec
            .iter()
            .map(|(s, capacity)| Slot {
                id: id(s),
                label: (*s).to_owned(),
                capacity: *capacity,
            })
            .collect();
        Ledger::new(&slots)
    }

    fn decide(l: &mut Ledger, r: &str, c: &str, s: &str, limit: u32) -> Verdict {
        l.decide(&id(r), &id(c), &id(s), limit)
    }

    #[test]
    fn the_derived_reserve_is_the_last_confirmation_rate_times_the_lag_budget() {
        let t0: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let at = |ms: i64| {
            t0.checked_add(jiff::SignedDuration::from_millis(ms))
                .unwrap()
        };
        assert_eq!(derived_reserve(&[]), 0);
        // 50 confirmations in the last 10 s (5/s) × 2 s = 10 seats; the 30
        // older ones are outside the window.
        let mut times: Vec<Timestamp> = (0..30).map(|i| at(i * 10)).collect();
        times.extend((0..50).map(|i| at(60_000 + i * 200)));
        assert_eq!(derived_reserve(&times), 10);
        // One confirmation: 0.1/s × 2 s rounds up to one seat.
        assert_eq!(derived_reserve(&[t0]), 1);
    }

    #[test]
    fn a_reserve_leaves_seats_unsold_and_replayed_sales_count_against_it() {
        let mut l = ledger(&[("a", 5), ("b", 2)]).hold_back(2);
        // Replayed from the primary: 2 confirmed in a.
        for (r, c) in [("p1", "x1"), ("p2", "x2")] {
            l.replay(
                id(r),
                Decided {
                    customer: id(c),
                    slot: id("a"),
                    decision: Decision::Confirmed,
                },
            );
        }
        // 5 - 2 (reserve) - 2 (sold) = 1 seat left in a.
        assert_eq!(
            decide(&mut l, "r1", "c1", "a", 1).decision,
            Decision::Confirmed
        );
        assert_eq!(
            decide(&mut l, "r2", "c2", "a", 1).decision,
            Decision::SoldOut
        );
        // A reserve as large as the slot sells nothing there.
        assert_eq!(
            decide(&mut l, "r3", "c3", "b", 1).decision,
            Decision::SoldOut
        );
        // A decision replayed before is returned, reserve or not.
        assert_eq!(
            decide(&mut l, "p1", "x1", "a", 1).decision,
            Decision::Confirmed
        );
        assert!(!decide(&mut l, "p1", "x1", "a", 1).fresh);
    }

    #[test]
    fn decisions_follow_the_rule_in_order() {
        let mut l = ledger(&[("a", 1), ("b", 5)]);
        let got: Vec<Decision> = [
            ("r1", "c1", "a"),  // the last seat of a
            ("r2", "c2", "a"),  // a is sold out
            ("r3", "c1", "b"),  // c1 is at the limit
            ("r4", "c2", "b"),  // c2 may still book b
            ("r5", "c3", "zz"), // no such slot: no seats
        ]
        .into_iter()
        .map(|(r, c, s)| decide(&mut l, r, c, s, 1).decision)
        .collect();
        assert_eq!(
            got,
            [
                Decision::Confirmed,
                Decision::SoldOut,
                Decision::AlreadyBooked,
                Decision::Confirmed,
                Decision::SoldOut,
            ]
        );
        assert_eq!(l.watermark(), 5);
        let counts = l.tally().counts(&[Slot {
            id: id("b"),
            label: String::new(),
            capacity: 5,
        }]);
        assert_eq!(counts[0].remaining, 4);
        // A higher limit lets a customer book twice.
        let v = decide(&mut l, "r6", "c1", "b", 2);
        assert_eq!((v.decision, v.customer_confirmed), (Decision::Confirmed, 2));
    }

    #[test]
    fn a_redelivered_request_keeps_its_decision_and_changes_nothing() {
        let mut l = ledger(&[("a", 1)]);
        assert!(decide(&mut l, "r1", "c1", "a", 1).fresh);
        let again = decide(&mut l, "r1", "c1", "a", 1);
        assert_eq!(
            again,
            Verdict {
                decision: Decision::Confirmed,
                customer_confirmed: 1,
                fresh: false
            }
        );
        // Even asking for another slot under the same id changes nothing.
        assert!(!decide(&mut l, "r1", "c1", "b", 1).fresh);
        assert_eq!(l.watermark(), 1);
        assert_eq!(l.tally().repeats, 0, "repeats are not appended again");
    }

    #[test]
    fn a_replayed_ledger_decides_like_the_one_that_wrote_the_log() {
        let mut live = ledger(&[("a", 2)]);
        let mut log = Vec::new();
        for (r, c) in [("r1", "c1"), ("r2", "c2"), ("r3", "c3")] {
            let v = decide(&mut live, r, c, "a", 1);
            log.push((
                id::<RequestId>(r),
                Decided {
                    customer: id(c),
                    slot: id("a"),
                    decision: v.decision,
                },
            ));
        }
        let mut replayed = ledger(&[("a", 2)]);
        for (r, d) in log {
            replayed.replay(r, d);
        }
        assert_eq!(replayed.watermark(), live.watermark());
        // The next decision is the same on both: sold out, and c1 still
        // at the limit.
        for l in [&mut live, &mut replayed] {
            assert_eq!(decide(l, "r4", "c4", "a", 1).decision, Decision::SoldOut);
            assert_eq!(
                decide(l, "r5", "c1", "a", 1).decision,
                Decision::AlreadyBooked
            );
        }
    }
}
