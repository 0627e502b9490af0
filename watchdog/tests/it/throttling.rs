//! Route53 pushes back: throttled, busy and failing batches are retried
//! with backoff until the weights land — and never half of a batch.

use std::collections::BTreeSet;
use std::time::Duration;

use twinkle_dr::Weights;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_weight_batches_are_retried_and_never_partial() {
    let h = Harness::new(true, false, true).await;
    let wd = h.spawn(h.config("throttled"));
    wd.wait_ready().await;

    // Everything moto holds while this runs, read straight from moto.
    let sampler = {
        let (moto, zone) = (
            h.moto.clone(),
            Zone {
                id: h.zone.id.clone(),
                record: h.zone.record.clone(),
            },
        );
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            for _ in 0..150 {
                if let Some(w) = moto_weights(&moto, &zone).await {
                    seen.insert((w.primary, w.dr_eks, w.dr_ecs));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };

    h.front.inject(&[
        Fault::Throttling,
        Fault::PriorRequestNotComplete,
        Fault::ServiceUnavailable,
    ]);
    h.targets.primary.stop();
    let took = h
        .wait_weights(Weights::new(0, 0, 100), Duration::from_secs(5))
        .await;

    let batches: Vec<_> = h
        .front
        .batches()
        .into_iter()
        .filter(|b| b.has_weights())
        .collect();
    let faults: Vec<_> = batches.iter().map(|b| b.fault.clone()).collect();
    eprintln!("weights landed {took:?} after the primary stopped; weight batches: {faults:?}");
    assert_eq!(
        faults,
        [
            Some("Throttling".to_owned()),
            Some("PriorRequestNotComplete".to_owned()),
            Some("ServiceUnavailable".to_owned()),
            None
        ]
    );
    assert!(
        batches.iter().all(|b| b.weights.len() == 3),
        "every attempt carries all three records"
    );
    assert!(wd.watchdog.metrics().route53_retries.get() >= 3);
    assert_eq!(wd.status().writes, 1);

    let seen = sampler.await.unwrap();
    assert_eq!(
        seen,
        BTreeSet::from([(100, 0, 0), (0, 0, 100)]),
        "only whole states are ever visible"
    );
    wd.stop().await;
}
