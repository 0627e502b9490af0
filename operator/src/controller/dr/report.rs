//! From what a running watchdog knows to what the TicketEvent says: the
//! `DnsReady` condition, `status.dr`, and the text of the Events for
//! transitions. Pure, so every mapping is unit-tested.

use jiff::Timestamp;
use twinkle_crd::{
    ConditionType, DrHealth, DrHealthStatus, DrStatus, DrTargetName, DrTransitionStatus,
    Weights as CrdWeights,
};
use twinkle_dr::{Alarm, Health, RouteState, Target, Transition, TransitionReason, Weights};
use twinkle_watchdog::WatchdogStatus;

use super::adapter::{Pin, sole_target};
use crate::controller::status::Cond;

/// What to do with `status.dr`.
#[derive(Debug, Clone, PartialEq)]
pub enum DrField {
    /// Leave it as last written (nothing better known yet).
    Keep,
    Set(Box<DrStatus>),
    /// No DR section any more.
    Clear,
}

/// The DNS half of a TicketEvent's status.
#[derive(Debug, Clone)]
pub struct DnsReport {
    pub cond: Cond,
    pub dr: DrField,
}

impl DnsReport {
    fn new(ok: bool, reason: &'static str, message: String, dr: DrField) -> DnsReport {
        DnsReport {
            cond: Cond::new(ConditionType::DnsReady, ok, reason, message),
            dr,
        }
    }

    /// Event without `spec.dr`.
    pub fn not_managed() -> DnsReport {
        DnsReport::new(
            true,
            "NotManaged",
            "spec.dr is unset: no DNS records to manage".into(),
            DrField::Clear,
        )
    }

    /// A `spec.dr` that cannot become a watchdog config.
    pub fn invalid(why: &str) -> DnsReport {
        DnsReport::new(false, "InvalidDrSpec", why.to_owned(), DrField::Keep)
    }

    /// Watchdog task registered, nothing heard from it yet.
    pub fn starting() -> DnsReport {
        DnsReport::new(
            false,
            "Starting",
            "DR watchdog starting: reading Route53 and taking the lease".into(),
            DrField::Keep,
        )
    }

    /// Same condition and same `status.dr`: no status write needed.
    pub fn same_as(&self, other: &DnsReport) -> bool {
        self.cond.ok == other.cond.ok
            && self.cond.reason == other.cond.reason
            && self.cond.message == other.cond.message
            && self.dr == other.dr
    }
}

/// Everything the mapping looks at.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The running watchdog's snapshot; `None` before it ran.
    pub snapshot: Option<&'a WatchdogStatus>,
    /// Why the watchdog could not start (Route53 unreadable), if it could
    /// not.
    pub start_error: Option<&'a str>,
    pub record_name: &'a str,
    pub pin: Pin,
    /// The target the operator pinned (for `status.dr.pinnedBySpec`).
    pub applied: Option<Target>,
    pub last_transition: Option<&'a DrTransitionStatus>,
    pub now_unix_ms: u64,
}

/// `status.dr.state`: the machine's own vocabulary (`normal`,
/// `drEcsOnly`, `drSplit`, `drEks`, `overridePrimary`, ...).
pub fn state_name(state: RouteState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{state:?}"))
}

/// The condition reason for traffic being where `state` puts it.
fn state_reason(state: RouteState) -> &'static str {
    match state {
        RouteState::Normal => "Primary",
        RouteState::DrEcsOnly | RouteState::DrSplit | RouteState::DrEks => "FailedOver",
        RouteState::OverridePrimary | RouteState::OverrideDrEks | RouteState::OverrideDrEcs => {
            "ManualOverride"
        }
    }
}

fn crd_weights(w: Weights) -> CrdWeights {
    CrdWeights {
        primary: i32::from(w.primary),
        dr_eks: i32::from(w.dr_eks),
        dr_ecs: i32::from(w.dr_ecs),
    }
}

fn target_name(t: Target) -> DrTargetName {
    match t {
        Target::Primary => DrTargetName::Primary,
        Target::DrEks => DrTargetName::DrEks,
        Target::DrEcs => DrTargetName::DrEcs,
    }
}

fn crd_health(h: Health) -> DrHealth {
    match h {
        Health::Unknown => DrHealth::Unknown,
        Health::Up => DrHealth::Up,
        Health::Down => DrHealth::Down,
    }
}

fn alarm_name(alarm: Alarm) -> String {
    match alarm {
        Alarm::NoHealthyTarget => "noHealthyTarget".to_owned(),
        Alarm::OverrideTargetDown { target } => format!("overrideTargetDown({target})"),
    }
}

