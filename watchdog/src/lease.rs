//! The lease: only its holder writes weights, so two watchdogs (Seoul
//! in-cluster, Singapore on ECS) never fight over the records.
//!
//! The lease is one TXT record, by default `_twinkle-dr-lease.<record>`,
//! holding `"holder=<id> expires=<unix-ms> state=<routeState>"`. It is taken
//! or renewed by a change batch that DELETEs the exact value last read and
//! CREATEs the new one (CREATE alone when absent). Route53 applies a batch
//! atomically and rejects it whole (`InvalidChangeBatch`) when a DELETE does
//! not match the current value or a CREATE finds the record present, so the
//! batch is a compare-and-set. Every weight write carries that
//! compare-and-set in the same batch: weights change only while the lease
//! record still holds exactly the value this watchdog wrote — a fence, not
//! just a clock check.
//!
//! `state=` is an addition to the holder and expiry: the routing state the
//! holder last wrote, so an operator override (which has the same weights
//! as an automatic state) survives a change of holder or a restart.
//! `since=` is when that state was first recorded (wall-clock Unix ms): a
//! new holder adopting the state replays only its own probe rounds taken
//! after it, because the rounds before are evidence the decision already
//! answered (a failback after an outage must not be undone by replaying
//! the outage).
//!
//! Clocks: expiry is wall-clock Unix milliseconds because watchdogs in two
//! regions compare it. The holder stops trusting its lease
//! `clockSkewMarginMs` before expiry; others take it only that long after.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_route53::types::{Change, ChangeAction};
use serde::{Deserialize, Serialize};
use twinkle_dr::RouteState;

use crate::config::{WatchdogConfig, valid_holder_id};
use crate::route53::Route53;
use crate::{Error, Result};

/// TTL of the lease record. Watchdogs read it through the API, never DNS.
const LEASE_TTL: i64 = 60;

/// Wall-clock Unix milliseconds.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The parsed content of the lease record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    pub holder: String,
    pub expires_unix_ms: u64,
    /// The routing state the holder last wrote.
    pub state: Option<RouteState>,
    /// When `state` was first recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_unix_ms: Option<u64>,
}

impl LeaseRecord {
    /// When `state` was first recorded, if this record records it.
    pub fn since_for(&self, state: RouteState) -> Option<u64> {
        self.since_unix_ms.filter(|_| self.state == Some(state))
    }

    /// The TXT value, quoted as Route53 requires.
    pub fn to_txt(&self) -> String {
        let state = self
            .state
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(|s| format!(" state={s}")))
            .unwrap_or_default();
        let since = self
            .since_unix_ms
            .map(|since| format!(" since={since}"))
            .unwrap_or_default();
        format!(
            "\"holder={} expires={}{state}{since}\"",
            self.holder, self.expires_unix_ms
        )
    }

    /// Parses a TXT value; `None` for anything that is not a twinkle lease.
    pub fn parse(txt: &str) -> Option<LeaseRecord> {
        let inner = txt.trim().strip_prefix('"')?.strip_suffix('"')?;
        let mut holder = None;
        let mut expires = None;
        let mut state = None;
        let mut since = None;
        for field in inner.split(' ') {
            let (key, value) = field.split_once('=')?;
            match key {
                "holder" if valid_holder_id(value) => holder = Some(value.to_owned()),
                "expires" => expires = Some(value.parse().ok()?),
                "state" => {
                    state = Some(serde_json::from_value(serde_json::Value::from(value)).ok()?);
                }
                "since" => since = Some(value.parse().ok()?),
                _ => return None,
            }
        }
        Some(LeaseRecord {
            holder: holder?,
            expires_unix_ms: expires?,
            state,
            since_unix_ms: since,
        })
    }
}

/// What the lease record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseView {
    Absent,
    Present {
        record: LeaseRecord,
        /// The exact value and TTL listed: what a DELETE must repeat.
        raw: String,
        ttl: i64,
    },
}

impl LeaseView {
    pub fn record(&self) -> Option<&LeaseRecord> {
        match self {
            LeaseView::Absent => None,
            LeaseView::Present { record, .. } => Some(record),
        }
    }
}

/// The result of trying to take the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// Now held. `previous` is what the record held before (its `state` is
    /// the last holder's decision) and `change_id` the batch that took it.
    Acquired {
        previous: Option<LeaseRecord>,
        change_id: Option<String>,
    },
    /// Someone else holds a valid lease.
    HeldBy(LeaseRecord),
}

/// One watchdog's side of the lease: what it believes the record holds, and
/// the compare-and-set operations on it.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    holder_id: String,
    duration_ms: u64,
    margin_ms: u64,
    /// The record's content as last read or written; `None` = unknown.
    known: Option<LeaseView>,
}

