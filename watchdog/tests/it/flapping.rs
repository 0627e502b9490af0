//! A flapping primary never makes the weights flap.

use std::time::{Duration, Instant};

use twinkle_dr::{RouteState, Weights};

use crate::support::*;

/// Toggles the primary 503/200 for `duration`: each blip is one probe
/// interval of 503, then three intervals of 200.
async fn flap(target: &HealthTarget, duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        target.set_healthy(false);
        tokio::time::sleep(Duration::from_millis(INTERVAL_MS)).await;
        target.set_healthy(true);
        tokio::time::sleep(Duration::from_millis(3 * INTERVAL_MS)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_primary_does_not_flap_route53() {
    let h = Harness::new(true, true, true).await;
    // Automatic failback after 1.5 s clean, and no ramp to DR EKS alone
    // during the test: the only legitimate moves are one failover and one
    // failback.
    let config = h.config_with(
        "flap",
        "  failback: automatic\n  automaticFailbackAfterMs: 1500\n  drEksFullAfterMs: 600000",
    );
    let wd = h.spawn(config);
    wd.wait_ready().await;

    // 1. Blips shorter than the failure threshold: nothing moves.
    flap(&h.targets.primary, Duration::from_secs(3)).await;
    assert_eq!(
        h.front.weight_writes().len(),
        0,
        "{:?}",
        h.front.weight_writes()
    );
    assert_eq!(h.weights().await, Some(Weights::new(100, 0, 0)));

    // 2. A real outage: one failover (DR EKS has been up long enough to share).
    h.targets.primary.set_healthy(false);
    h.wait_weights(Weights::new(0, 50, 50), Duration::from_secs(3))
        .await;

    // 3. The primary flaps back and forth: it is never clean for 1.5 s, so
    //    no failback, and no other move.
    flap(&h.targets.primary, Duration::from_secs(3)).await;
    assert_eq!(h.weights().await, Some(Weights::new(0, 50, 50)));
    assert_eq!(
        h.front.weight_writes().len(),
        1,
        "{:?}",
        h.front.weight_writes()
    );

    // 4. Stable again: exactly one automatic failback.
    h.targets.primary.set_healthy(true);
    h.wait_weights(Weights::new(100, 0, 0), Duration::from_secs(4))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = h.front.weight_writes();
    eprintln!("weight batches over ~9 s of flapping: {}", writes.len());
    assert_eq!(writes.len(), 2, "{writes:?}");
    let states: Vec<_> = wd.status().transitions.iter().map(|t| t.to).collect();
    assert_eq!(states, [RouteState::DrSplit, RouteState::Normal]);
    wd.stop().await;
}
