//! One-shot operations for the operator CLI (`dr status`, `dr failover
//! --to X`, `dr failback`) that run without a watchdog process of their own.

use std::time::Instant;

use twinkle_dr::{Command, FailoverMachine, Millis, RouteState, Transition};

use crate::Result;
use crate::config::WatchdogConfig;
use crate::lease::{Lease, unix_ms_now};
use crate::owner;
use crate::probe::probe_all;
use crate::route53::{Clients, Route53};
use crate::status::{LeaseStatus, ManualOutcome, StatusReport};
use crate::watch::recorded_state;
use crate::webhook::deliver_now;

/// `dr status`: the records in Route53, the lease, and one probe round.
pub async fn read_status(config: &WatchdogConfig, clients: &Clients) -> Result<StatusReport> {
    let route53 = Route53::new(config, clients.route53.clone(), Default::default());
    let mut lease = Lease::new(config);
    let owner_name = config.owner_record_name();
    let (read, view, owner_view, probes) = futures::join!(
        route53.read_weights(),
        async {
            let view = lease.refresh(&route53).await?;
            Ok::<_, crate::Error>(view.clone())
        },
        owner::read(&route53, &owner_name),
        probe_all(config, &clients.probe, &clients.route53),
    );
    let (read, view, owner_view) = (read?, view?, owner_view?);
    Ok(StatusReport {
        record_name: config.route53.record_name.clone(),
        route53_weights: read.weights,
        per_target: read.per_target,
        state: recorded_state(view.record(), read.weights),
        lease: LeaseStatus {
            name: config.lease_record_name(),
            held: false,
            record: view.record().cloned(),
        },
        ownership: owner_view.ownership(),
        probes,
        foreign_records: read.foreign,
    })
}

/// `dr failover --to X` / `dr failback` / clearing an override, from a
/// process that is not the running watchdog.
///
/// Resumes a machine in the state the records hold, applies `command` (a
/// failback first probes the targets `successesToUp` times at the probe
/// interval: the machine refuses to fail back to a primary it has not seen
/// up), then writes the weights in one batch that also takes the lease from
/// whoever holds it and hands it back at once (expiry = now, state =
/// the new one). The running watchdog's next renewal or write then fails its
/// compare-and-set; it re-takes the lease and adopts the recorded state, so
/// the command — an override in particular — sticks. Waits for INSYNC and
/// delivers the webhooks before returning.
pub async fn manual_command(
    config: &WatchdogConfig,
    clients: &Clients,
    command: Command,
) -> Result<ManualOutcome> {
    let route53 = Route53::new(config, clients.route53.clone(), Default::default());
    let mut lease = Lease::new(config);
    let read = route53.read_weights().await?;
    let view = lease.refresh(&route53).await?.clone();
    let owner_name = config.owner_record_name();
    let owner_view = owner::read(&route53, &owner_name).await?;
    let state = recorded_state(view.record(), read.weights).unwrap_or(RouteState::Normal);
    let clock = Instant::now();
    let now = || Millis(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut machine = FailoverMachine::resume(config.failover.clone(), state, now())?;
    let mut transitions: Vec<Transition> = Vec::new();

    if command == Command::FailbackToPrimary && state != RouteState::Normal {
        for round in 0..config.failover.probe.successes_to_up {
            if round > 0 {
                tokio::time::sleep(config.probe.interval()).await;
            }
            let probes = probe_all(config, &clients.probe, &clients.route53).await;
            let step = machine.observe(now(), &probes.observations())?;
            transitions.extend(step.transitions);
        }
    }
    let step = machine.command(now(), command)?;
    transitions.extend(step.transitions);
    tracing::info!(?command, from = %state, to = %machine.state(), "operator command");

    let recorded = view.record().and_then(|r| r.state);
    let (owner_after, owner_changes) =
        owner_view.moved_by(&route53, &owner_name, machine.state())?;
    let needs_write = read.weights != Some(machine.weights())
        || recorded != Some(machine.state())
        || !owner_changes.is_empty();
    let mut outcome = ManualOutcome {
        state: machine.state(),
        weights: machine.weights(),
        ownership: owner_after.ownership(),
        transitions,
        previous_holder: view.record().map(|r| r.holder.clone()),
        change_id: None,
        insync_ms: None,
    };
    if !needs_write {
        return Ok(outcome);
    }
    let new = lease.released_record(unix_ms_now(), machine.state());
    let mut changes = route53.weight_changes(machine.weights())?;
    changes.extend(owner_changes);
    let comment = format!("twinkle DR manual: {command:?} by {}", lease.holder_id());
    let (previous, change_id) = lease.preempt(&route53, &new, changes, &comment).await?;
    outcome.previous_holder = previous.map(|r| r.holder);
    if let Some(change_id) = &change_id {
        let took = route53.wait_insync(change_id).await?;
        outcome.insync_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
    }
    outcome.change_id = change_id;
    tracing::info!(state = %outcome.state, weights = %outcome.weights, ownership = %outcome.ownership, change_id = ?outcome.change_id, "manual command written");
    for transition in &outcome.transitions {
        tracing::info!(
            from = %transition.from,
            to = %transition.to,
            weights = %transition.weights,
            manual = transition.manual,
            reason = ?transition.reason,
            "DR transition"
        );
        deliver_now(
            &config.webhooks,
            &clients.webhook,
            &config.route53.record_name,
            transition,
        )
        .await;
    }
    Ok(outcome)
}
