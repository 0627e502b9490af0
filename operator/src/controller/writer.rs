//! The one writer of a TicketEvent's status.
//!
//! Two sources feed the status: the reconcile (topics, workloads, sizing,
//! window) and the event's DR watchdog task (`DnsReady`, `status.dr`).
//! Both write by server-side apply with the controller's one field
//! manager, and an apply with one manager replaces everything that
//! manager applied before: a DR-only patch would wipe the conditions the
//! reconcile set, and the reconcile's patch would wipe (or roll back)
//! `status.dr`. So neither patches on its own. Each hands its part to this
//! writer, which keeps the latest of both per event and applies the whole
//! status, one write at a time per event (a per-event async lock), always
//! composed from the latest parts: a reconcile that read an older DR state
//! cannot roll a newer one back.
//!
//! A DR transition therefore reaches the resource at once (the task calls
//! [`StatusWriter::write_dr`]), without a full reconcile: a reconcile talks
//! to Kafka first, and an unreachable Kafka (likely in the very outage that
//! caused the failover) would hold the DR status back by its timeouts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use jiff::Timestamp;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use twinkle_crd::{TicketEvent, TicketEventStatus};

use super::{
    FIELD_MANAGER,
    dr::report::{DnsReport, DrField},
    status::{self, Cond},
};
use crate::{Result, plan::Plan};

/// What the reconcile computed, kept so DR updates can be composed with it.
#[derive(Debug, Clone)]
pub struct Base {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    /// The status the resource had when the reconcile read it.
    pub previous: Option<TicketEventStatus>,
    pub plan: Plan,
    /// Every condition but `Ready` (derived) and `DnsReady` (DR's).
    pub conds: Vec<Cond>,
}

/// What the reconcile knows about DNS.
#[derive(Debug, Clone)]
pub enum Dns {
    /// No `spec.dr`.
    NotManaged,
    /// `spec.dr` cannot become a watchdog config: why.
    Invalid(String),
    /// A watchdog task reports it.
    Managed,
}

#[derive(Debug, Default)]
struct Slot {
    base: Option<Base>,
    dns: Option<DnsReport>,
    /// The watchdog task whose reports are accepted (see
    /// [`StatusWriter::begin`]).
    epoch: Option<u64>,
    /// What this process last applied.
    written: Option<TicketEventStatus>,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

/// See the module documentation.
pub struct StatusWriter {
    client: Client,
    slots: Mutex<HashMap<String, SlotRef>>,
}

impl StatusWriter {
    pub fn new(client: Client) -> StatusWriter {
        StatusWriter {
            client,
            slots: Mutex::default(),
        }
    }

    fn slot(&self, key: &str) -> SlotRef {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// The reconcile's part: stored, then the whole status applied.
    pub async fn write_reconciled(&self, key: &str, base: Base, dns: Dns) -> Result<()> {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        match dns {
            Dns::NotManaged => slot.dns = Some(DnsReport::not_managed()),
            Dns::Invalid(why) => slot.dns = Some(DnsReport::invalid(&why)),
            // The task's latest report stands (or "starting" until it has one).
            Dns::Managed => {
                if slot.epoch.is_none() {
                    slot.dns = None;
                }
            }
        }
        slot.base = Some(base);
        self.apply(&mut slot, true).await
    }

    /// A watchdog task's report: applied at once unless the status would
    /// not change. `Ok(false)`: not (or no longer) this task's to report.
    pub async fn write_dr(&self, key: &str, epoch: u64, report: DnsReport) -> Result<bool> {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if slot.epoch != Some(epoch) {
            return Ok(false);
        }
        slot.dns = Some(report);
        self.apply(&mut slot, false).await?;
        Ok(true)
    }

    /// Watchdog task `epoch` now reports `DnsReady` for `key`; earlier
    /// tasks' reports are ignored from here on.
    pub async fn begin(&self, key: &str, epoch: u64) {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        slot.epoch = Some(epoch);
        slot.dns = None;
    }

    /// Task `epoch` is stopping: its late reports are ignored.
    pub async fn end(&self, key: &str, epoch: u64) {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if slot.epoch == Some(epoch) {
            slot.epoch = None;
        }
    }

    /// The event is gone.
    pub fn forget(&self, key: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(key);
        }
    }

    /// Leadership lost: what this process wrote may be overwritten by the
    /// next leader, so none of it is trusted as "previous" any more.
    pub fn clear(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.clear();
        }
    }