impl Lease {
    pub fn new(config: &WatchdogConfig) -> Lease {
        Lease {
            name: config.lease_record_name(),
            holder_id: config.holder_id(),
            duration_ms: config.lease.duration_ms,
            margin_ms: config.lease.clock_skew_margin_ms,
            known: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn holder_id(&self) -> &str {
        &self.holder_id
    }

    /// The record as last read or written by this watchdog.
    pub fn known(&self) -> Option<&LeaseRecord> {
        self.known.as_ref().and_then(LeaseView::record)
    }

    /// This watchdog holds the lease and may write, with the skew margin to
    /// spare. Checked right before every weight write.
    pub fn holds(&self, now_unix_ms: u64) -> bool {
        self.known().is_some_and(|r| {
            r.holder == self.holder_id
                && now_unix_ms.saturating_add(self.margin_ms) < r.expires_unix_ms
        })
    }

    /// Held, but past half time: renew.
    pub fn needs_renewal(&self, now_unix_ms: u64) -> bool {
        self.holds(now_unix_ms)
            && self.known().is_some_and(|r| {
                r.expires_unix_ms.saturating_sub(now_unix_ms) < self.duration_ms / 2
            })
    }

    /// Not held, and worth a read: nothing known, or the other holder's
    /// lease has expired (plus the margin). A valid foreign lease costs no
    /// calls until it would expire.
    pub fn should_try(&self, now_unix_ms: u64) -> bool {
        if self.holds(now_unix_ms) {
            return false;
        }
        match self.known() {
            Some(r) if r.holder != self.holder_id => {
                now_unix_ms >= r.expires_unix_ms.saturating_add(self.margin_ms)
            }
            _ => true,
        }
    }

    /// The record this watchdog would write now.
    pub fn next_record(&self, now_unix_ms: u64, state: RouteState) -> LeaseRecord {
        LeaseRecord {
            holder: self.holder_id.clone(),
            expires_unix_ms: now_unix_ms.saturating_add(self.duration_ms),
            state: Some(state),
            since_unix_ms: Some(self.since_for(state, now_unix_ms)),
        }
    }

    /// When `state` was first recorded: kept from the record as last known
    /// while it records the same state, else now.
    fn since_for(&self, state: RouteState, now_unix_ms: u64) -> u64 {
        self.known()
            .and_then(|r| r.since_for(state))
            .unwrap_or(now_unix_ms)
    }

    /// Reads the record; refuses a value that is not a twinkle lease.
    pub async fn refresh(&mut self, route53: &Route53) -> Result<&LeaseView> {
        let view = match route53.read_txt(&self.name).await? {
            None => LeaseView::Absent,
            Some(txt) => {
                let raw = match txt.values.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(Error::ForeignLease {
                            name: self.name.clone(),
                            value: txt.values.join(" "),
                        });
                    }
                };
                let record = LeaseRecord::parse(&raw).ok_or_else(|| Error::ForeignLease {
                    name: self.name.clone(),
                    value: raw.clone(),
                })?;
                LeaseView::Present {
                    record,
                    raw,
                    ttl: txt.ttl,
                }
            }
        };
        Ok(self.known.insert(view))
    }

    /// DELETE the known value (if any) and CREATE `new`.
    fn cas_changes(&self, route53: &Route53, new: &LeaseRecord) -> Result<Vec<Change>> {
        let mut changes = Vec::with_capacity(2);
        match &self.known {
            Some(LeaseView::Present { raw, ttl, .. }) => {
                changes.push(route53.txt_change(ChangeAction::Delete, &self.name, *ttl, raw)?);
            }
            Some(LeaseView::Absent) => {}
            None => {
                return Err(Error::NotLeaseHolder { holder: None });
            }
        }
        changes.push(route53.txt_change(
            ChangeAction::Create,
            &self.name,
            LEASE_TTL,
            &new.to_txt(),
        )?);
        Ok(changes)
    }