/// The state the records say traffic is in, as seen by a watchdog that
/// may not hold the lease: the holder's recorded state when its weights
/// are the ones in Route53, else the automatic state with those weights.
fn routed_state(status: &WatchdogStatus, machine: RouteState) -> RouteState {
    if status.lease.held {
        return machine;
    }
    let Some(weights) = status.route53_weights else {
        return machine;
    };
    status
        .lease
        .record
        .as_ref()
        .and_then(|r| r.state)
        .filter(|s| s.weights() == weights)
        .or_else(|| RouteState::from_weights(weights))
        .unwrap_or(machine)
}

/// The condition and `status.dr` for one moment of a watchdog task.
pub fn report(view: &View<'_>) -> DnsReport {
    let Some((status, machine)) = view
        .snapshot
        .and_then(|s| s.machine.as_ref().map(|m| (s, m)))
    else {
        return match view.start_error {
            Some(error) => DnsReport::new(
                false,
                "Route53Unreachable",
                format!(
                    "cannot read the Route53 records of {}: {error}; retrying",
                    view.record_name
                ),
                DrField::Keep,
            ),
            None => DnsReport::starting(),
        };
    };
    let state = routed_state(status, machine.state);
    let live_record = status
        .lease
        .record
        .as_ref()
        .filter(|r| r.expires_unix_ms > view.now_unix_ms);
    let holder = if status.lease.held {
        Some(status.holder_id.clone())
    } else {
        live_record.map(|r| r.holder.clone())
    };
    let dr = match status.route53_weights {
        None => DrField::Keep,
        Some(weights) => DrField::Set(Box::new(DrStatus {
            state: state_name(state),
            weights: crd_weights(weights),
            since: view.last_transition.map(|t| t.time),
            message: view.last_transition.map(|t| t.message.clone()),
            lease_holder: holder.clone(),
            last_transition: view.last_transition.cloned(),
            health: Some(DrHealthStatus {
                primary: crd_health(machine.health.primary.health),
                dr_eks: crd_health(machine.health.dr_eks.health),
                dr_ecs: crd_health(machine.health.dr_ecs.health),
            }),
            alarms: machine.alarms.iter().copied().map(alarm_name).collect(),
            pinned_by_spec: view.applied.map(target_name),
        })),
    };
    let shown = status
        .route53_weights
        .map_or_else(|| "no weighted records".to_owned(), |w| w.to_string());
    let (ok, reason, message) = if let Some(error) = &status.route53_error {
        (
            false,
            "Route53Unreachable",
            format!(
                "Route53 calls fail: {error}; Route53 last showed {shown} and weights cannot \
                 change until it answers"
            ),
        )
    } else if machine.alarms.contains(&Alarm::NoHealthyTarget) {
        (
            false,
            "AllTargetsDown",
            format!(
                "no target is healthy: keeping {shown} ({state}) rather than spreading traffic \
                 over dead targets"
            ),
        )
    } else if let Some(target) = machine.alarms.iter().find_map(|a| match a {
        Alarm::OverrideTargetDown { target } => Some(*target),
        Alarm::NoHealthyTarget => None,
    }) {
        (
            false,
            "OverrideTargetDown",
            format!("the override pins all traffic on {target}, which is down"),
        )
    } else if let Pin::Unsupported(w) = view.pin {
        (
            false,
            "OverrideNotSupported",
            format!(
                "manualOverride {}/{}/{} splits traffic, but the watchdog pins one target \
                 (e.g. 0/0/100); not applied, routing stays {shown} ({state})",
                w.primary, w.dr_eks, w.dr_ecs
            ),
        )
    } else if view.pin == Pin::HoldCurrent
        && state.pinned_target().is_none()
        && sole_target(state.weights()).is_none()
    {
        (
            false,
            "ManualHoldNotPossible",
            format!(
                "mode Manual holds a single target, but traffic is split {shown}; set \
                 manualOverride to the target to keep"
            ),
        )
    } else if status.lease.held {
        let wanted = machine.weights;
        match (&status.last_write, status.route53_weights) {
            (_, current) if current != Some(wanted) => (
                false,
                "WeightsPending",
                format!("writing {wanted} ({state}); Route53 has {shown}"),
            ),
            (Some(write), _) if write.weights == wanted && write.insync_ms.is_none() => (
                false,
                "InsyncPending",
                format!(
                    "{wanted} ({state}) written in change {}; waiting for INSYNC",
                    write.change_id.as_deref().unwrap_or("?")
                ),
            ),
            _ => (
                true,
                state_reason(state),
                format!(
                    "{wanted} ({state}) in Route53 and INSYNC; lease held by this operator ({})",
                    status.holder_id
                ),
            ),
        }
    } else if let Some(record) = live_record.filter(|r| r.holder != status.holder_id) {
        match status.route53_weights {
            Some(weights) => (
                true,
                state_reason(state),
                format!(
                    "{weights} ({state}) in Route53, written by lease holder {}; this \
                     operator's watchdog probes and stands by",
                    record.holder
                ),
            ),
            None => (
                false,
                "NoWeights",
                format!(
                    "no weighted records for {} yet; lease holder {} has not written them",
                    view.record_name, record.holder
                ),
            ),
        }
    } else {
        (
            false,
            "AcquiringLease",
            format!(
                "taking the Route53 lease {} before writing weights",
                status.lease.name
            ),
        )
    };
    DnsReport::new(ok, reason, message, dr)
}

