//! The TicketEvent status: conditions, phase, sizing, written by
//! server-side apply on the status subresource.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
#[cfg(test)]
use twinkle_crd::TicketEvent;
use twinkle_crd::{ConditionType, Phase, SizingStatus, TicketEventStatus};

use crate::{plan::Plan, sizing::Workload};

/// One condition as the reconcile decided it.
#[derive(Debug, Clone)]
pub struct Cond {
    pub type_: ConditionType,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Cond {
    pub fn new(type_: ConditionType, ok: bool, reason: &'static str, message: String) -> Self {
        Self {
            type_,
            ok,
            reason,
            message,
        }
    }
}

/// `Ready` is the conjunction of the others.
pub fn with_ready(mut conds: Vec<Cond>) -> Vec<Cond> {
    let not_ready: Vec<&str> = conds
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.type_.as_str())
        .collect();
    let ready = if not_ready.is_empty() {
        Cond::new(
            ConditionType::Ready,
            true,
            "AllReady",
            "topics, workloads and DNS are as planned".into(),
        )
    } else {
        Cond::new(
            ConditionType::Ready,
            false,
            "NotReady",
            format!("not ready: {}", not_ready.join(", ")),
        )
    };
    conds.insert(0, ready);
    conds
}

/// The status to apply: conditions keep their lastTransitionTime while
/// their status does not change.
#[cfg(test)]
pub fn build(
    event: &TicketEvent,
    plan: &Plan,
    conds: &[Cond],
    now: Timestamp,
) -> TicketEventStatus {
    build_from(
        event.metadata.generation,
        event.status.as_ref(),
        plan,
        conds,
        now,
    )
}

/// [`build`] from the generation and the status last written (the
/// resource's, or the status writer's fresher copy). `dr` is kept from
/// `previous`; the writer replaces it.
pub fn build_from(
    generation: Option<i64>,
    previous: Option<&TicketEventStatus>,
    plan: &Plan,
    conds: &[Cond],
    now: Timestamp,
) -> TicketEventStatus {
    let conditions = conds
        .iter()
        .map(|c| {
            let status = if c.ok { "True" } else { "False" };
            let since = previous
                .and_then(|s| s.conditions.iter().find(|p| p.type_ == c.type_.as_str()))
                .filter(|p| p.status == status)
                .map_or(Time(now), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.as_str().to_owned(),
                status: status.to_owned(),
                reason: c.reason.to_owned(),
                message: c.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect();
    let ready = conds.iter().all(|c| c.ok);
    let was_ready = previous.and_then(|s| s.phase) == Some(Phase::Ready);
    let phase = match (ready, was_ready) {
        (true, _) => Phase::Ready,
        (false, true) => Phase::Degraded,
        (false, false) => Phase::Provisioning,
    };
    let replicas = |w: Workload| {
        plan.workloads
            .iter()
            .find(|p| p.workload == w)
            .map_or(0, |p| i32::try_from(p.replicas_now).unwrap_or(i32::MAX))
    };
    let sizing = SizingStatus {
        queue_api: replicas(Workload::QueueApi),
        booking_api: replicas(Workload::BookingApi),
        queue_consumer: replicas(Workload::QueueConsumer),
        booking_consumer: replicas(Workload::BookingConsumer),
        partitions: plan
            .topics
            .first()
            .map_or(0, |t| i32::try_from(t.partitions).unwrap_or(i32::MAX)),
        per_pod_rps: i32::try_from(plan.sizing.per_pod_rps).unwrap_or(i32::MAX),
        summary: format!(
            "{}/{}/{}/{}",
            replicas(Workload::QueueApi),
            replicas(Workload::BookingApi),
            replicas(Workload::QueueConsumer),
            replicas(Workload::BookingConsumer)
        ),
    };
    TicketEventStatus {
        observed_generation: generation,
        phase: Some(phase),
        window: Some(plan.window.window),
        next_window_change: plan.window.next_change,
        conditions,
        sizing: Some(sizing),
        dr: previous.and_then(|s| s.dr.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::workloads::tests::event;

    fn conds(topics: bool) -> Vec<Cond> {
        with_ready(vec![
            Cond::new(ConditionType::TopicsReady, topics, "R", "m".into()),
            Cond::new(ConditionType::WorkloadsReady, true, "R", "m".into()),
            Cond::new(ConditionType::DnsReady, true, "NotManaged", "m".into()),
        ])
    }

    #[test]
    fn ready_is_all_and_transitions_keep_their_time() {
        let mut te = event();
        te.metadata.generation = Some(3);
        let t0: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-12-05T00:01:00Z".parse().unwrap();
        let plan = Plan::new(&te, "popup", t0).unwrap();

        let first = build(&te, &plan, &conds(true), t0);
        assert_eq!(first.phase, Some(Phase::Ready));
        assert_eq!(first.observed_generation, Some(3));
        assert_eq!(first.conditions[0].type_, "Ready");
        assert_eq!(first.conditions[0].status, "True");
        te.status = Some(first);

        // Same statuses later: the transition times stay.
        let again = build(&te, &plan, &conds(true), t1);
        assert!(
            again
                .conditions
                .iter()
                .all(|c| c.last_transition_time.0 == t0)
        );

        // Topics drop: Ready flips (new time), the phase says Degraded.
        let worse = build(&te, &plan, &conds(false), t1);
        assert_eq!(worse.phase, Some(Phase::Degraded));
        let ready = &worse.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.0),
            ("False", t1)
        );
        assert!(ready.message.contains("TopicsReady"));
        let dns = worse
            .conditions
            .iter()
            .find(|c| c.type_ == "DnsReady")
            .unwrap();
        assert_eq!(dns.last_transition_time.0, t0);
    }
}
