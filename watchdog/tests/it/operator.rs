//! The CLI's one-shot functions: `dr status`, and an operator command that
//! preempts the running watchdog, which then keeps the override.

use std::time::Duration;

use twinkle_dr::{Command, RouteState, Target, Weights};
use twinkle_watchdog::{manual_command, read_status};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_command_preempts_the_running_watchdog_and_sticks() {
    let h = Harness::new(true, true, true).await;
    let wd = h.spawn(h.config("running"));
    wd.wait_ready().await;

    let cli_config = h.config("cli");
    let clients = h.clients(&cli_config);
    let status = read_status(&cli_config, &clients).await.unwrap();
    assert_eq!(status.route53_weights, Some(Weights::new(100, 0, 0)));
    assert_eq!(status.state, Some(RouteState::Normal));
    assert_eq!(
        status.lease.record.as_ref().map(|r| r.holder.as_str()),
        Some("running")
    );
    assert!(status.probes.results.primary.healthy);
    assert!(status.foreign_records.is_empty());

    // `dr failover --to drEcs` while the primary is healthy.
    let outcome = manual_command(
        &cli_config,
        &clients,
        Command::FailoverTo {
            target: Target::DrEcs,
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.state, RouteState::OverrideDrEcs);
    assert_eq!(outcome.previous_holder.as_deref(), Some("running"));
    assert!(outcome.insync_ms.is_some());
    assert!(outcome.transitions.iter().all(|t| t.manual));
    assert_eq!(h.weights().await, Some(Weights::new(0, 0, 100)));

    // The running watchdog loses its compare-and-set, re-takes the lease
    // and adopts the override instead of undoing it.
    wait_for(
        "running watchdog re-takes the lease in the override",
        Duration::from_secs(5),
        || async {
            let s = wd.status();
            (s.lease.held
                && s.machine
                    .as_ref()
                    .is_some_and(|m| m.state == RouteState::OverrideDrEcs))
            .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.weights().await, Some(Weights::new(0, 0, 100)));

    // `dr failback`: probes the primary first, then returns traffic.
    let outcome = manual_command(&cli_config, &clients, Command::FailbackToPrimary)
        .await
        .unwrap();
    assert_eq!(outcome.state, RouteState::Normal);
    assert_eq!(h.weights().await, Some(Weights::new(100, 0, 0)));
    wait_for(
        "running watchdog adopts normal",
        Duration::from_secs(5),
        || async {
            let s = wd.status();
            (s.lease.held
                && s.machine
                    .as_ref()
                    .is_some_and(|m| m.state == RouteState::Normal))
            .then_some(())
        },
    )
    .await;

    // Only the operator wrote weights; the running watchdog never fought.
    let writers: Vec<_> = h
        .front
        .weight_writes()
        .iter()
        .map(|b| b.lease_holder.clone())
        .collect();
    assert_eq!(writers, [Some("cli".to_owned()), Some("cli".to_owned())]);
    wd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_is_refused_while_the_primary_is_down() {
    let h = Harness::new(false, true, true).await;
    seed_weights(&h.moto, &h.zone, Weights::new(0, 100, 0)).await;
    let config = h.config("cli");
    let clients = h.clients(&config);
    let refused = manual_command(&config, &clients, Command::FailbackToPrimary)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("failback refused"),
        "{refused}"
    );
    assert_eq!(h.weights().await, Some(Weights::new(0, 100, 0)));
    assert!(h.front.weight_writes().is_empty());
}

/// The outside drill's finding: `dr failback` soon after the primary
/// recovered was undone, because the running watchdog, re-taking the lease,
/// replayed its probe rounds of the outage on top of `normal`. Rounds from
/// before the recorded decision must not be replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_soon_after_recovery_is_not_undone() {
    let h = Harness::new(true, true, true).await;
    let wd = h.spawn(h.config("running"));
    wd.wait_ready().await;

    h.targets.primary.set_healthy(false);
    h.wait_weights(Weights::new(0, 100, 0), Duration::from_secs(10))
        .await;
    h.targets.primary.set_healthy(true);
    wait_for(
        "running watchdog sees the primary up again",
        Duration::from_secs(5),
        || async { wd.primary_up().then_some(()) },
    )
    .await;
    assert_eq!(
        wd.status().machine.map(|m| m.state),
        Some(RouteState::DrEks),
        "failback is manual: the watchdog stays in DR"
    );
    let outage_writes = h.front.weight_writes().len();

    // Well within the history of probe rounds (50 × 150 ms) that still
    // holds the outage.
    let cli_config = h.config("cli");
    let clients = h.clients(&cli_config);
    let outcome = manual_command(&cli_config, &clients, Command::FailbackToPrimary)
        .await
        .unwrap();
    assert_eq!(outcome.state, RouteState::Normal);
    wait_for(
        "running watchdog re-takes the lease in normal",
        Duration::from_secs(5),
        || async {
            let s = wd.status();
            (s.lease.held
                && s.lease.record.as_ref().map(|r| r.holder.as_str()) == Some("running")
                && s.machine
                    .as_ref()
                    .is_some_and(|m| m.state == RouteState::Normal))
            .then_some(())
        },
    )
    .await;

    // Longer than failuresToDown rounds plus the dwell: a replayed outage
    // would have moved traffic away again by now.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(h.weights().await, Some(Weights::new(100, 0, 0)));
    assert_eq!(
        wd.status().machine.map(|m| m.state),
        Some(RouteState::Normal)
    );
    let after: Vec<_> = h.front.weight_writes()[outage_writes..]
        .iter()
        .map(|b| b.lease_holder.clone())
        .collect();
    assert_eq!(after, [Some("cli".to_owned())], "only the failback wrote");
    wd.stop().await;
}
