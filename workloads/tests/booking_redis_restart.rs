//! Restart Redis (AOF on) mid-sale: decisions fail for a while and are
//! retried from the uncommitted batch; the API answers 503 and customers
//! retry with the same Idempotency-Key — every 202 ends in exactly one
//! outcome, no oversell, nobody twice, and the store agrees with the
//! outcomes topic. Its own test binary: it restarts the shared Redis.

#![allow(clippy::unwrap_used)]

mod support;

use support::pipeline::Pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn redis_restart_mid_sale_loses_nothing() {
    let (pipeline, mut decider) = Pipeline::start().await;
    let accepted = pipeline
        .book_all(support::pipeline::CUSTOMERS / 3, || async {
            pipeline.stack.ctl("restart", "redis").await.unwrap();
        })
        .await;
    pipeline.check_invariants(&accepted).await;
    decider.start_kill().unwrap();
    pipeline.api.shutdown().await.unwrap();
}
