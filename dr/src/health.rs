//! Per-target health with consecutive-count hysteresis.
//!
//! One failed probe is noise; a target changes verdict only after an
//! unbroken run of observations the other way, so a flapping target keeps its
//! last verdict instead of dragging the weights with it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{Hysteresis, SignalPolicy};
use crate::target::PerTarget;
use crate::time::Millis;

/// One raw observation of one signal: a probe answer or a Route53
/// health-check status reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Observation {
    Healthy,
    Unhealthy,
}

impl From<bool> for Observation {
    fn from(healthy: bool) -> Observation {
        if healthy {
            Observation::Healthy
        } else {
            Observation::Unhealthy
        }
    }
}

/// What was observed about one target in one step. `None` means no
/// observation of that signal this step (not a failure: a probe that timed
/// out should be reported as `Unhealthy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetObservation {
    pub probe: Option<Observation>,
    pub route53: Option<Observation>,
}

/// The input of one step: observations per target.
pub type Observations = PerTarget<TargetObservation>;

impl Observations {
    /// One probe result per target and no Route53 readings.
    pub fn probes(primary: bool, dr_eks: bool, dr_ecs: bool) -> Observations {
        let probe = |healthy: bool| TargetObservation {
            probe: Some(healthy.into()),
            route53: None,
        };
        PerTarget {
            primary: probe(primary),
            dr_eks: probe(dr_eks),
            dr_ecs: probe(dr_ecs),
        }
    }
}

/// A verdict about a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// Not enough consecutive observations either way yet (after start-up).
    /// Never routed to by choice, never a reason to fail over.
    #[default]
    Unknown,
    Up,
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// Hysteresis over one signal of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalHealth {
    pub health: Health,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// The latest observation, whatever the verdict.
    pub last: Option<Observation>,
}

impl SignalHealth {
    /// Counts `observation` and flips the verdict once the run reaches the
    /// threshold. Returns whether the verdict changed.
    pub fn record(&mut self, observation: Observation, thresholds: Hysteresis) -> bool {
        let before = self.health;
        self.last = Some(observation);
        match observation {
            Observation::Healthy => {
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                self.consecutive_failures = 0;
                if self.consecutive_successes >= thresholds.successes_to_up {
                    self.health = Health::Up;
                }
            }
            Observation::Unhealthy => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.consecutive_successes = 0;
                if self.consecutive_failures >= thresholds.failures_to_down {
                    self.health = Health::Down;
                }
            }
        }
        self.health != before
    }
}

/// Combines two signal verdicts per policy. `Unknown` abstains.
pub fn combine(policy: SignalPolicy, probe: Health, route53: Health) -> Health {
    use Health::{Down, Unknown, Up};
    match policy {
        SignalPolicy::ProbeOnly => probe,
        SignalPolicy::EitherDown => match (probe, route53) {
            (Down, _) | (_, Down) => Down,
            (Up, _) | (_, Up) => Up,
            (Unknown, Unknown) => Unknown,
        },
        SignalPolicy::BothDown => match (probe, route53) {
            (Up, _) | (_, Up) => Up,
            (Down, _) | (_, Down) => Down,
            (Unknown, Unknown) => Unknown,
        },
    }
}

/// Everything known about one target's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// The combined verdict the machine routes by.
    pub health: Health,
    /// When `health` last changed (or the machine started).
    pub since: Millis,
    /// When the latest observations, combined by the signal policy, last
    /// said unhealthy — even if too briefly to change `health`.
    pub last_unhealthy_at: Option<Millis>,
    pub probe: SignalHealth,
    pub route53: SignalHealth,
}

impl TargetHealth {
    pub fn new(now: Millis) -> TargetHealth {
        TargetHealth {
            health: Health::Unknown,
            since: now,
            last_unhealthy_at: None,
            probe: SignalHealth::default(),
            route53: SignalHealth::default(),
        }
    }

    /// Records this step's observations and recombines the verdict.
    pub fn record(
        &mut self,
        observation: TargetObservation,
        probe: Hysteresis,
        route53: Hysteresis,
        policy: SignalPolicy,
        now: Millis,
    ) {
        if let Some(seen) = observation.probe {
            self.probe.record(seen, probe);
        }
        if let Some(seen) = observation.route53 {
            self.route53.record(seen, route53);
        }
        let observed = observation.probe.is_some() || observation.route53.is_some();
        let latest = |signal: &SignalHealth| match signal.last {
            Some(Observation::Healthy) => Health::Up,
            Some(Observation::Unhealthy) => Health::Down,
            None => Health::Unknown,
        };
        if observed && combine(policy, latest(&self.probe), latest(&self.route53)) == Health::Down {
            self.last_unhealthy_at = Some(now);
        }
        let combined = combine(policy, self.probe.health, self.route53.health);
        if combined != self.health {
            self.health = combined;
            self.since = now;
        }
    }

