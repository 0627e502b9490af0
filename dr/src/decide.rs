//! The routing decision: given the state, each target's health and the time,
//! where should traffic go next? A pure function, so every rule can be read
//! (and tested) in one place; `machine.rs` only applies its answer.

use crate::config::{Config, FailbackPolicy};
use crate::health::{Health, TargetHealth};
use crate::target::{PerTarget, Target};
use crate::time::Millis;
use crate::transition::TransitionReason;
use crate::weights::RouteState;

/// The decision for one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Stay,
    Move {
        to: RouteState,
        reason: TransitionReason,
    },
    /// Traffic is on a down target and nothing is up to take it: keep the
    /// weights (static stability) and raise the alarm.
    Hold,
}

pub(crate) struct Situation<'a> {
    pub state: RouteState,
    pub state_since: Millis,
    pub health: &'a PerTarget<TargetHealth>,
    pub now: Millis,
    pub config: &'a Config,
}

impl Situation<'_> {
    fn is(&self, target: Target, health: Health) -> bool {
        self.health[target].health == health
    }

    fn up_for(&self, target: Target) -> Option<Millis> {
        self.health[target].up_for(self.now)
    }

    /// DR EKS has been up long enough to be given a share.
    fn dr_eks_ready(&self) -> Option<Millis> {
        self.up_for(Target::DrEks)
            .filter(|&up| up >= self.config.dr_eks_split_after_ms)
    }
}

pub(crate) fn decide(situation: &Situation<'_>) -> Decision {
    if situation.state.pinned_target().is_some() {
        return Decision::Stay;
    }
    let weights = situation.state.weights();
    if let Some(down) = weights.serving().find(|&t| situation.is(t, Health::Down)) {
        return match escape_destination(situation) {
            Some(to) => Decision::Move {
                to,
                reason: TransitionReason::TargetDown { target: down },
            },
            None => Decision::Hold,
        };
    }
    if situation.now.since(situation.state_since) < situation.config.min_state_dwell_ms {
        return Decision::Stay;
    }
    improvement(situation).map_or(Decision::Stay, |(to, reason)| Decision::Move { to, reason })
}

/// Where to go when the current weights include a down target: only to
/// targets that are up. DR is preferred over the primary (the failback policy
/// still governs returning to a region that just failed); the primary is
/// taken only when it is the one target up.
fn escape_destination(situation: &Situation<'_>) -> Option<RouteState> {
    let eks_up = situation.is(Target::DrEks, Health::Up);
    let ecs_up = situation.is(Target::DrEcs, Health::Up);
    let dr = match (eks_up, ecs_up) {
        // Only reachable from Normal: every DR state serving two up targets
        // has nothing to escape from.
        (true, true) if situation.dr_eks_ready().is_some() => Some(RouteState::DrSplit),
        (true, true) => Some(RouteState::DrEcsOnly),
        // The only choice up: no ramp, an unproven target beats a dead one.
        (true, false) => Some(RouteState::DrEks),
        (false, true) => Some(RouteState::DrEcsOnly),
        (false, false) => None,
    };
    dr.or_else(|| {
        situation
            .is(Target::Primary, Health::Up)
            .then_some(RouteState::Normal)
    })
}

/// Optional moves, taken only after the minimum dwell: automatic failback,
/// then the ramp onto DR EKS.
fn improvement(situation: &Situation<'_>) -> Option<(RouteState, TransitionReason)> {
    if situation.state.is_failed_over()
        && situation.config.failback == FailbackPolicy::Automatic
        && let Some(up) = situation.up_for(Target::Primary)
        && up >= situation.config.automatic_failback_after_ms
    {
        return Some((
            RouteState::Normal,
            TransitionReason::PrimaryHealthy { healthy_for_ms: up },
        ));
    }
    match situation.state {
        RouteState::DrEcsOnly => situation.dr_eks_ready().map(|up| {
            (
                RouteState::DrSplit,
                TransitionReason::DrEksHealthy { healthy_for_ms: up },
            )
        }),
        RouteState::DrSplit => {
            // The split proves DR EKS only if it stayed clean throughout.
            let split_for = situation.now.since(situation.state_since);
            let eks_clean_for = situation.up_for(Target::DrEks).unwrap_or(Millis::ZERO);
            let proven = split_for.min(eks_clean_for);
            (proven >= situation.config.dr_eks_full_after_ms).then_some((
                RouteState::DrEks,
                TransitionReason::DrEksSplitProven {
                    split_for_ms: split_for,
                },
            ))
        }
        _ => None,
    }
}
