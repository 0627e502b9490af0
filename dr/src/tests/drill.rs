//! The failover drill from the issue, with exact timings.

use super::*;
use crate::{Target, TransitionReason};

/// Primary up, DR EKS still being built, DR ECS up; the primary then fails
/// and DR EKS comes up and is ramped in. Ends in 0/100/0 at t=280 s.
///
/// Timeline (rounds every 10 s, down after 3, up after 2):
/// * t=10..50 primary up → 100/0/0;
/// * t=60,70,80 primary fails → down at 80 → 0/0/100 (DR EKS not ready);
/// * t=90,100 DR EKS succeeds → up at 100;
/// * t=160 DR EKS up 60 s → 0/50/50;
/// * t=280 split ran 120 s → 0/100/0.
fn drill_to_dr_eks(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    for step in sim.rounds(5, true, false, true) {
        assert_eq!((step.state, step.weights), (RouteState::Normal, NORMAL));
        assert!(step.transitions.is_empty() && !step.weights_changed);
    }

    let failing = sim.rounds(3, false, false, true);
    assert!(
        failing[..2]
            .iter()
            .all(|s| s.weights == NORMAL && s.transitions.is_empty())
    );
    let failover = &failing[2];
    assert_eq!(failover.at, secs(80));
    assert_eq!(
        (failover.state, failover.weights),
        (RouteState::DrEcsOnly, ECS_ONLY)
    );
    assert!(failover.weights_changed);
    let transition = &failover.transitions[..];
    assert_eq!(transition.len(), 1);
    assert_eq!(transition[0].from, RouteState::Normal);
    assert_eq!(
        transition[0].reason,
        TransitionReason::TargetDown {
            target: Target::Primary
        }
    );
    assert!(!transition[0].manual);
    assert_eq!(transition[0].weights, ECS_ONLY);

    let split = sim.until_change(100, false, true, true);
    assert_eq!((split.at, split.weights), (secs(160), SPLIT));
    assert_eq!(
        split.transitions[0].reason,
        TransitionReason::DrEksHealthy {
            healthy_for_ms: secs(60)
        }
    );

    let full = sim.until_change(100, false, true, true);
    assert_eq!(
        (full.at, full.state, full.weights),
        (secs(280), RouteState::DrEks, EKS)
    );
    assert_eq!(
        full.transitions[0].reason,
        TransitionReason::DrEksSplitProven {
            split_for_ms: secs(120)
        }
    );
    sim
}

#[test]
fn manual_failback_only_through_the_command() {
    let mut sim = drill_to_dr_eks(test_config());

    // The primary is healthy again for half an hour: Manual keeps DR.
    for step in sim.rounds(180, true, true, true) {
        assert_eq!(step.weights, EKS);
        assert!(step.transitions.is_empty());
    }
    assert_eq!(sim.machine.health().primary.health, crate::Health::Up);

    let failback = sim.command(Command::FailbackToPrimary).unwrap();
    assert_eq!(
        (failback.state, failback.weights),
        (RouteState::Normal, NORMAL)
    );
    assert!(failback.weights_changed);
    assert_eq!(failback.transitions.len(), 1);
    assert!(failback.transitions[0].manual);
    assert_eq!(
        failback.transitions[0].reason,
        TransitionReason::OperatorFailback
    );

    // Resending the command (a controller reconciling) changes nothing.
    assert!(
        sim.command(Command::FailbackToPrimary)
            .unwrap()
            .transitions
            .is_empty()
    );

    let path: Vec<_> = sim
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.manual))
        .collect();
    assert_eq!(
        path,
        [
            (RouteState::Normal, RouteState::DrEcsOnly, false),
            (RouteState::DrEcsOnly, RouteState::DrSplit, false),
            (RouteState::DrSplit, RouteState::DrEks, false),
            (RouteState::DrEks, RouteState::Normal, true),
        ]
    );
}

#[test]
fn automatic_failback_after_the_primary_stays_healthy() {
    let mut sim = drill_to_dr_eks(automatic_config());

    // Primary succeeds from t=290: up at 300, failback due at 600.
    let failback = sim.until_change(100, true, true, true);
    assert_eq!((failback.at, failback.weights), (secs(600), NORMAL));
    assert_eq!(
        failback.transitions[0].reason,
        TransitionReason::PrimaryHealthy {
            healthy_for_ms: secs(300)
        }
    );
    assert!(!failback.transitions[0].manual);
}

