//! Everything down: keep the last weights and raise the alarm.

use super::*;
use crate::{Alarm, Health, Observation, TargetObservation};

#[test]
fn all_down_keeps_weights_and_alarms_until_one_recovers() {
    let mut sim = Sim::all_up(test_config());
    let steps = sim.rounds(3, false, false, false); // all down at t=50
    assert!(steps[..2].iter().all(|s| s.alarms.is_empty()));
    let held = &steps[2];
    assert_eq!((held.state, held.weights), (RouteState::Normal, NORMAL));
    assert!(!held.weights_changed && held.transitions.is_empty());
    assert_eq!(held.alarms, [Alarm::NoHealthyTarget]);
    assert_eq!(held.alarms_raised, [Alarm::NoHealthyTarget]);

    // Still down ten minutes later: same weights, alarm active, raised once.
    for step in sim.rounds(60, false, false, false) {
        assert_eq!(step.weights, NORMAL);
        assert_eq!(step.alarms, [Alarm::NoHealthyTarget]);
        assert!(step.alarms_raised.is_empty() && step.alarms_cleared.is_empty());
    }

    // DR ECS comes back (up after 2 rounds): traffic moves, alarm clears.
    let recovered = sim.until_change(5, false, false, true);
    assert_eq!(recovered.weights, ECS_ONLY);
    assert!(recovered.alarms.is_empty());
    assert_eq!(recovered.alarms_cleared, [Alarm::NoHealthyTarget]);
}

#[test]
fn primary_recovering_clears_the_alarm_without_moving_traffic() {
    let mut sim = Sim::all_up(test_config());
    sim.rounds(3, false, false, false);
    assert_eq!(sim.machine.alarms(), [Alarm::NoHealthyTarget]);
    let steps = sim.rounds(2, true, false, false);
    assert_eq!(steps[1].alarms_cleared, [Alarm::NoHealthyTarget]);
    assert!(
        steps
            .iter()
            .all(|s| s.weights == NORMAL && s.transitions.is_empty())
    );
}

#[test]
fn all_down_while_on_dr_eks_keeps_dr_eks() {
    let mut sim = Sim::all_up(test_config());
    sim.rounds(3, true, true, false); // DR ECS down
    sim.rounds(3, false, true, false); // primary down → 0/100/0
    assert_eq!(sim.machine.weights(), EKS);
    let steps = sim.rounds(3, false, false, false);
    assert!(
        steps
            .iter()
            .all(|s| s.weights == EKS && s.transitions.is_empty())
    );
    assert_eq!(steps[2].alarms, [Alarm::NoHealthyTarget]);
}

#[test]
fn primary_down_with_dr_not_yet_observed_holds_and_alarms() {
    // Only primary probes arrive: DR health stays unknown, which is not
    // good enough to send traffic to.
    let mut sim = Sim::new(test_config());
    let primary_only = |healthy: bool| Observations {
        primary: TargetObservation {
            probe: Some(Observation::from(healthy)),
            route53: None,
        },
        ..Observations::default()
    };
    for _ in 0..3 {
        sim.now = sim.now.plus(INTERVAL);
        sim.observe(&primary_only(false));
    }
    assert_eq!(sim.machine.health().dr_eks.health, Health::Unknown);
    assert_eq!(sim.machine.weights(), NORMAL);
    assert_eq!(sim.machine.alarms(), [Alarm::NoHealthyTarget]);
}

#[test]
fn start_up_with_nothing_known_is_quiet() {
    let mut sim = Sim::new(test_config());
    sim.now = secs(60);
    let step = sim.observe(&Observations::default());
    assert_eq!(step.weights, NORMAL);
    assert!(step.alarms.is_empty() && step.transitions.is_empty());
}
