//! Operator commands: honoured, idempotent, recorded as manual.

use super::*;
use crate::{Alarm, Error, Health, Target, TransitionReason};

#[test]
fn failover_to_a_named_target_is_pinned_and_recorded() {
    let mut sim = Sim::all_up(test_config());
    let step = sim
        .command(Command::FailoverTo {
            target: Target::DrEcs,
        })
        .unwrap();
    assert_eq!(
        (step.state, step.weights),
        (RouteState::OverrideDrEcs, ECS_ONLY)
    );
    assert!(step.weights_changed);
    let transition = &step.transitions[0];
    assert_eq!(step.transitions.len(), 1);
    assert!(transition.manual);
    assert_eq!(
        transition.reason,
        TransitionReason::OperatorFailover {
            target: Target::DrEcs
        }
    );
    assert_eq!(transition.health.dr_ecs, Health::Up);

    // Resent by a reconciling controller: nothing new.
    let again = sim
        .command(Command::FailoverTo {
            target: Target::DrEcs,
        })
        .unwrap();
    assert!(again.transitions.is_empty() && !again.weights_changed);

    // Health does not move a pinned route: the primary is up and would win
    // under automatic control, DR ECS dies; the override holds, with alarm.
    let steps = sim.rounds(3, true, true, false);
    assert!(
        steps
            .iter()
            .all(|s| s.weights == ECS_ONLY && s.transitions.is_empty())
    );
    let alarm = Alarm::OverrideTargetDown {
        target: Target::DrEcs,
    };
    assert_eq!(steps[2].alarms_raised, [alarm]);

    // Clearing resumes automatic control from the same weights, which at
    // once escapes the dead target (to DR EKS: failback stays manual).
    let cleared = sim.command(Command::ClearOverride).unwrap();
    let path: Vec<_> = cleared
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.manual))
        .collect();
    assert_eq!(
        path,
        [
            (RouteState::OverrideDrEcs, RouteState::DrEcsOnly, true),
            (RouteState::DrEcsOnly, RouteState::DrEks, false),
        ]
    );
    assert_eq!(cleared.weights, EKS);
    assert_eq!(cleared.alarms_cleared, [alarm]);
}

#[test]
fn override_to_primary_rides_out_planned_maintenance() {
    let mut sim = Sim::all_up(test_config());
    let pinned = sim
        .command(Command::FailoverTo {
            target: Target::Primary,
        })
        .unwrap();
    assert_eq!(pinned.state, RouteState::OverridePrimary);
    assert!(!pinned.weights_changed && pinned.transitions[0].manual);

    let steps = sim.rounds(10, false, true, true);
    assert!(
        steps
            .iter()
            .all(|s| s.weights == NORMAL && s.transitions.is_empty())
    );
    assert_eq!(
        sim.machine.alarms(),
        [Alarm::OverrideTargetDown {
            target: Target::Primary
        }]
    );

    // A safe failback needs the primary up.
    let refused = sim.command(Command::FailbackToPrimary).unwrap_err();
    assert!(matches!(
        refused,
        Error::FailbackRefused {
            primary: Health::Down
        }
    ));
    assert!(refused.to_string().contains("primary is down"));
    assert_eq!(sim.state(), RouteState::OverridePrimary);

    let back = sim.rounds(2, true, true, true);
    assert!(back[1].alarms_cleared.len() == 1 && back[1].alarms.is_empty());
    let failback = sim.command(Command::FailbackToPrimary).unwrap();
    assert_eq!(failback.state, RouteState::Normal);
    assert_eq!(
        failback.transitions[0].reason,
        TransitionReason::OperatorFailback
    );
}

#[test]
fn failback_refused_while_the_primary_is_down_or_unproven() {
    let mut sim = Sim::all_up(test_config());
    sim.rounds(3, false, true, true);
    assert_eq!(sim.state(), RouteState::DrEcsOnly);
    assert!(matches!(
        sim.command(Command::FailbackToPrimary),
        Err(Error::FailbackRefused {
            primary: Health::Down
        })
    ));

    // After a restart in DR the primary is unknown until proven.
    let mut resumed =
        FailoverMachine::resume(test_config(), RouteState::DrEks, Millis::ZERO).unwrap();
    assert!(matches!(
        resumed.command(secs(1), Command::FailbackToPrimary),
        Err(Error::FailbackRefused {
            primary: Health::Unknown
        })
    ));
    assert_eq!(resumed.weights(), EKS);
}

#[test]
fn forced_failover_to_a_down_primary_is_obeyed() {
    let mut sim = Sim::all_up(test_config());
    sim.rounds(3, false, true, true);
    let forced = sim
        .command(Command::FailoverTo {
            target: Target::Primary,
        })
        .unwrap();
    assert_eq!(
        (forced.state, forced.weights),
        (RouteState::OverridePrimary, NORMAL)
    );
    assert_eq!(
        forced.alarms,
        [Alarm::OverrideTargetDown {
            target: Target::Primary
        }]
    );
}

#[test]
fn clear_override_without_an_override_changes_nothing() {
    let mut sim = Sim::all_up(test_config());
    let step = sim.command(Command::ClearOverride).unwrap();
    assert!(step.transitions.is_empty() && !step.weights_changed);
    assert_eq!(step.state, RouteState::Normal);
}

#[test]
fn time_going_backwards_is_refused() {
    let mut sim = Sim::all_up(test_config());
    let error = sim
        .machine
        .observe(secs(5), &Observations::probes(true, true, true))
        .unwrap_err();
    assert!(matches!(
        error,
        Error::TimeWentBackwards { previous, now } if previous == secs(20) && now == secs(5)
    ));
    assert!(
        sim.machine
            .command(secs(19), Command::ClearOverride)
            .is_err()
    );
}

#[test]
fn invalid_config_is_refused_by_the_machine() {
    let config = Config {
        probe: Hysteresis {
            failures_to_down: 3,
            successes_to_up: 0,
        },
        ..test_config()
    };
    assert!(matches!(
        FailoverMachine::new(config, Millis::ZERO),
        Err(Error::ZeroThreshold {
            field: "probe.successesToUp"
        })
    ));
}

#[test]
fn step_serializes_as_camel_case_json() {
    let mut sim = Sim::all_up(test_config());
    let step = sim
        .command(Command::FailoverTo {
            target: Target::DrEks,
        })
        .unwrap();
    let json = serde_json::to_value(&step).unwrap();
    assert_eq!(json["state"], "overrideDrEks");
    assert_eq!(json["weightsChanged"], true);
    assert_eq!(
        json["weights"],
        serde_json::json!({"primary": 0, "drEks": 100, "drEcs": 0})
    );
    let transition = &json["transitions"][0];
    assert_eq!(transition["from"], "normal");
    assert_eq!(transition["manual"], true);
    assert_eq!(transition["at"], 20_000);
    assert_eq!(transition["reason"]["kind"], "operatorFailover");
    assert_eq!(json["alarmsRaised"], serde_json::json!([]));

    let back: Step = serde_json::from_value(json).unwrap();
    assert_eq!(back, step);

    let status = serde_json::to_value(sim.machine.status()).unwrap();
    assert_eq!(status["health"]["drEks"]["health"], "up");
    assert_eq!(status["stateSince"], 20_000);
}
