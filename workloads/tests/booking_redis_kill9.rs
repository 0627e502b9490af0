//! kill -9 Redis mid-rush (AOF `everysec`, as the test stack runs it), then
//! start it again on the same data: decisions go on (the decider decides
//! against its ledger, not Redis), projections and registrations fail for a
//! while and the API answers 503; customers retry with the same
//! Idempotency-Key — every 202 ends in exactly one outcome in the log, no
//! oversell, nobody twice, and the projection catches up by itself.
//! Its own test binary: it kills the shared Redis.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::pipeline::{CUSTOMERS, Pipeline};

#[tokio::test(flavor = "multi_thread")]
async fn redis_kill_9_mid_rush_loses_nothing() {
    let (pipeline, mut decider) = Pipeline::start().await;
    let accepted = pipeline
        .book_all(CUSTOMERS / 3, || async {
            let before = pipeline.projected_watermark().await.unwrap_or(0);
            pipeline.stack.ctl("crash-restart", "redis").await.unwrap();
            let took = pipeline
                .projection_reaches(before, Duration::from_secs(30))
                .await;
            eprintln!(
                "Redis back after kill -9; projection at its pre-kill watermark {before} {took:?} later"
            );
        })
        .await;
    pipeline.check_invariants(&accepted).await;
    pipeline.check_places().await;
    decider.start_kill().unwrap();
    pipeline.api.shutdown().await.unwrap();
}