    async fn apply(&self, slot: &mut Slot, always: bool) -> Result<()> {
        let Some(status) = compose(slot, Timestamp::now()) else {
            // No reconcile yet: its first write will carry this report.
            return Ok(());
        };
        if !always && slot.written.as_ref() == Some(&status) {
            return Ok(());
        }
        let Some(base) = &slot.base else {
            return Ok(());
        };
        let api: Api<TicketEvent> = Api::namespaced(self.client.clone(), &base.namespace);
        let patch = serde_json::json!({
            "apiVersion": "ticket.twinkle.dev/v1alpha1",
            "kind": "TicketEvent",
            "status": status,
        });
        api.patch_status(
            &base.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        slot.written = Some(status);
        Ok(())
    }
}

/// The whole status from the reconcile's part and the DR report.
fn compose(slot: &Slot, now: Timestamp) -> Option<TicketEventStatus> {
    let base = slot.base.as_ref()?;
    let dns = slot.dns.clone().unwrap_or_else(DnsReport::starting);
    let mut conds = base.conds.clone();
    conds.push(dns.cond);
    let conds = status::with_ready(conds);
    let previous = slot.written.as_ref().or(base.previous.as_ref());
    let mut status = status::build_from(base.generation, previous, &base.plan, &conds, now);
    status.dr = match dns.dr {
        DrField::Keep => previous.and_then(|p| p.dr.clone()),
        DrField::Set(dr) => Some(*dr),
        DrField::Clear => None,
    };
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::workloads::tests::event;
    use twinkle_crd::{ConditionType, DrStatus, Phase, Weights};

    fn base(previous: Option<TicketEventStatus>) -> Base {
        let te = event();
        let t0: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        Base {
            namespace: "popup".into(),
            name: "e".into(),
            generation: Some(2),
            previous,
            plan: Plan::new(&te, "popup", t0).unwrap(),
            conds: vec![
                Cond::new(ConditionType::TopicsReady, true, "R", "m".into()),
                Cond::new(ConditionType::WorkloadsReady, true, "R", "m".into()),
            ],
        }
    }

    fn dr(weights: Weights) -> DrField {
        DrField::Set(Box::new(DrStatus {
            state: "normal".into(),
            weights,
            since: None,
            message: None,
            lease_holder: None,
            last_transition: None,
            health: None,
            alarms: Vec::new(),
            pinned_by_spec: None,
        }))
    }

    fn cond<'a>(s: &'a TicketEventStatus, type_: &str) -> &'a str {
        &s.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
            .status
    }

    #[test]
    fn dns_report_drives_dns_ready_ready_and_status_dr() {
        let t0: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-12-05T00:00:05Z".parse().unwrap();
        let mut slot = Slot {
            base: Some(base(None)),
            ..Slot::default()
        };
        // Nothing from the task yet: starting, not ready.
        let s = compose(&slot, t0).unwrap();
        assert_eq!(cond(&s, "DnsReady"), "False");
        assert_eq!(cond(&s, "Ready"), "False");
        assert_eq!(s.phase, Some(Phase::Provisioning));
        assert_eq!(s.dr, None);
        slot.written = Some(s);

        // Weights written and INSYNC.
        let mut report = DnsReport::starting();
        report.cond = Cond::new(ConditionType::DnsReady, true, "Primary", "ok".into());
        report.dr = dr(Weights::NORMAL);
        slot.dns = Some(report.clone());
        let s = compose(&slot, t1).unwrap();
        assert_eq!(cond(&s, "DnsReady"), "True");
        assert_eq!(cond(&s, "Ready"), "True");
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(s.dr.as_ref().unwrap().weights, Weights::NORMAL);
        // The reconcile's own conditions kept their times from the last write.
        let topics = s
            .conditions
            .iter()
            .find(|c| c.type_ == "TopicsReady")
            .unwrap();
        assert_eq!(topics.last_transition_time.0, t0);
        slot.written = Some(s);

        // Route53 unreachable: status.dr is kept as last known.
        report.cond = Cond::new(
            ConditionType::DnsReady,
            false,
            "Route53Unreachable",
            "down".into(),
        );
        report.dr = DrField::Keep;
        slot.dns = Some(report);
        let s = compose(&slot, t1).unwrap();
        assert_eq!(cond(&s, "DnsReady"), "False");
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.dr.as_ref().unwrap().weights, Weights::NORMAL);
        slot.written = Some(s);

        // spec.dr removed.
        slot.dns = Some(DnsReport::not_managed());
        let s = compose(&slot, t1).unwrap();
        assert_eq!(cond(&s, "DnsReady"), "True");
        assert_eq!(s.dr, None);
    }

    #[test]
    fn nothing_to_write_before_the_first_reconcile() {
        let slot = Slot {
            dns: Some(DnsReport::not_managed()),
            ..Slot::default()
        };
        assert!(compose(&slot, Timestamp::now()).is_none());
    }
}
