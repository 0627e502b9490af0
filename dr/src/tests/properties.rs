//! Property-style tests: many random probe sequences (deterministic PRNG, so
//! a failure names a seed that reproduces it) against invariants that must
//! hold at every step.

use super::*;
use crate::{
    Alarm, Command, Error, Health, Observation, PerTarget, SignalPolicy, Target, TargetObservation,
    TransitionReason,
};

const SEEDS: u64 = 200;
const STEPS_PER_SEED: usize = 300;

/// SplitMix64: tiny, fast, good enough to explore sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn percent(&mut self, chance: u64) -> bool {
        self.next() % 100 < chance
    }
}

fn random_config(rng: &mut Rng) -> Config {
    let threshold = |rng: &mut Rng| rng.between(1, 4) as u32;
    Config {
        probe: Hysteresis {
            failures_to_down: threshold(rng),
            successes_to_up: threshold(rng),
        },
        route53: Hysteresis {
            failures_to_down: threshold(rng),
            successes_to_up: threshold(rng),
        },
        signals: [
            SignalPolicy::ProbeOnly,
            SignalPolicy::EitherDown,
            SignalPolicy::BothDown,
        ][rng.between(0, 2) as usize],
        min_state_dwell_ms: Millis(rng.between(1_000, 60_000)),
        dr_eks_split_after_ms: Millis(rng.between(0, 120_000)),
        dr_eks_full_after_ms: Millis(rng.between(0, 200_000)),
        failback: if rng.percent(50) {
            FailbackPolicy::Automatic
        } else {
            FailbackPolicy::Manual
        },
        automatic_failback_after_ms: Millis(rng.between(1_000, 400_000)),
    }
}

/// Each target drifts between regimes (healthy, dead, flaky) so sequences
/// hold long stable stretches as well as flapping.
struct World {
    failure_percent: PerTarget<u64>,
}

impl World {
    fn new() -> World {
        World {
            failure_percent: PerTarget::from_fn(|_| 0),
        }
    }

    fn observe(&mut self, rng: &mut Rng) -> Observations {
        PerTarget::from_fn(|target| {
            if rng.percent(5) {
                self.failure_percent[target] = [2, 98, 50][rng.between(0, 2) as usize];
            }
            let failing = self.failure_percent[target];
            TargetObservation {
                probe: rng
                    .percent(90)
                    .then(|| Observation::from(!rng.percent(failing))),
                route53: rng
                    .percent(50)
                    .then(|| Observation::from(!rng.percent(failing))),
            }
        })
    }
}

/// The raw probe observations of one target, newest last.
type ProbeLog = PerTarget<Vec<(Millis, Observation)>>;

fn last_n_all(log: &[(Millis, Observation)], n: u32, seen: Observation) -> bool {
    let n = n as usize;
    log.len() >= n && log[log.len() - n..].iter().all(|&(_, o)| o == seen)
}

/// No unhealthy probe of `log` within the `window` ending at `now`.
fn clean_for(log: &[(Millis, Observation)], now: Millis, window: Millis) -> bool {
    log.iter()
        .filter(|&&(_, o)| o == Observation::Unhealthy)
        .all(|&(at, _)| now.since(at) >= window)
}

/// Checks the consecutive-count hysteresis against the raw probe log
/// (independent of the machine's counters). Probe-only policy.
fn check_hysteresis(
    context: &str,
    config: &Config,
    log: &ProbeLog,
    before: &PerTarget<Health>,
    after: &PerTarget<Health>,
) {
    for target in Target::ALL {
        let log = &log[target];
        let down_run = last_n_all(log, config.probe.failures_to_down, Observation::Unhealthy);
        let up_run = last_n_all(log, config.probe.successes_to_up, Observation::Healthy);
        if down_run {
            assert_eq!(
                after[target],
                Health::Down,
                "{context}: {target} failed a run"
            );
        }
        if up_run {
            assert_eq!(
                after[target],
                Health::Up,
                "{context}: {target} passed a run"
            );
        }
        if before[target] != after[target] {
            assert!(
                down_run || up_run,
                "{context}: {target} {} → {} without a full run",
                before[target],
                after[target]
            );
        }
    }
}

