//! Which region sells: at most one region's deciders decide bookings for an
//! event at any moment (SPEC §4, §7).
//!
//! Ownership is a record beside the weights — `region` and an `epoch` that
//! grows by one on every change of region — written by the watchdog that
//! holds the Route53 lease in the same change batch as the weights, so the
//! two change together or not at all ([`Ownership::after`]).
//!
//! A decider may decide only while it can prove it is the owner
//! ([`OwnerGate`]), on its own monotonic clock — no wall-clock comparison
//! between regions is needed:
//! * **Confirmation.** A read that saw "ours" and *started* at `r` proves
//!   ownership until `r + lease − margin`. The change to another region is
//!   applied at some moment `T`; every read started before `T` is valid only
//!   until before `T + lease`, so the old owner stops by then — also when it
//!   can no longer reach the record at all (a partition).
//! * **Handover.** A new owner first sees the new epoch at some `s ≥ T` and
//!   starts only at `s + lease + margin`, after the old owner has certainly
//!   stopped. Epoch 0 (ownership never moved: the primary region has always
//!   sold) needs no handover.
//!
//! `margin` absorbs the rate error of the two monotonic clocks over one
//! lease; it is not a bound on wall-clock skew, which plays no part.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::target::Target;
use crate::time::Millis;
use crate::weights::RouteState;
use crate::{Error, Result};

/// A region that can sell: the primary (Seoul) or the DR region
/// (Singapore, where both DR targets run on one Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Region {
    Primary,
    Dr,
}

impl Region {
    pub const ALL: [Region; 2] = [Region::Primary, Region::Dr];

    /// The name in records, flags and status (`primary`, `dr`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Region::Primary => "primary",
            Region::Dr => "dr",
        }
    }

    pub fn parse(name: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Target {
    /// The region whose Kafka this target's workloads write to.
    pub const fn region(self) -> Region {
        match self {
            Target::Primary => Region::Primary,
            Target::DrEks | Target::DrEcs => Region::Dr,
        }
    }
}

impl RouteState {
    /// The region that sells in this state: the one its weights send
    /// customers to (no state splits traffic across regions).
    pub fn selling_region(self) -> Region {
        let weights = self.weights();
        if weights.get(Target::Primary) > 0 {
            Region::Primary
        } else {
            Region::Dr
        }
    }
}

/// The ownership record: who sells, and the how-many-th change that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ownership {
    pub region: Region,
    pub epoch: u64,
}

impl Ownership {
    /// Before any failover (no record yet): the primary, epoch 0.
    pub const INITIAL: Ownership = Ownership {
        region: Region::Primary,
        epoch: 0,
    };

    /// The record to write with `state`'s weights: unchanged while the same
    /// region sells, else the new region at the next epoch.
    pub fn after(self, state: RouteState) -> Ownership {
        let region = state.selling_region();
        if region == self.region {
            self
        } else {
            Ownership {
                region,
                epoch: self.epoch.saturating_add(1),
            }
        }
    }
}

impl Ownership {
    /// The record's name beside the weighted records customers resolve:
    /// `_twinkle-dr-owner.<record>`.
    pub fn record_name(record: &str) -> String {
        format!("_twinkle-dr-owner.{record}")
    }

    /// The TXT value of the record, quoted as Route53 requires:
    /// `"region=dr epoch=7"`.
    pub fn to_txt(self) -> String {
        format!("\"region={} epoch={}\"", self.region, self.epoch)
    }

    /// Parses a TXT value; `None` for anything else.
    pub fn parse_txt(txt: &str) -> Option<Ownership> {
        let inner = txt.trim().strip_prefix('"')?.strip_suffix('"')?;
        let mut region = None;
        let mut epoch = None;
        for field in inner.split(' ') {
            match field.split_once('=')? {
                ("region", value) => region = Some(Region::parse(value)?),
                ("epoch", value) => epoch = Some(value.parse().ok()?),
                _ => return None,
            }
        }
        Some(Ownership {
            region: region?,
            epoch: epoch?,
        })
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (epoch {})", self.region, self.epoch)
    }
}

/// How long one confirmation lasts, and the margin for clock rate error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnershipTiming {
    /// A read that saw ownership proves it for this long from the read's
    /// start; a new owner waits this long (plus the margin) after first
    /// seeing its epoch. Also the bound on how long deciding goes on in a
    /// region cut off from the record.
    pub lease: Millis,
    /// Taken off the old owner's confirmation and added to the new owner's
    /// wait.
    pub margin: Millis,
}

