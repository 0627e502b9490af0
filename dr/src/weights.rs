//! Routing states and the Route53 weights each one writes.
//!
//! Weights are a pure function of the state, so a state name in a status or
//! a log line says exactly where traffic goes, and "hold the last weights"
//! (static stability) is simply "stay in the state".

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// Route53 weights, as percentages that always sum to 100. Route53 accepts
/// 0..=255 and routes by each record's share of the total, so these are
/// written unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    pub primary: u8,
    pub dr_eks: u8,
    pub dr_ecs: u8,
}

impl Weights {
    pub const fn new(primary: u8, dr_eks: u8, dr_ecs: u8) -> Weights {
        Weights {
            primary,
            dr_eks,
            dr_ecs,
        }
    }

    pub const fn get(self, target: Target) -> u8 {
        match target {
            Target::Primary => self.primary,
            Target::DrEks => self.dr_eks,
            Target::DrEcs => self.dr_ecs,
        }
    }

    /// Sum of the three weights; 100 for every state's weights.
    pub const fn total(self) -> u16 {
        self.primary as u16 + self.dr_eks as u16 + self.dr_ecs as u16
    }

    /// Targets that receive traffic (weight above zero).
    pub fn serving(self) -> impl Iterator<Item = Target> {
        Target::ALL
            .into_iter()
            .filter(move |&target| self.get(target) > 0)
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.primary, self.dr_eks, self.dr_ecs)
    }
}

/// Where traffic is routed, and why in broad terms. Serialized as a plain
/// string (`"drSplit"`) so it fits a Kubernetes printer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteState {
    /// Everything on the primary: 100/0/0.
    Normal,
    /// Primary down and DR EKS not (yet) trusted: everything on the always-on
    /// DR ECS, 0/0/100. The seed design sent half to an unready EKS here.
    DrEcsOnly,
    /// DR EKS has stayed healthy for the ramp dwell and shares traffic with
    /// DR ECS: 0/50/50.
    DrSplit,
    /// DR EKS carries everything: 0/100/0.
    DrEks,
    /// Operator pinned everything on the primary (e.g. planned maintenance
    /// that would otherwise look like an outage): 100/0/0.
    OverridePrimary,
    /// Operator pinned everything on DR EKS: 0/100/0.
    OverrideDrEks,
    /// Operator pinned everything on DR ECS: 0/0/100.
    OverrideDrEcs,
}

impl RouteState {
    pub const ALL: [RouteState; 7] = [
        RouteState::Normal,
        RouteState::DrEcsOnly,
        RouteState::DrSplit,
        RouteState::DrEks,
        RouteState::OverridePrimary,
        RouteState::OverrideDrEks,
        RouteState::OverrideDrEcs,
    ];

    pub const fn weights(self) -> Weights {
        match self {
            RouteState::Normal | RouteState::OverridePrimary => Weights::new(100, 0, 0),
            RouteState::DrEcsOnly | RouteState::OverrideDrEcs => Weights::new(0, 0, 100),
            RouteState::DrSplit => Weights::new(0, 50, 50),
            RouteState::DrEks | RouteState::OverrideDrEks => Weights::new(0, 100, 0),
        }
    }

    /// The override state that pins all traffic on `target`.
    pub const fn pinned_to(target: Target) -> RouteState {
        match target {
            Target::Primary => RouteState::OverridePrimary,
            Target::DrEks => RouteState::OverrideDrEks,
            Target::DrEcs => RouteState::OverrideDrEcs,
        }
    }

    /// The target an operator override pins traffic on, if this is one.
    pub const fn pinned_target(self) -> Option<Target> {
        match self {
            RouteState::OverridePrimary => Some(Target::Primary),
            RouteState::OverrideDrEks => Some(Target::DrEks),
            RouteState::OverrideDrEcs => Some(Target::DrEcs),
            _ => None,
        }
    }

    /// The automatic state with the same weights as this one: where clearing
    /// an override lands, so clearing alone never moves traffic.
    pub const fn automatic_equivalent(self) -> RouteState {
        match self {
            RouteState::OverridePrimary => RouteState::Normal,
            RouteState::OverrideDrEks => RouteState::DrEks,
            RouteState::OverrideDrEcs => RouteState::DrEcsOnly,
            automatic => automatic,
        }
    }

    /// Traffic is off the primary because of automatic failover.
    pub const fn is_failed_over(self) -> bool {
        matches!(
            self,
            RouteState::DrEcsOnly | RouteState::DrSplit | RouteState::DrEks
        )
    }

    /// The automatic state whose weights these are, for resuming from the
    /// weights found in Route53 after a restart. `None` for weights no
    /// automatic state writes (someone edited the records by hand).
    pub fn from_weights(weights: Weights) -> Option<RouteState> {
        RouteState::ALL
            .into_iter()
            .find(|state| state.pinned_target().is_none() && state.weights() == weights)
    }
}

impl fmt::Display for RouteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteState::Normal => "normal",
            RouteState::DrEcsOnly => "DR ECS only",
            RouteState::DrSplit => "DR split EKS/ECS",
            RouteState::DrEks => "DR EKS",
            RouteState::OverridePrimary => "override: primary",
            RouteState::OverrideDrEks => "override: DR EKS",
            RouteState::OverrideDrEcs => "override: DR ECS",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_writes_weights_summing_to_100() {
        for state in RouteState::ALL {
            assert_eq!(state.weights().total(), 100, "{state:?}");
        }
    }

    #[test]
    fn seed_table_weights() {
        assert_eq!(RouteState::Normal.weights(), Weights::new(100, 0, 0));
        assert_eq!(RouteState::DrSplit.weights(), Weights::new(0, 50, 50));
        assert_eq!(RouteState::DrEks.weights(), Weights::new(0, 100, 0));
        assert_eq!(RouteState::DrEcsOnly.weights(), Weights::new(0, 0, 100));
    }

    #[test]
    fn override_states_pin_their_target_and_clear_to_same_weights() {
        for target in Target::ALL {
            let pinned = RouteState::pinned_to(target);
            assert_eq!(pinned.pinned_target(), Some(target));
            assert_eq!(pinned.weights().get(target), 100);
            let cleared = pinned.automatic_equivalent();
            assert_eq!(cleared.pinned_target(), None);
            assert_eq!(cleared.weights(), pinned.weights());
        }
    }

    #[test]
    fn weights_map_back_to_automatic_states_only() {
        assert_eq!(
            RouteState::from_weights(Weights::new(100, 0, 0)),
            Some(RouteState::Normal)
        );
        assert_eq!(
            RouteState::from_weights(Weights::new(0, 50, 50)),
            Some(RouteState::DrSplit)
        );
        assert_eq!(RouteState::from_weights(Weights::new(30, 70, 0)), None);
    }

    #[test]
    fn serving_lists_targets_with_weight() {
        let serving: Vec<_> = RouteState::DrSplit.weights().serving().collect();
        assert_eq!(serving, vec![Target::DrEks, Target::DrEcs]);
    }

    #[test]
    fn state_serializes_as_camel_case_string() {
        assert_eq!(
            serde_json::to_string(&RouteState::DrEcsOnly).unwrap(),
            "\"drEcsOnly\""
        );
    }
}
