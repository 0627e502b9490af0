//! Prometheus metrics of the watchdog, registered under `twinkle_dr_`.
//!
//! Few on purpose: what an on-call human asks first — where is traffic,
//! who holds the lease, is a target failing, did we move, is Route53
//! pushing back.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use twinkle_dr::{Alarm, Ownership, Region, RouteState, Target, Weights};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub from: String,
    pub to: String,
    pub manual: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlarmLabels {
    /// `noHealthyTarget` (every target down: the last weights are kept) or
    /// `overrideTargetDown`.
    pub alarm: &'static str,
    /// The target an override pins on; empty for `noHealthyTarget`.
    pub target: &'static str,
}

impl AlarmLabels {
    fn of(alarm: Alarm) -> AlarmLabels {
        match alarm {
            Alarm::NoHealthyTarget => AlarmLabels {
                alarm: "noHealthyTarget",
                target: "",
            },
            Alarm::OverrideTargetDown { target } => AlarmLabels {
                alarm: "overrideTargetDown",
                target: target_label(target),
            },
        }
    }
}

/// The watchdog's metrics. Clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// State transitions, by from/to state and whether a human caused them.
    pub transitions: Family<TransitionLabels, Counter>,
    /// The weight per target last written to (or read from) Route53.
    pub weight: Family<TargetLabels, Gauge>,
    /// Failed probes per target (single failures, before any hysteresis).
    pub probe_failures: Family<TargetLabels, Counter>,
    /// 1 while this watchdog holds the lease.
    pub lease_held: Gauge,
    /// Weight change batches accepted by Route53.
    pub route53_writes: Counter,
    /// Route53 calls retried (throttling, PriorRequestNotComplete, 5xx).
    pub route53_retries: Counter,
    /// 1 while an alarm is raised in this watchdog's machine (a standby's
    /// too: its machine sees the same targets), else 0.
    pub alarm: Family<AlarmLabels, Gauge>,
    /// The ownership record's epoch as last read or written.
    pub owner_epoch: Gauge,
    /// 1 for the region that sells (as last read or written), 0 for the
    /// other.
    pub selling_region: Family<RegionLabels, Gauge>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabels {
    pub region: &'static str,
}

/// Label value of a target: the names the config and status use.
pub fn target_label(target: Target) -> &'static str {
    crate::config::target_key(target)
}

fn state_label(state: RouteState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{state:?}"))
}

impl Metrics {
    /// Creates the metrics and registers them into `registry` (under the
    /// `twinkle_dr` prefix).
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics::default();
        let registry = registry.sub_registry_with_prefix("twinkle_dr");
        registry.register(
            "transitions",
            "DR state transitions",
            metrics.transitions.clone(),
        );
        registry.register(
            "weight",
            "Route53 weight per target as last written or read",
            metrics.weight.clone(),
        );
        registry.register(
            "probe_failures",
            "Failed health probes per target",
            metrics.probe_failures.clone(),
        );
        registry.register(
            "lease_held",
            "1 while this watchdog holds the DR lease",
            metrics.lease_held.clone(),
        );
        registry.register(
            "route53_writes",
            "Weight change batches accepted by Route53",
            metrics.route53_writes.clone(),
        );
        registry.register(
            "alarm",
            "1 while a DR alarm is raised (noHealthyTarget: every target down)",
            metrics.alarm.clone(),
        );
        registry.register(
            "owner_epoch",
            "Epoch of the ownership record (grows by one per change of selling region)",
            metrics.owner_epoch.clone(),
        );
        registry.register(
            "selling_region",
            "1 for the region whose deciders may sell",
            metrics.selling_region.clone(),
        );
        registry.register(
            "route53_retries",
            "Route53 calls retried after throttling or server errors",
            metrics.route53_retries.clone(),
        );
        metrics
    }

    pub(crate) fn record_transition(&self, from: RouteState, to: RouteState, manual: bool) {
        self.transitions
            .get_or_create(&TransitionLabels {
                from: state_label(from),
                to: state_label(to),
                manual,
            })
            .inc();
    }

    pub(crate) fn set_weights(&self, weights: Weights) {
        for target in Target::ALL {
            self.weight
                .get_or_create(&TargetLabels {
                    target: target_label(target),
                })
                .set(i64::from(weights.get(target)));
        }
    }

    pub(crate) fn probe_failed(&self, target: Target) {
        self.probe_failures
            .get_or_create(&TargetLabels {
                target: target_label(target),
            })
            .inc();
    }

    pub(crate) fn set_alarm(&self, alarm: Alarm, raised: bool) {
        self.alarm
            .get_or_create(&AlarmLabels::of(alarm))
            .set(i64::from(raised));
    }

    pub(crate) fn set_ownership(&self, ownership: Ownership) {
        self.owner_epoch
            .set(i64::try_from(ownership.epoch).unwrap_or(i64::MAX));
        for region in Region::ALL {
            self.selling_region
                .get_or_create(&RegionLabels {
                    region: region.as_str(),
                })
                .set(i64::from(region == ownership.region));
        }
    }

    pub(crate) fn set_lease_held(&self, held: bool) {
        self.lease_held.set(i64::from(held));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registered_metrics_encode_with_prefix() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.record_transition(RouteState::Normal, RouteState::DrEcsOnly, false);
        metrics.set_weights(Weights::new(0, 0, 100));
        metrics.probe_failed(Target::Primary);
        metrics.set_lease_held(true);
        metrics.set_alarm(Alarm::NoHealthyTarget, true);
        metrics.set_alarm(
            Alarm::OverrideTargetDown {
                target: Target::DrEks,
            },
            false,
        );
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for expected in [
            "twinkle_dr_transitions_total{from=\"normal\",to=\"drEcsOnly\",manual=\"false\"} 1",
            "twinkle_dr_weight{target=\"drEcs\"} 100",
            "twinkle_dr_probe_failures_total{target=\"primary\"} 1",
            "twinkle_dr_lease_held 1",
            "twinkle_dr_route53_writes_total 0",
            "twinkle_dr_alarm{alarm=\"noHealthyTarget\",target=\"\"} 1",
            "twinkle_dr_alarm{alarm=\"overrideTargetDown\",target=\"drEks\"} 0",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