impl Default for OwnershipTiming {
    /// 10 s lease (a decider polls every second or so, so ten reads may fail
    /// before it stops), 500 ms margin (5 % of the lease, far above the
    /// rate error of any working clock).
    fn default() -> OwnershipTiming {
        OwnershipTiming {
            lease: Millis::from_secs(10),
            margin: Millis(500),
        }
    }
}

impl OwnershipTiming {
    /// Refuses a lease the margin eats up.
    pub fn validate(&self) -> Result<()> {
        if self.lease.as_millis() <= self.margin.as_millis().saturating_mul(2) {
            return Err(Error::OwnershipLeaseTooShort {
                lease: self.lease,
                margin: self.margin,
            });
        }
        Ok(())
    }
}

/// What a decider may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Verdict {
    /// Decide, until `until` on the gate's clock unless confirmed again.
    Owner { epoch: u64, until: Millis },
    /// Another region sells: leave requests in the log.
    NotOwner { owner: Ownership },
    /// Ours, but the previous owner may still be deciding until `from`.
    Handover { epoch: u64, from: Millis },
    /// No read has proved ownership recently (never read, or reads failing).
    Unconfirmed,
}

impl Verdict {
    pub fn may_decide(&self) -> bool {
        matches!(self, Verdict::Owner { .. })
    }
}

/// One region's deciders' view of ownership, fed with reads of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerGate {
    region: Region,
    timing: OwnershipTiming,
    /// The latest record read, if any.
    last: Option<Ownership>,
    /// Start of the latest read that saw our current epoch.
    confirmed_at: Option<Millis>,
    /// When our current epoch was first seen (end of that read).
    first_seen: Option<(u64, Millis)>,
}

impl OwnerGate {
    pub fn new(region: Region, timing: OwnershipTiming) -> Result<OwnerGate> {
        timing.validate()?;
        Ok(OwnerGate {
            region,
            timing,
            last: None,
            confirmed_at: None,
            first_seen: None,
        })
    }

    pub fn region(&self) -> Region {
        self.region
    }

    pub fn timing(&self) -> OwnershipTiming {
        self.timing
    }

    /// The record as last read.
    pub fn last_read(&self) -> Option<Ownership> {
        self.last
    }

    /// A read of the record that started at `started` and returned `record`
    /// at `finished` (the gate's clock; `finished ≥ started`). A failed read
    /// is simply not reported: confirmation then runs out on its own.
    pub fn observe(&mut self, started: Millis, finished: Millis, record: Ownership) {
        // A read older than one already seen tells nothing new (answers of
        // overlapping reads may arrive out of order).
        if let Some(previous) = self.last
            && record.epoch < previous.epoch
        {
            return;
        }
        self.last = Some(record);
        if record.region != self.region {
            self.confirmed_at = None;
            self.first_seen = None;
            return;
        }
        if self.first_seen.map(|(epoch, _)| epoch) != Some(record.epoch) {
            self.first_seen = Some((record.epoch, finished.max(started)));
            self.confirmed_at = None;
        }
        self.confirmed_at = Some(self.confirmed_at.map_or(started, |at| at.max(started)));
    }

    /// Whether deciding is allowed at `now` (the gate's clock).
    pub fn verdict(&self, now: Millis) -> Verdict {
        let Some(record) = self.last else {
            return Verdict::Unconfirmed;
        };
        if record.region != self.region {
            return Verdict::NotOwner { owner: record };
        }
        if record.epoch > 0
            && let Some((epoch, seen)) = self.first_seen
        {
            let from = Millis(
                seen.as_millis()
                    .saturating_add(self.timing.lease.as_millis())
                    .saturating_add(self.timing.margin.as_millis()),
            );
            if now < from {
                return Verdict::Handover { epoch, from };
            }
        }
        match self.confirmed_at {
            Some(at) => {
                let until = Millis(
                    at.as_millis()
                        .saturating_add(self.timing.lease.as_millis())
                        .saturating_sub(self.timing.margin.as_millis()),
                );
                if now < until {
                    Verdict::Owner {
                        epoch: record.epoch,
                        until,
                    }
                } else {
                    Verdict::Unconfirmed
                }
            }
            None => Verdict::Unconfirmed,
        }
    }
}

#[cfg(test)]
mod tests;
