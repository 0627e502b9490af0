//! Flapping targets must not drag the weights with them.

use super::*;
use crate::{Health, Target};

const TWO_SECONDS: Millis = Millis::from_secs(2);

#[test]
fn primary_alternating_every_probe_never_fails_over() {
    for failures_to_down in 2..=4 {
        let mut sim = Sim::all_up(Config {
            probe: Hysteresis {
                failures_to_down,
                successes_to_up: 2,
            },
            ..test_config()
        });
        // A simulated minute of probes every 2 s, failing every other one.
        for i in 0..30 {
            let step = sim.round_after(TWO_SECONDS, i % 2 == 1, true, true);
            assert_eq!(
                step.weights, NORMAL,
                "threshold {failures_to_down}, probe {i}"
            );
            assert!(step.transitions.is_empty() && step.alarms.is_empty());
        }
        assert_eq!(sim.machine.health().primary.health, Health::Up);
    }
}

/// DR EKS still being built (failing), DR ECS up; the primary then flaps:
/// 3 probes down, 3 up, every 2 s, for a minute.
fn flap_primary_with_dr_eks_unready(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    sim.rounds(2, true, false, true); // t=10,20: primary and DR ECS up
    for cycle in 0..5 {
        for _ in 0..3 {
            sim.round_after(TWO_SECONDS, false, false, true);
        }
        for _ in 0..3 {
            sim.round_after(TWO_SECONDS, true, false, true);
        }
        assert_eq!(sim.state(), RouteState::DrEcsOnly, "cycle {cycle}");
    }
    assert_eq!(sim.now, secs(80));
    sim
}

#[test]
fn flapping_primary_fails_over_once_and_stays_under_manual_failback() {
    let sim = flap_primary_with_dr_eks_unready(test_config());
    // Down after the third failure at t=26; nothing after that.
    let path: Vec<_> = sim.transitions.iter().map(|t| (t.at, t.to)).collect();
    assert_eq!(path, [(secs(26), RouteState::DrEcsOnly)]);
    assert_eq!(sim.machine.weights(), ECS_ONLY);
}

#[test]
fn flapping_primary_fails_over_once_and_stays_under_automatic_failback() {
    // Each up spell lasts 4 s, far below the 300 s failback time.
    let sim = flap_primary_with_dr_eks_unready(automatic_config());
    let path: Vec<_> = sim.transitions.iter().map(|t| (t.at, t.to)).collect();
    assert_eq!(path, [(secs(26), RouteState::DrEcsOnly)]);
}

#[test]
fn flapping_dr_eks_is_never_ramped_in() {
    let mut sim = Sim::new(test_config());
    sim.rounds(2, true, false, true);
    sim.rounds(3, false, false, true); // failover at t=50
    assert_eq!(sim.state(), RouteState::DrEcsOnly);

    // Ten minutes of DR EKS flipping verdicts: up 40 s, down 40 s.
    for cycle in 0..8 {
        for step in sim.rounds(4, false, true, true) {
            assert_eq!(step.weights, ECS_ONLY, "cycle {cycle}");
        }
        for step in sim.rounds(4, false, false, true) {
            assert_eq!(step.weights, ECS_ONLY, "cycle {cycle}");
        }
    }

    // Ten minutes of DR EKS up by verdict but failing one probe in four: it
    // never stays clean for the 60 s split-after, so it is never trusted.
    for i in 0..60 {
        let step = sim.round(false, i % 4 != 3, true);
        assert_eq!(step.weights, ECS_ONLY, "probe {i}");
    }
    assert_eq!(sim.machine.health()[Target::DrEks].health, Health::Up);
    assert_eq!(sim.transitions.len(), 1);
}