/// Why a transition happened, as a machine-readable token.
pub fn reason_token(reason: TransitionReason) -> &'static str {
    match reason {
        TransitionReason::TargetDown { .. } => "TargetDown",
        TransitionReason::DrEksHealthy { .. } => "DrEksHealthy",
        TransitionReason::DrEksSplitProven { .. } => "DrEksSplitProven",
        TransitionReason::PrimaryHealthy { .. } => "PrimaryHealthy",
        TransitionReason::OperatorFailover { .. } => "OperatorFailover",
        TransitionReason::OperatorFailback => "OperatorFailback",
        TransitionReason::OperatorClearedOverride => "OperatorClearedOverride",
    }
}

/// "100/0/0 → 0/0/100: primary down, DR EKS not ready (normal → DR ECS
/// only)": the Event note and `lastTransition.message`.
pub fn transition_message(t: &Transition) -> String {
    let secs = |ms: twinkle_dr::Millis| ms.as_millis() / 1_000;
    let cause = match t.reason {
        TransitionReason::TargetDown { target } => {
            let mut cause = format!("{target} down");
            for other in Target::ALL {
                if other != target && t.weights.get(other) == 0 && t.health[other] != Health::Up {
                    cause.push_str(&format!(", {other} not ready"));
                }
            }
            cause
        }
        TransitionReason::DrEksHealthy { healthy_for_ms } => format!(
            "DR EKS healthy for {}s: it shares with DR ECS",
            secs(healthy_for_ms)
        ),
        TransitionReason::DrEksSplitProven { split_for_ms } => format!(
            "DR EKS served half the traffic for {}s: it takes everything",
            secs(split_for_ms)
        ),
        TransitionReason::PrimaryHealthy { healthy_for_ms } => format!(
            "primary healthy for {}s: automatic failback",
            secs(healthy_for_ms)
        ),
        TransitionReason::OperatorFailover { target } => {
            format!("override: everything to {target}")
        }
        TransitionReason::OperatorFailback => "failback to the primary by an operator".to_owned(),
        TransitionReason::OperatorClearedOverride => {
            "override cleared: automatic control resumes".to_owned()
        }
    };
    format!(
        "{} → {}: {cause} ({} → {})",
        t.from.weights(),
        t.weights,
        t.from,
        t.to
    )
}

/// The status record of a transition seen at `time`.
pub fn transition_status(t: &Transition, time: Timestamp) -> DrTransitionStatus {
    DrTransitionStatus {
        time,
        reason: reason_token(t.reason).to_owned(),
        message: transition_message(t),
        from: state_name(t.from),
        to: state_name(t.to),
        manual: t.manual,
    }
}

