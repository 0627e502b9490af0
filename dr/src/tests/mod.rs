//! Scenario tests of the whole machine: a simulated clock, probe rounds at a
//! fixed interval, and exact expectations about when weights move.

mod drill;
mod flapping;
mod overrides;
mod properties;
mod signals;
mod static_stability;

use crate::{
    Command, Config, FailbackPolicy, FailoverMachine, Hysteresis, Millis, Observations, RouteState,
    Step, Transition, Weights,
};

/// Probe round interval of the simulated watchdog.
const INTERVAL: Millis = Millis::from_secs(10);

pub(crate) const NORMAL: Weights = Weights::new(100, 0, 0);
pub(crate) const ECS_ONLY: Weights = Weights::new(0, 0, 100);
pub(crate) const SPLIT: Weights = Weights::new(0, 50, 50);
pub(crate) const EKS: Weights = Weights::new(0, 100, 0);

/// Small numbers so scenarios stay readable: down after 3 failed rounds
/// (30 s), up after 2 good ones (20 s), 30 s minimum dwell, split after DR
/// EKS is up 60 s, full after 120 s of split, automatic failback after 300 s.
fn test_config() -> Config {
    Config {
        probe: Hysteresis {
            failures_to_down: 3,
            successes_to_up: 2,
        },
        min_state_dwell_ms: Millis::from_secs(30),
        dr_eks_split_after_ms: Millis::from_secs(60),
        dr_eks_full_after_ms: Millis::from_secs(120),
        automatic_failback_after_ms: Millis::from_secs(300),
        ..Config::default()
    }
}

fn automatic_config() -> Config {
    Config {
        failback: FailbackPolicy::Automatic,
        ..test_config()
    }
}

/// A machine driven by a simulated clock that starts at 0 and advances one
/// [`INTERVAL`] per probe round.
struct Sim {
    machine: FailoverMachine,
    now: Millis,
    transitions: Vec<Transition>,
}

impl Sim {
    fn new(config: Config) -> Sim {
        Sim {
            machine: FailoverMachine::new(config, Millis::ZERO).unwrap(),
            now: Millis::ZERO,
            transitions: Vec::new(),
        }
    }

    /// One probe round, one [`INTERVAL`] after the previous step.
    fn round(&mut self, primary: bool, dr_eks: bool, dr_ecs: bool) -> Step {
        self.round_after(INTERVAL, primary, dr_eks, dr_ecs)
    }

    fn round_after(&mut self, interval: Millis, primary: bool, dr_eks: bool, dr_ecs: bool) -> Step {
        self.now = self.now.plus(interval);
        self.observe(&Observations::probes(primary, dr_eks, dr_ecs))
    }

    fn observe(&mut self, observations: &Observations) -> Step {
        let step = self.machine.observe(self.now, observations).unwrap();
        self.transitions.extend(step.transitions.iter().cloned());
        step
    }

    /// `count` identical rounds; returns every step.
    fn rounds(&mut self, count: usize, primary: bool, dr_eks: bool, dr_ecs: bool) -> Vec<Step> {
        (0..count)
            .map(|_| self.round(primary, dr_eks, dr_ecs))
            .collect()
    }

    /// Rounds until the state changes; returns the step that changed it.
    /// Panics after `limit` rounds so a broken rule fails instead of hanging.
    fn until_change(&mut self, limit: usize, primary: bool, dr_eks: bool, dr_ecs: bool) -> Step {
        let start = self.machine.state();
        for _ in 0..limit {
            let step = self.round(primary, dr_eks, dr_ecs);
            if step.state != start {
                return step;
            }
        }
        panic!("still {start:?} after {limit} rounds (now {})", self.now);
    }

    fn command(&mut self, command: Command) -> crate::Result<Step> {
        let step = self.machine.command(self.now, command)?;
        self.transitions.extend(step.transitions.iter().cloned());
        Ok(step)
    }

    fn state(&self) -> RouteState {
        self.machine.state()
    }

    /// Brings every target up (2 good rounds) from a fresh start.
    fn all_up(config: Config) -> Sim {
        let mut sim = Sim::new(config);
        sim.rounds(2, true, true, true);
        assert_eq!(sim.state(), RouteState::Normal);
        sim
    }
}

fn secs(secs: u64) -> Millis {
    Millis::from_secs(secs)
}