    /// How long the target has been up with no unhealthy observation at
    /// all; `None` unless it is up now. Stricter than the verdict on purpose:
    /// a target failing two probes in three never loses its `Up` verdict
    /// with a threshold of three, but has not "stayed healthy" for a ramp or
    /// a failback either.
    pub fn up_for(&self, now: Millis) -> Option<Millis> {
        let clean_since = self
            .last_unhealthy_at
            .map_or(self.since, |at| at.max(self.since));
        (self.health == Health::Up).then(|| now.since(clean_since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::{Down, Unknown, Up};
    use Observation::{Healthy, Unhealthy};

    const THREE_DOWN_TWO_UP: Hysteresis = Hysteresis {
        failures_to_down: 3,
        successes_to_up: 2,
    };

    fn feed(signal: &mut SignalHealth, observations: &[Observation]) -> Vec<Health> {
        observations
            .iter()
            .map(|&seen| {
                signal.record(seen, THREE_DOWN_TWO_UP);
                signal.health
            })
            .collect()
    }

    #[test]
    fn down_only_after_n_consecutive_failures() {
        let mut signal = SignalHealth::default();
        let seen = feed(
            &mut signal,
            &[
                Healthy, Healthy, Unhealthy, Unhealthy, Healthy, Unhealthy, Unhealthy, Unhealthy,
            ],
        );
        assert_eq!(seen, [Unknown, Up, Up, Up, Up, Up, Up, Down]);
    }

    #[test]
    fn up_again_only_after_m_consecutive_successes() {
        let mut signal = SignalHealth::default();
        feed(&mut signal, &[Unhealthy, Unhealthy, Unhealthy]);
        assert_eq!(signal.health, Down);
        let seen = feed(&mut signal, &[Healthy, Unhealthy, Healthy, Healthy]);
        assert_eq!(seen, [Down, Down, Down, Up]);
    }

    #[test]
    fn alternating_observations_never_change_the_verdict() {
        let mut signal = SignalHealth::default();
        feed(&mut signal, &[Healthy, Healthy]);
        let flapping: Vec<_> = (0..100).map(|i| Observation::from(i % 2 == 0)).collect();
        assert!(feed(&mut signal, &flapping).iter().all(|&h| h == Up));
    }

    #[test]
    fn record_reports_changes_only() {
        let mut signal = SignalHealth::default();
        assert!(!signal.record(Healthy, THREE_DOWN_TWO_UP));
        assert!(signal.record(Healthy, THREE_DOWN_TWO_UP));
        assert!(!signal.record(Healthy, THREE_DOWN_TWO_UP));
    }

    #[test]
    fn combine_policies() {
        let all = [Unknown, Up, Down];
        for probe in all {
            for route53 in all {
                assert_eq!(combine(SignalPolicy::ProbeOnly, probe, route53), probe);
            }
        }
        assert_eq!(combine(SignalPolicy::EitherDown, Up, Down), Down);
        assert_eq!(combine(SignalPolicy::EitherDown, Up, Unknown), Up);
        assert_eq!(combine(SignalPolicy::EitherDown, Unknown, Up), Up);
        assert_eq!(combine(SignalPolicy::BothDown, Up, Down), Up);
        assert_eq!(combine(SignalPolicy::BothDown, Down, Down), Down);
        assert_eq!(combine(SignalPolicy::BothDown, Down, Unknown), Down);
        assert_eq!(combine(SignalPolicy::BothDown, Unknown, Unknown), Unknown);
    }

    #[test]
    fn target_health_tracks_since_of_the_combined_verdict() {
        let fast = Hysteresis {
            failures_to_down: 1,
            successes_to_up: 1,
        };
        let mut target = TargetHealth::new(Millis(0));
        let both = |probe: bool, route53: bool| TargetObservation {
            probe: Some(probe.into()),
            route53: Some(route53.into()),
        };
        target.record(
            both(true, true),
            fast,
            fast,
            SignalPolicy::EitherDown,
            Millis(10),
        );
        assert_eq!((target.health, target.since), (Up, Millis(10)));
        assert_eq!(target.up_for(Millis(25)), Some(Millis(15)));

        // Route53 alone says down: EitherDown believes it.
        target.record(
            both(true, false),
            fast,
            fast,
            SignalPolicy::EitherDown,
            Millis(20),
        );
        assert_eq!((target.health, target.since), (Down, Millis(20)));
        assert_eq!(target.up_for(Millis(25)), None);

        // A blip the hysteresis absorbs still restarts "healthy for".
        let mut steady = TargetHealth::new(Millis(0));
        let three = Hysteresis {
            failures_to_down: 3,
            successes_to_up: 1,
        };
        let probe = |healthy: bool| TargetObservation {
            probe: Some(healthy.into()),
            route53: None,
        };
        steady.record(
            probe(true),
            three,
            three,
            SignalPolicy::ProbeOnly,
            Millis(10),
        );
        steady.record(
            probe(false),
            three,
            three,
            SignalPolicy::ProbeOnly,
            Millis(20),
        );
        steady.record(
            probe(true),
            three,
            three,
            SignalPolicy::ProbeOnly,
            Millis(30),
        );
        assert_eq!(steady.health, Up);
        assert_eq!(steady.since, Millis(10));
        assert_eq!(steady.up_for(Millis(50)), Some(Millis(30)));

        // A step without observations changes nothing.
        target.record(
            TargetObservation::default(),
            fast,
            fast,
            SignalPolicy::EitherDown,
            Millis(30),
        );
        assert_eq!((target.health, target.since), (Down, Millis(20)));
    }
}
