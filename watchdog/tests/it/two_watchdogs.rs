//! Two watchdogs at once: one writes; a crash hands over after expiry.

use std::time::{Duration, Instant};

use twinkle_dr::Weights;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchdogs_one_writer_and_takeover_after_expiry() {
    let h = Harness::new(true, false, true).await;
    let a = h.spawn(h.config("wd-a"));
    let b = h.spawn(h.config("wd-b"));
    wait_for(
        "one holder, both seeing the primary",
        Duration::from_secs(10),
        || async { ((a.holds() || b.holds()) && a.primary_up() && b.primary_up()).then_some(()) },
    )
    .await;

    // Sample who holds, all along: never both.
    let sampler = {
        let (a, b) = (a.watchdog.clone(), b.watchdog.clone());
        tokio::spawn(async move {
            let mut both = 0;
            for _ in 0..400 {
                if a.status().lease.held && b.status().lease.held {
                    both += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            both
        })
    };

    h.targets.primary.stop();
    h.wait_weights(Weights::new(0, 0, 100), Duration::from_secs(3))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let writes = h.front.weight_writes();
    assert_eq!(
        writes.len(),
        1,
        "exactly one write for one transition: {writes:?}"
    );
    let (holder, standby, standby_name) = if a.holds() {
        (a, b, "wd-b")
    } else {
        (b, a, "wd-a")
    };
    let holder_name = holder.status().holder_id.clone();
    assert_eq!(
        writes[0].lease_holder.as_deref(),
        Some(holder_name.as_str())
    );
    // The standby reached the same decision on its own, and did not write.
    assert_eq!(
        standby.status().machine.unwrap().state,
        twinkle_dr::RouteState::DrEcsOnly
    );
    assert_eq!(standby.status().writes, 0);
    assert_eq!(standby.watchdog.metrics().lease_held.get(), 0);
    assert_eq!(holder.watchdog.metrics().lease_held.get(), 1);

    // The holder crashes without releasing: the standby waits for expiry.
    let last_expiry = holder.status().lease.record.unwrap().expires_unix_ms;
    let crashed_at = Instant::now();
    holder.crash();
    wait_for("standby takes over", Duration::from_secs(5), || async {
        standby.holds().then_some(())
    })
    .await;
    let took_at = twinkle_watchdog::lease::unix_ms_now();
    eprintln!(
        "{standby_name} took the lease {:?} after the crash; {} ms after the old lease expired",
        crashed_at.elapsed(),
        took_at as i64 - last_expiry as i64
    );
    assert!(
        took_at >= last_expiry,
        "took over before the crashed holder's lease expired"
    );

    // The new holder writes the next transition; the crashed one never again.
    h.targets.dr_eks.set_healthy(true);
    h.wait_weights(Weights::new(0, 50, 50), Duration::from_secs(5))
        .await;
    let writes = h.front.weight_writes();
    let per_holder = |name: &str| {
        writes
            .iter()
            .filter(|b| b.lease_holder.as_deref() == Some(name))
            .count()
    };
    eprintln!(
        "weight writes per holder: {holder_name}={}, {standby_name}={}",
        per_holder(&holder_name),
        per_holder(standby_name)
    );
    assert_eq!(per_holder(&holder_name), 1);
    assert!(per_holder(standby_name) >= 1);
    assert_eq!(
        per_holder(&holder_name) + per_holder(standby_name),
        writes.len()
    );
    assert_eq!(sampler.await.unwrap(), 0, "both held the lease at once");
    standby.stop().await;
}
