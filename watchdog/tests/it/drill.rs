//! The failover drill, end to end: Route53 (moto) weights move as the
//! targets fail and recover, and failback waits for the operator.

use std::time::{Duration, Instant};

use twinkle_dr::{Alarm, Command, RouteState, Weights};
use twinkle_watchdog::metrics::AlarmLabels;

use crate::support::*;

/// Weight batches moto applied, and Route53 calls by operation, between
/// two snapshots of the front's counters.
fn calls_between(
    before: &std::collections::BTreeMap<&'static str, u64>,
    after: &std::collections::BTreeMap<&'static str, u64>,
) -> std::collections::BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(op, n)| (*op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_moves_weights_and_waits_for_manual_failback() {
    // DR EKS is still being built (503); DR ECS is the warm standby.
    let h = Harness::new(true, false, true).await;
    let wd = h.spawn(h.config("drill"));
    wd.wait_ready().await;
    assert_eq!(h.weights().await, Some(Weights::new(100, 0, 0)));
    // Let a lease renewal pass so the counters below see the transition
    // alone (renewals are lease-only batches, counted apart anyway).
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 1. The primary dies: everything to DR ECS (DR EKS is not up).
    let calls_before = h.front.calls();
    let stopped_at = Instant::now();
    h.targets.primary.stop();
    let budget = Duration::from_millis(INTERVAL_MS * FAILURES_TO_DOWN) + Duration::from_secs(2);
    let moved = h.wait_weights(Weights::new(0, 0, 100), budget).await;
    // Give the off-loop INSYNC confirmation time to land.
    wait_for("INSYNC confirmed", Duration::from_secs(2), || async {
        wd.status().last_write.and_then(|w| w.insync_ms).map(drop)
    })
    .await;
    let transition_calls = calls_between(&calls_before, &h.front.calls());
    let write = wd.status().last_write.unwrap();
    eprintln!(
        "primary stopped → 0/0/100 in Route53 after {moved:?} (budget {budget:?}); \
         decided→written {} ms, ChangeResourceRecordSets call {} ms; Route53 calls in the \
         window: {transition_calls:?}",
        write.decided_to_written_ms, write.call_ms
    );
    assert!(stopped_at.elapsed() >= moved);
    let weight_batches = h.front.weight_writes();
    assert_eq!(weight_batches.len(), 1, "{weight_batches:?}");
    let first = &weight_batches[0];
    assert_eq!(first.weights.len(), 3, "all three records in one batch");
    assert_eq!(
        first.lease_holder.as_deref(),
        Some("drill"),
        "the batch carries the lease"
    );

    // 2. DR EKS comes up: 0/50/50 once it stayed up for the split time,
    //    0/100/0 once the split ran clean for the full time.
    let eks_up_at = Instant::now();
    h.targets.dr_eks.set_healthy(true);
    h.wait_weights(Weights::new(0, 50, 50), Duration::from_secs(5))
        .await;
    let split_after = eks_up_at.elapsed();
    h.wait_weights(Weights::new(0, 100, 0), Duration::from_secs(5))
        .await;
    let full_after = eks_up_at.elapsed();
    eprintln!("DR EKS healthy → 0/50/50 after {split_after:?}, 0/100/0 after {full_after:?}");
    assert!(
        split_after >= Duration::from_millis(1000),
        "{split_after:?}"
    );
    // Both are observed late on a loaded machine (a poll after the write),
    // so the bound is from the health change, not from the observed split:
    // the split's dwell and then the full dwell.
    assert!(full_after >= Duration::from_millis(2000), "{full_after:?}");

    // 3. The primary is back, but failback is manual: nothing moves.
    h.targets.primary.restart().await;
    wait_for("primary seen up again", Duration::from_secs(5), || async {
        wd.primary_up().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.weights().await, Some(Weights::new(0, 100, 0)));
    assert_eq!(h.front.weight_writes().len(), 3);

    // 4. The operator fails back through the running watchdog.
    let step = wd
        .watchdog
        .command(Command::FailbackToPrimary)
        .await
        .unwrap();
    assert_eq!(step.state, RouteState::Normal);
    assert!(step.transitions.iter().all(|t| t.manual));
    assert_eq!(
        h.weights().await,
        Some(Weights::new(100, 0, 0)),
        "written before the command returns"
    );
    let writes = h.front.weight_writes();
    assert_eq!(writes.len(), 4, "one batch per transition: {writes:?}");
    assert!(
        writes
            .iter()
            .all(|b| b.weights.len() == 3 && b.lease_holder.as_deref() == Some("drill"))
    );

    // Recorded: status, metrics, webhooks (provisioning once, on leaving
    // the primary).
    let status = wd.status();
    let states: Vec<_> = status.transitions.iter().map(|t| t.to).collect();
    assert_eq!(
        states,
        [
            RouteState::DrEcsOnly,
            RouteState::DrSplit,
            RouteState::DrEks,
            RouteState::Normal
        ]
    );
    assert_eq!(status.writes, 4);
    assert!(status.machine.unwrap().alarms.is_empty());
    assert!(!status.probes.is_empty());
    assert_eq!(wd.watchdog.metrics().route53_writes.get(), 4);
    wait_for("webhooks delivered", Duration::from_secs(3), || async {
        (h.sink.received("notify").len() >= 4).then_some(())
    })
    .await;
    let provisioning = h.sink.received("provision");
    assert_eq!(provisioning.len(), 1, "{provisioning:?}");
    assert_eq!(provisioning[0]["event"], "primaryLeft");
    let texts: Vec<String> = h
        .sink
        .received("notify")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(texts[0].contains("normal → DR ECS only"), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("by operator")), "{texts:?}");

    // A graceful stop hands the lease back (expiry now).
    let lease_name = wd.watchdog.config().lease_record_name();
    wd.stop().await;
    let lease = moto_txt(&h.moto, &h.zone, &lease_name).await;
    let record = twinkle_watchdog::LeaseRecord::parse(&lease[0]).unwrap();
    assert!(record.expires_unix_ms <= twinkle_watchdog::lease::unix_ms_now());
    assert_eq!(record.state, Some(RouteState::Normal));
}

/// Every target down: nowhere to go, so the weights stay (static
/// stability), the alarm is raised and announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_targets_down_keeps_weights_and_raises_the_alarm() {
    let h = Harness::new(true, false, false).await;
    let wd = h.spawn(h.config("all-down"));
    wd.wait_ready().await;
    h.targets.primary.set_healthy(false);
    wait_for("NoHealthyTarget alarm", Duration::from_secs(5), || async {
        wd.status()
            .machine
            .filter(|m| m.alarms.contains(&Alarm::NoHealthyTarget))
            .map(drop)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(h.weights().await, Some(Weights::new(100, 0, 0)));
    assert!(
        h.front.weight_writes().is_empty(),
        "{:?}",
        h.front.weight_writes()
    );
    let alarms = wait_for("alarm webhook", Duration::from_secs(3), || async {
        let got = h.sink.received("notify");
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(
        alarms[0]["text"].as_str().unwrap().contains("ALARM"),
        "{alarms:?}"
    );
    assert!(h.sink.received("provision").is_empty());
    let no_healthy_target = || {
        wd.watchdog
            .metrics()
            .alarm
            .get_or_create(&AlarmLabels {
                alarm: "noHealthyTarget",
                target: "",
            })
            .get()
    };
    assert_eq!(no_healthy_target(), 1, "twinkle_dr_alarm is raised");
    h.targets.primary.set_healthy(true);
    wait_for("alarm metric cleared", Duration::from_secs(5), || async {
        (no_healthy_target() == 0).then_some(())
    })
    .await;
    wd.stop().await;
}