    /// Replaces the known record with `new` in one batch together with
    /// `extra` changes (weights), which therefore apply only if the lease
    /// still holds what this watchdog last saw. Returns the change id
    /// (`None` when an earlier, ambiguous attempt turned out to have applied).
    ///
    /// A rejected batch is told apart from a bad one by reading the record
    /// back: our new value → an earlier attempt applied after all; another
    /// value → the compare-and-set lost ([`Error::NotLeaseHolder`]); the
    /// value we expected → the batch itself was bad (the error is returned).
    pub async fn compare_and_set(
        &mut self,
        route53: &Route53,
        new: &LeaseRecord,
        extra: Vec<Change>,
        comment: &str,
    ) -> Result<Option<String>> {
        // Two tries: the second only when our own ambiguous earlier write is
        // what made the first one miss.
        for _ in 0..2 {
            let mut changes = self.cas_changes(route53, new)?;
            changes.extend(extra.iter().cloned());
            let expected = self.known.clone();
            match route53.change(changes, comment).await {
                Ok(change_id) => {
                    self.known = Some(LeaseView::Present {
                        record: new.clone(),
                        raw: new.to_txt(),
                        ttl: LEASE_TTL,
                    });
                    return Ok(Some(change_id));
                }
                Err(error) if error.is_batch_rejected() => {
                    let fresh = self.refresh(route53).await?.clone();
                    if fresh.record() == Some(new) {
                        return Ok(None);
                    }
                    if fresh == expected.unwrap_or(LeaseView::Absent) {
                        return Err(error);
                    }
                    let ours_still_valid = fresh.record().is_some_and(|r| {
                        r.holder == self.holder_id && r.expires_unix_ms > unix_ms_now()
                    });
                    if !ours_still_valid {
                        return Err(Error::NotLeaseHolder {
                            holder: fresh.record().map(|r| r.holder.clone()),
                        });
                    }
                    tracing::info!(lease = %self.name, "an earlier ambiguous lease write applied; retrying from it");
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::NotLeaseHolder {
            holder: self.known().map(|r| r.holder.clone()),
        })
    }

    /// Reads the record and takes it if absent, expired (plus the margin) or
    /// ours. The new record keeps the state the previous one recorded (a
    /// takeover alone decides no routing; the new holder records its own
    /// state once it has read Route53 back) and `state` only when there was
    /// none. `force` takes it even from a valid holder and records `state`
    /// (an operator's command preempts the running watchdog).
    pub async fn acquire(
        &mut self,
        route53: &Route53,
        state: RouteState,
        force: bool,
        extra: Vec<Change>,
        comment: &str,
    ) -> Result<Acquire> {
        let now = unix_ms_now();
        let view = self.refresh(route53).await?.clone();
        let previous = view.record().cloned();
        if let Some(current) = &previous
            && current.holder != self.holder_id
            && now < current.expires_unix_ms.saturating_add(self.margin_ms)
            && !force
        {
            return Ok(Acquire::HeldBy(current.clone()));
        }
        let recorded = match (&previous, force) {
            (
                Some(LeaseRecord {
                    state: Some(kept), ..
                }),
                false,
            ) => *kept,
            _ => state,
        };
        let new = self.next_record(now, recorded);
        let change_id = self.compare_and_set(route53, &new, extra, comment).await?;
        Ok(Acquire::Acquired {
            previous,
            change_id,
        })
    }

    /// Renews a held lease, recording `state`.
    pub async fn renew(&mut self, route53: &Route53, state: RouteState) -> Result<()> {
        let new = self.next_record(unix_ms_now(), state);
        self.compare_and_set(route53, &new, Vec::new(), "twinkle DR lease renewal")
            .await
            .map(drop)
    }

    /// Gives the lease up (expiry now, state kept) so another watchdog can
    /// take it without waiting for expiry.
    pub async fn release(&mut self, route53: &Route53, state: RouteState) -> Result<()> {
        let mut new = self.next_record(unix_ms_now(), state);
        new.expires_unix_ms = unix_ms_now();
        self.compare_and_set(route53, &new, Vec::new(), "twinkle DR lease release")
            .await
            .map(drop)
    }

    /// Forgets the known value, e.g. after losing the lease.
    pub fn forget(&mut self) {
        self.known = None;
    }

    /// A released record for `state` at `now` (expired at once): how a
    /// one-shot command takes the lease and hands it back in one batch.
    pub fn released_record(&self, now_unix_ms: u64, state: RouteState) -> LeaseRecord {
        LeaseRecord {
            holder: self.holder_id.clone(),
            expires_unix_ms: now_unix_ms,
            state: Some(state),
            since_unix_ms: Some(self.since_for(state, now_unix_ms)),
        }
    }

    /// Takes the lease from whoever holds it and writes `new` with `extra`,
    /// retrying when the holder renews in between.
    pub async fn preempt(
        &mut self,
        route53: &Route53,
        new: &LeaseRecord,
        extra: Vec<Change>,
        comment: &str,
    ) -> Result<(Option<LeaseRecord>, Option<String>)> {
        let mut last = None;
        for _ in 0..3 {
            let previous = self.refresh(route53).await?.record().cloned();
            match self
                .compare_and_set(route53, new, extra.clone(), comment)
                .await
            {
                Ok(change_id) => return Ok((previous, change_id)),
                Err(error @ Error::NotLeaseHolder { .. }) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(Error::NotLeaseHolder { holder: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_round_trips_and_is_quoted() {
        let record = LeaseRecord {
            holder: "sg-ecs-1.example-42".to_owned(),
            expires_unix_ms: 1_790_000_000_123,
            state: Some(RouteState::OverrideDrEks),
            since_unix_ms: Some(1_789_999_000_000),
        };
        let txt = record.to_txt();
        assert_eq!(
            txt,
            "\"holder=sg-ecs-1.example-42 expires=1790000000123 state=overrideDrEks since=1789999000000\""
        );
        assert_eq!(LeaseRecord::parse(&txt), Some(record));
        let plain = LeaseRecord::parse("\"holder=a expires=5\"").unwrap();
        assert_eq!(plain.state, None);
        assert_eq!(plain.since_unix_ms, None);
    }

    #[test]
    fn anything_else_is_not_a_lease() {
        for txt in [
            "holder=a expires=5",
            "\"v=spf1 include:example.com ~all\"",
            "\"holder=a\"",
            "\"holder=a expires=soon\"",
            "\"holder=a expires=5 owner=b\"",
            "\"holder=a b expires=5\"",
            "\"holder=a expires=5 state=sideways\"",
            "\"holder=a expires=5 since=yesterday\"",
        ] {
            assert_eq!(LeaseRecord::parse(txt), None, "{txt}");
        }
    }
}