/// Invariants of one transition made by automatic control.
fn check_automatic_transition(
    context: &str,
    config: &Config,
    transition: &crate::Transition,
    entered_at: Millis,
    log: &ProbeLog,
) {
    assert!(!transition.manual, "{context}: {transition:?}");
    let health = transition.health;
    // Destinations only ever serve targets that are up.
    for target in transition.to.weights().serving() {
        assert_eq!(health[target], Health::Up, "{context}: {transition:?}");
    }
    match transition.reason {
        TransitionReason::TargetDown { target } => {
            assert!(transition.from.weights().get(target) > 0, "{context}");
            assert_eq!(health[target], Health::Down, "{context}");
        }
        _ => {
            let dwelt = transition.at.since(entered_at);
            assert!(
                dwelt >= config.min_state_dwell_ms,
                "{context}: left {:?} after {dwelt}",
                transition.from
            );
        }
    }
    if transition.to == RouteState::Normal && config.failback == FailbackPolicy::Manual {
        assert!(transition.reason.is_forced(), "{context}: {transition:?}");
        assert!(
            health.dr_eks != Health::Up && health.dr_ecs != Health::Up,
            "{context}: left a live DR under manual failback"
        );
    }
    if config.signals == SignalPolicy::ProbeOnly {
        let now = transition.at;
        // However the split is entered (ramp or failover), DR EKS earned it.
        if transition.to == RouteState::DrSplit {
            assert!(
                clean_for(&log.dr_eks, now, config.dr_eks_split_after_ms),
                "{context}: split without DR EKS clean for the dwell"
            );
        }
        match transition.reason {
            TransitionReason::DrEksSplitProven { .. } => assert!(
                clean_for(&log.dr_eks, now, config.dr_eks_full_after_ms),
                "{context}: full DR EKS without a clean split"
            ),
            TransitionReason::PrimaryHealthy { .. } => assert!(
                clean_for(&log.primary, now, config.automatic_failback_after_ms),
                "{context}: failback without the primary clean for the dwell"
            ),
            _ => {}
        }
    }
}

/// Invariants of the state after any step of automatic control.
fn check_routing(context: &str, step: &Step, previous: Weights, health: &PerTarget<Health>) {
    assert_eq!(step.weights.total(), 100, "{context}");
    assert_eq!(step.weights, step.state.weights(), "{context}");
    assert_eq!(step.weights_changed, step.weights != previous, "{context}");
    let on_down_target = step.weights.serving().any(|t| health[t] == Health::Down);
    if on_down_target {
        // Static stability: only when nothing is up, weights held, alarmed.
        assert!(
            Target::ALL.iter().all(|&t| health[t] != Health::Up),
            "{context}: traffic on a down target while {health:?}"
        );
        assert_eq!(
            step.weights, previous,
            "{context}: moved onto a down target"
        );
        assert_eq!(step.alarms, [Alarm::NoHealthyTarget], "{context}");
    } else {
        assert!(step.alarms.is_empty(), "{context}: {:?}", step.alarms);
    }
}

#[test]
fn random_sequences_never_route_to_a_down_target_and_respect_dwell() {
    let mut moves = 0;
    let mut holds = 0;
    for seed in 0..SEEDS {
        let mut rng = Rng(seed);
        let config = random_config(&mut rng);
        let mut machine = FailoverMachine::new(config.clone(), Millis::ZERO).unwrap();
        let mut world = World::new();
        let mut log = ProbeLog::default();
        let mut now = Millis::ZERO;
        let mut entered_at = Millis::ZERO;
        for index in 0..STEPS_PER_SEED {
            let context = format!("seed {seed} step {index} config {config:?}");
            now = now.plus(Millis(rng.between(0, 15_000)));
            let observations = world.observe(&mut rng);
            for (target, seen) in observations.iter() {
                if let Some(probe) = seen.probe {
                    log[target].push((now, probe));
                }
            }
            let before = machine.health().map(|_, h| h.health);
            let previous = machine.weights();
            let step = machine.observe(now, &observations).unwrap();
            let health = machine.health().map(|_, h| h.health);

            assert!(step.transitions.len() <= 1, "{context}: {step:?}");
            for transition in &step.transitions {
                assert_eq!(transition.at, now, "{context}");
                check_automatic_transition(&context, &config, transition, entered_at, &log);
                entered_at = now;
                moves += 1;
            }
            check_routing(&context, &step, previous, &health);
            holds += usize::from(!step.alarms.is_empty());
            if config.signals == SignalPolicy::ProbeOnly {
                check_hysteresis(&context, &config, &log, &before, &health);
            }
        }
    }
    // The generator must actually exercise both paths.
    assert!(moves > 500 && holds > 500, "moves {moves}, holds {holds}");
}

