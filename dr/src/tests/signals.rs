//! The Route53 health-check signal, combined with probes per policy.

use super::*;
use crate::{Observation, SignalPolicy, TargetObservation};

/// Probes say every target is healthy unless `primary_probe` is false;
/// Route53 reports the primary as `primary_route53`.
fn observations(primary_probe: bool, primary_route53: bool) -> Observations {
    let mut observations = Observations::probes(primary_probe, true, true);
    observations.primary = TargetObservation {
        probe: Some(primary_probe.into()),
        route53: Some(Observation::from(primary_route53)),
    };
    observations
}

fn sim_with(signals: SignalPolicy) -> Sim {
    let mut sim = Sim::new(Config {
        signals,
        ..test_config()
    });
    for _ in 0..2 {
        sim.now = sim.now.plus(INTERVAL);
        sim.observe(&observations(true, true));
    }
    sim
}

/// Rounds of the given signals; returns the state after each.
fn run(sim: &mut Sim, rounds: usize, probe: bool, route53: bool) -> Vec<RouteState> {
    (0..rounds)
        .map(|_| {
            sim.now = sim.now.plus(INTERVAL);
            sim.observe(&observations(probe, route53)).state
        })
        .collect()
}

#[test]
fn either_down_fails_over_on_route53_alone() {
    let mut sim = sim_with(SignalPolicy::EitherDown);
    // Route53 threshold is 2 readings (default), probes stay healthy.
    let states = run(&mut sim, 2, true, false);
    assert_eq!(states, [RouteState::Normal, RouteState::DrEcsOnly]);
}

#[test]
fn both_down_needs_both_signals() {
    let mut sim = sim_with(SignalPolicy::BothDown);
    let probe_only = run(&mut sim, 5, false, true);
    assert!(probe_only.iter().all(|&s| s == RouteState::Normal));
    // DR EKS has been up 70 s by then (> 60 s split-after): 0/50/50.
    let both = run(&mut sim, 2, false, false);
    assert_eq!(both, [RouteState::Normal, RouteState::DrSplit]);
}

#[test]
fn probe_only_ignores_route53() {
    let mut sim = sim_with(SignalPolicy::ProbeOnly);
    let states = run(&mut sim, 10, true, false);
    assert!(states.iter().all(|&s| s == RouteState::Normal));
    let states = run(&mut sim, 3, false, true);
    assert_eq!(
        states,
        [RouteState::Normal, RouteState::Normal, RouteState::DrSplit]
    );
}