#[test]
fn automatic_failback_clock_restarts_on_any_failed_probe() {
    let mut sim = drill_to_dr_eks(automatic_config());

    // Up at 300; one failed probe at 500 is below the down threshold but
    // restarts "healthy for", so failback moves from 600 to 800.
    sim.rounds(21, true, true, true); // t=290..490
    sim.round(false, true, true); // t=500
    assert_eq!(sim.machine.health().primary.health, crate::Health::Up);
    let failback = sim.until_change(100, true, true, true);
    assert_eq!((failback.at, failback.weights), (secs(800), NORMAL));
}

#[test]
fn ramp_waits_for_the_minimum_dwell_even_when_dr_eks_is_ready() {
    // DR EKS is up (since t=20) before the primary fails, but not yet for
    // 60 s of split-after at failover time 30 → 0/0/100. With a 30 s dwell
    // the split comes when DR EKS is ready, at 80.
    let mut sim = Sim::new(Config {
        probe: Hysteresis {
            failures_to_down: 1,
            successes_to_up: 2,
        },
        ..test_config()
    });
    sim.rounds(2, true, true, true); // t=10,20: all up
    let failover = sim.round(false, true, true); // t=30
    assert_eq!(failover.weights, ECS_ONLY);
    let split = sim.until_change(20, false, true, true);
    assert_eq!((split.at, split.weights), (secs(80), SPLIT));

    // With a 90 s dwell: DR EKS is ready at 80 but the split waits for the
    // dwell since failover, to 120.
    let mut sim = Sim::new(Config {
        probe: Hysteresis {
            failures_to_down: 1,
            successes_to_up: 2,
        },
        min_state_dwell_ms: secs(90),
        ..test_config()
    });
    sim.rounds(2, true, true, true);
    sim.round(false, true, true);
    let split = sim.until_change(20, false, true, true);
    assert_eq!((split.at, split.weights), (secs(120), SPLIT));
}

#[test]
fn warm_dr_eks_gets_the_split_at_failover() {
    // DR EKS up since t=20 and the primary fails 3 rounds from t=70: at 90
    // DR EKS has been up 70 s ≥ 60 s, so failover goes straight to 0/50/50.
    let mut sim = Sim::all_up(test_config());
    sim.rounds(4, true, true, true); // t=30..60
    let failover = sim.until_change(5, false, true, true);
    assert_eq!((failover.at, failover.weights), (secs(90), SPLIT));
}

#[test]
fn failover_with_dr_ecs_down_goes_straight_to_dr_eks() {
    let mut sim = Sim::all_up(test_config());
    sim.rounds(3, true, true, false); // DR ECS down at t=50
    assert_eq!(sim.machine.health().dr_ecs.health, crate::Health::Down);
    let failover = sim.until_change(5, false, true, false);
    assert_eq!((failover.at, failover.weights), (secs(80), EKS));
}

#[test]
fn split_escapes_a_dying_target_without_waiting_for_dwell() {
    // As in the drill, 0/50/50 from t=160 (60 s dwell allows it: failover
    // was at 80). DR ECS dies right away: down at 190, only 30 s into the
    // split, less than the 60 s dwell → moves anyway.
    let mut sim = Sim::new(Config {
        min_state_dwell_ms: secs(60),
        ..test_config()
    });
    sim.rounds(5, true, false, true);
    sim.rounds(3, false, false, true);
    let split = sim.until_change(100, false, true, true);
    assert_eq!((split.at, split.state), (secs(160), RouteState::DrSplit));
    let escape = sim.until_change(5, false, true, false);
    assert_eq!((escape.at, escape.weights), (secs(190), EKS));
    assert_eq!(
        escape.transitions[0].reason,
        TransitionReason::TargetDown {
            target: Target::DrEcs
        }
    );

    // Then DR EKS dies (down at 220) and DR ECS is back (up at 210):
    // 0/0/100 at 220, again without waiting for the dwell.
    let back = sim.until_change(10, false, false, true);
    assert_eq!((back.at, back.weights), (secs(220), ECS_ONLY));
}

#[test]
fn under_manual_policy_a_dead_dr_hands_traffic_back_to_a_live_primary() {
    let mut sim = drill_to_dr_eks(test_config());
    sim.rounds(2, true, true, true); // primary up at 300
    let escape = sim.until_change(5, true, false, false);
    assert_eq!((escape.at, escape.weights), (secs(330), NORMAL));
    assert_eq!(
        escape.transitions[0].reason,
        TransitionReason::TargetDown {
            target: Target::DrEks
        }
    );
}
