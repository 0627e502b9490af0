//! What the machine reports: transitions, alarms, operator commands, and the
//! outcome of each step. All serialize as camelCase JSON for the Kubernetes
//! status, Events and the CLI.

use serde::{Deserialize, Serialize};

use crate::health::{Health, TargetHealth};
use crate::target::{PerTarget, Target};
use crate::time::Millis;
use crate::weights::{RouteState, Weights};

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TransitionReason {
    /// Traffic was on `target` and it went down: moved at once to the best
    /// target still up. No dwell applies — routing to a dead target is worse
    /// than moving twice, and the health hysteresis already filtered noise.
    TargetDown { target: Target },
    /// DR EKS stayed up for `drEksSplitAfterMs`: it now shares with DR ECS.
    DrEksHealthy { healthy_for_ms: Millis },
    /// The 0/50/50 split ran for `drEksFullAfterMs` with DR EKS up: DR EKS
    /// now takes everything.
    DrEksSplitProven { split_for_ms: Millis },
    /// Automatic failback: the primary stayed up for
    /// `automaticFailbackAfterMs`.
    PrimaryHealthy { healthy_for_ms: Millis },
    /// Operator command `FailoverTo`.
    OperatorFailover { target: Target },
    /// Operator command `FailbackToPrimary`.
    OperatorFailback,
    /// Operator command `ClearOverride`: automatic control resumes from the
    /// same weights.
    OperatorClearedOverride,
}

impl TransitionReason {
    /// An escape from a down target, exempt from the minimum dwell.
    pub const fn is_forced(self) -> bool {
        matches!(self, TransitionReason::TargetDown { .. })
    }
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: RouteState,
    pub to: RouteState,
    pub reason: TransitionReason,
    /// The weights of `to`, to be written to Route53.
    pub weights: Weights,
    pub at: Millis,
    /// Caused by an operator command rather than by health or time.
    pub manual: bool,
    /// Each target's verdict when it happened, for the audit trail.
    pub health: PerTarget<Health>,
}

/// A condition a human should look at. Alarms are levels: active while the
/// condition holds, reported as raised/cleared on the step where it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Alarm {
    /// Traffic is on a target that is down and no target is up to take it,
    /// so the last weights are kept (static stability: Route53 treats
    /// all-zero weights as equal weights, spreading traffic over all three).
    NoHealthyTarget,
    /// An operator override pins traffic on a target that is down. The
    /// override is still obeyed: an operator overrides precisely when the
    /// automatic view is wrong (e.g. the watchdog's probes are partitioned).
    OverrideTargetDown { target: Target },
}

/// An operator's instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "command",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Command {
    /// Pin all traffic on `target` regardless of health until cleared.
    FailoverTo { target: Target },
    /// Return traffic to the primary and resume automatic control. Refused
    /// unless the primary is up; `FailoverTo` primary forces it.
    FailbackToPrimary,
    /// Drop an override and resume automatic control from the same weights.
    ClearOverride,
}

/// The outcome of one step (an observation or a command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub at: Millis,
    pub state: RouteState,
    pub weights: Weights,
    /// The weights differ from those before the step: write them to Route53.
    pub weights_changed: bool,
    /// State changes made in this step, in order (at most two).
    pub transitions: Vec<Transition>,
    /// Alarms active after this step.
    pub alarms: Vec<Alarm>,
    pub alarms_raised: Vec<Alarm>,
    pub alarms_cleared: Vec<Alarm>,
}

/// A snapshot for a status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: RouteState,
    pub weights: Weights,
    /// When the current state was entered.
    pub state_since: Millis,
    pub health: PerTarget<TargetHealth>,
    pub alarms: Vec<Alarm>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_alarms_and_commands_serialize_tagged_camel_case() {
        let reason = TransitionReason::DrEksHealthy {
            healthy_for_ms: Millis(5),
        };
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            json!({"kind": "drEksHealthy", "healthyForMs": 5})
        );
        assert_eq!(
            serde_json::to_value(Alarm::OverrideTargetDown {
                target: Target::DrEks
            })
            .unwrap(),
            json!({"kind": "overrideTargetDown", "target": "drEks"})
        );
        let command: Command =
            serde_json::from_value(json!({"command": "failoverTo", "target": "drEcs"})).unwrap();
        assert_eq!(
            command,
            Command::FailoverTo {
                target: Target::DrEcs
            }
        );
    }

    #[test]
    fn only_target_down_is_forced() {
        assert!(
            TransitionReason::TargetDown {
                target: Target::Primary
            }
            .is_forced()
        );
        assert!(!TransitionReason::OperatorFailback.is_forced());
        assert!(
            !TransitionReason::DrEksSplitProven {
                split_for_ms: Millis(1)
            }
            .is_forced()
        );
    }
}