#[test]
fn random_operator_commands_are_honoured_and_recorded() {
    let mut pinned_steps = 0;
    for seed in 0..SEEDS / 2 {
        let mut rng = Rng(1_000 + seed);
        let config = random_config(&mut rng);
        let mut machine = FailoverMachine::new(config.clone(), Millis::ZERO).unwrap();
        let mut world = World::new();
        let mut now = Millis::ZERO;
        for index in 0..STEPS_PER_SEED {
            let context = format!("seed {seed} step {index}");
            now = now.plus(Millis(rng.between(0, 15_000)));
            let previous = machine.weights();
            let state_before = machine.state();
            let step = if rng.percent(5) {
                let command = match rng.between(0, 4) {
                    0 => Command::FailbackToPrimary,
                    1 => Command::ClearOverride,
                    n => Command::FailoverTo {
                        target: Target::ALL[n as usize - 2],
                    },
                };
                let primary = machine.health().primary.health;
                match machine.command(now, command) {
                    Err(Error::FailbackRefused { primary: reported }) => {
                        assert_eq!(command, Command::FailbackToPrimary, "{context}");
                        assert_ne!(primary, Health::Up, "{context}");
                        assert_eq!(reported, primary, "{context}");
                        assert_eq!(machine.state(), state_before, "{context}");
                        continue;
                    }
                    Err(other) => panic!("{context}: {other}"),
                    Ok(step) => {
                        check_command(&context, command, state_before, &step);
                        step
                    }
                }
            } else {
                let step = machine.observe(now, &world.observe(&mut rng)).unwrap();
                assert!(step.transitions.iter().all(|t| !t.manual), "{context}");
                step
            };
            let health = machine.health().map(|_, h| h.health);
            match step.state.pinned_target() {
                Some(target) => {
                    pinned_steps += 1;
                    assert_eq!(step.weights.get(target), 100, "{context}");
                    let expected: Vec<_> = (health[target] == Health::Down)
                        .then_some(Alarm::OverrideTargetDown { target })
                        .into_iter()
                        .collect();
                    assert_eq!(step.alarms, expected, "{context}");
                }
                None => check_routing(&context, &step, previous, &health),
            }
        }
    }
    assert!(pinned_steps > 500, "pinned steps {pinned_steps}");
}

/// A command's own transition comes first, is manual, and leads where the
/// command says; automatic control may follow only after an unpin.
fn check_command(context: &str, command: Command, before: RouteState, step: &Step) {
    let Some(first) = step.transitions.first() else {
        // No-ops: already there, or nothing to clear.
        let expected_no_op = match command {
            Command::FailoverTo { target } => before == RouteState::pinned_to(target),
            Command::FailbackToPrimary => before == RouteState::Normal,
            Command::ClearOverride => before.pinned_target().is_none(),
        };
        assert!(
            expected_no_op,
            "{context}: {command:?} from {before:?} did nothing"
        );
        return;
    };
    assert!(first.manual && first.from == before, "{context}: {first:?}");
    let expected_to = match command {
        Command::FailoverTo { target } => RouteState::pinned_to(target),
        Command::FailbackToPrimary => RouteState::Normal,
        Command::ClearOverride => before.automatic_equivalent(),
    };
    assert_eq!(first.to, expected_to, "{context}");
    assert!(step.transitions[1..].iter().all(|t| !t.manual), "{context}");
    assert!(step.transitions.len() <= 2, "{context}: {step:?}");
}