/// Transitions in `all` (oldest first) after the last one already
/// announced; all of them when it is no longer there.
pub fn new_transitions<'a>(
    all: impl DoubleEndedIterator<Item = &'a Transition> + ExactSizeIterator,
    last_seen: Option<&Transition>,
) -> Vec<&'a Transition> {
    let all: Vec<&Transition> = all.collect();
    let start = last_seen
        .and_then(|seen| all.iter().rposition(|t| *t == seen))
        .map_or(0, |i| i + 1);
    all[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinkle_dr::{Command, Config, FailoverMachine, Millis, Observation, TargetObservation};
    use twinkle_watchdog::{LeaseRecord, LeaseStatus, WriteRecord};

    const NOW: u64 = 1_800_000_000_000;

    /// A machine driven into `ups` (per target: probe healthy or not) for
    /// enough rounds to decide.
    fn machine(ups: [bool; 3], rounds: u64) -> (FailoverMachine, Vec<Transition>) {
        let mut m = FailoverMachine::new(Config::default(), Millis::ZERO).unwrap();
        let mut transitions = Vec::new();
        for i in 1..=rounds {
            let obs = twinkle_dr::PerTarget::from_fn(|t| TargetObservation {
                probe: Some(Observation::from(ups[t as usize])),
                route53: None,
            });
            let step = m.observe(Millis(i * 1_000), &obs).unwrap();
            transitions.extend(step.transitions);
        }
        (m, transitions)
    }

    fn holding(m: &FailoverMachine, route53: Option<Weights>) -> WatchdogStatus {
        WatchdogStatus {
            holder_id: "op-0:ns.e".into(),
            running: true,
            machine: Some(m.status()),
            route53_weights: route53,
            lease: LeaseStatus {
                name: "_twinkle-dr-lease.t.example.".into(),
                held: true,
                record: Some(LeaseRecord {
                    holder: "op-0:ns.e".into(),
                    expires_unix_ms: NOW + 20_000,
                    state: Some(m.state()),
                    since_unix_ms: None,
                }),
            },
            ..WatchdogStatus::default()
        }
    }

    fn view<'a>(s: &'a WatchdogStatus, pin: Pin) -> View<'a> {
        View {
            snapshot: Some(s),
            start_error: None,
            record_name: "t.example.",
            pin,
            applied: None,
            last_transition: None,
            now_unix_ms: NOW,
        }
    }

    fn dr_of(r: &DnsReport) -> &DrStatus {
        match &r.dr {
            DrField::Set(dr) => dr,
            other => panic!("no status.dr: {other:?}"),
        }
    }

    #[test]
    fn before_the_watchdog_runs_it_is_starting_or_unreachable() {
        let mut v = View {
            snapshot: None,
            start_error: None,
            record_name: "t.example.",
            pin: Pin::None,
            applied: None,
            last_transition: None,
            now_unix_ms: NOW,
        };
        let r = report(&v);
        assert_eq!((r.cond.ok, r.cond.reason), (false, "Starting"));
        assert_eq!(r.dr, DrField::Keep);
        v.start_error = Some("connection refused");
        let r = report(&v);
        assert_eq!((r.cond.ok, r.cond.reason), (false, "Route53Unreachable"));
        assert!(r.cond.message.contains("connection refused"));
    }

    #[test]
    fn written_and_insync_is_ready_with_the_state_as_reason() {
        let (m, _) = machine([true, true, true], 5);
        let mut s = holding(&m, Some(Weights::new(100, 0, 0)));
        s.last_write = Some(WriteRecord {
            weights: Weights::new(100, 0, 0),
            state: RouteState::Normal,
            change_id: Some("C1".into()),
            at_unix_ms: NOW,
            decided_to_written_ms: 10,
            call_ms: 5,
            insync_ms: None,
        });
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "InsyncPending"));
        s.last_write.as_mut().unwrap().insync_ms = Some(3);
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (true, "Primary"), "{r:?}");
        let dr = dr_of(&r);
        assert_eq!(dr.state, "normal");
        assert_eq!(dr.weights, CrdWeights::NORMAL);
        assert_eq!(dr.lease_holder.as_deref(), Some("op-0:ns.e"));
        assert_eq!(dr.health.unwrap().primary, DrHealth::Up);
        assert!(dr.alarms.is_empty());

        // Weights not yet in Route53: pending, status.dr shows Route53's.
        let s = holding(&m, None);
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "WeightsPending"));
        assert_eq!(r.dr, DrField::Keep);
    }

    #[test]
    fn failover_maps_to_failed_over_and_its_event_text() {
        // Primary down, DR EKS never seen up: everything to DR ECS.
        let (m, transitions) = machine([false, false, true], 5);
        assert_eq!(m.state(), RouteState::DrEcsOnly);
        let s = holding(&m, Some(Weights::new(0, 0, 100)));
        let t = transitions.last().unwrap();
        let last = transition_status(t, Timestamp::UNIX_EPOCH);
        let mut v = view(&s, Pin::None);
        v.last_transition = Some(&last);
        let r = report(&v);
        assert_eq!((r.cond.ok, r.cond.reason), (true, "FailedOver"));
        let dr = dr_of(&r);
        assert_eq!(dr.state, "drEcsOnly");
        assert_eq!(
            dr.weights,
            CrdWeights {
                primary: 0,
                dr_eks: 0,
                dr_ecs: 100
            }
        );
        let lt = dr.last_transition.as_ref().unwrap();
        assert_eq!(lt.reason, "TargetDown");
        assert_eq!(
            lt.message,
            "100/0/0 → 0/0/100: primary down, DR EKS not ready (normal → DR ECS only)"
        );
        assert_eq!((lt.from.as_str(), lt.to.as_str()), ("normal", "drEcsOnly"));
        assert_eq!(dr.since, Some(Timestamp::UNIX_EPOCH));
        assert_eq!(dr.health.unwrap().primary, DrHealth::Down);
    }

    #[test]
    fn all_targets_down_is_an_alarm_not_a_move() {
        let (m, transitions) = machine([false, false, false], 5);
        assert!(transitions.is_empty());
        let s = holding(&m, Some(Weights::new(100, 0, 0)));
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "AllTargetsDown"));
        assert!(r.cond.message.contains("100/0/0"), "{}", r.cond.message);
        assert_eq!(dr_of(&r).alarms, ["noHealthyTarget"]);
    }

    #[test]
    fn route53_errors_win_over_everything_else() {
        let (m, _) = machine([true, true, true], 5);
        let mut s = holding(&m, Some(Weights::new(100, 0, 0)));
        s.route53_error = Some("Route53 ListResourceRecordSets failed: dispatch failure".into());
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "Route53Unreachable"));
        assert!(r.cond.message.contains("dispatch failure"));
    }

    #[test]
    fn overrides_report_what_the_machine_cannot_do() {
        let (mut m, _) = machine([true, true, true], 5);
        let s = holding(&m, Some(Weights::new(100, 0, 0)));
        let split = CrdWeights {
            primary: 0,
            dr_eks: 50,
            dr_ecs: 50,
        };
        let r = report(&view(&s, Pin::Unsupported(split)));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "OverrideNotSupported"));

        m.command(
            Millis(10_000),
            Command::FailoverTo {
                target: Target::DrEks,
            },
        )
        .unwrap();
        let s = holding(&m, Some(Weights::new(0, 100, 0)));
        let mut v = view(&s, Pin::Target(Target::DrEks));
        v.applied = Some(Target::DrEks);
        let r = report(&v);
        assert_eq!((r.cond.ok, r.cond.reason), (true, "ManualOverride"));
        assert_eq!(dr_of(&r).state, "overrideDrEks");
        assert_eq!(dr_of(&r).pinned_by_spec, Some(DrTargetName::DrEks));
    }

    #[test]
    fn a_standby_reports_the_holders_routing() {
        let (m, _) = machine([true, true, true], 5);
        let mut s = holding(&m, Some(Weights::new(0, 0, 100)));
        s.lease.held = false;
        s.lease.record = Some(LeaseRecord {
            holder: "sg-ecs-watchdog".into(),
            expires_unix_ms: NOW + 10_000,
            state: Some(RouteState::OverrideDrEcs),
            since_unix_ms: None,
        });
        let r = report(&view(&s, Pin::None));
        assert_eq!(
            (r.cond.ok, r.cond.reason),
            (true, "ManualOverride"),
            "{r:?}"
        );
        assert!(r.cond.message.contains("sg-ecs-watchdog"));
        let dr = dr_of(&r);
        assert_eq!(dr.state, "overrideDrEcs");
        assert_eq!(dr.lease_holder.as_deref(), Some("sg-ecs-watchdog"));

        // Expired and not ours: taking it.
        s.lease.record.as_mut().unwrap().expires_unix_ms = NOW - 1;
        let r = report(&view(&s, Pin::None));
        assert_eq!((r.cond.ok, r.cond.reason), (false, "AcquiringLease"));
        assert_eq!(dr_of(&r).lease_holder, None);
    }

    #[test]
    fn only_unseen_transitions_are_announced() {
        let (_, ts) = machine([false, false, true], 5);
        let mut m2 =
            FailoverMachine::resume(Config::default(), RouteState::DrEcsOnly, Millis(0)).unwrap();
        let more = m2
            .command(
                Millis(1),
                Command::FailoverTo {
                    target: Target::Primary,
                },
            )
            .unwrap()
            .transitions;
        let all: Vec<Transition> = ts.iter().chain(more.iter()).cloned().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(new_transitions(all.iter(), None).len(), 2);
        let fresh = new_transitions(all.iter(), Some(&all[0]));
        assert_eq!(fresh, [&all[1]]);
        assert!(new_transitions(all.iter(), Some(&all[1])).is_empty());
        assert_eq!(
            transition_message(&all[1]),
            "0/0/100 → 100/0/0: override: everything to primary (DR ECS only → override: primary)"
        );
    }
}
