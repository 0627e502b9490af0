//! Restart the Kafka broker mid-sale: appends fail for a while (the API
//! answers 503, the customer retries with the same Idempotency-Key; the
//! decider retries its uncommitted batch), then everything resumes — every
//! 202 ends in exactly one outcome, no oversell, nobody twice.
//! Its own test binary: restarting the broker would disturb other tests.

#![allow(clippy::unwrap_used)]

mod support;

use support::pipeline::Pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_mid_sale_loses_nothing() {
    let (pipeline, mut decider) = Pipeline::start().await;
    let accepted = pipeline
        .book_all(support::pipeline::CUSTOMERS / 3, || async {
            pipeline.stack.ctl("restart", "kafka").await.unwrap();
        })
        .await;
    pipeline.check_invariants(&accepted).await;
    pipeline.check_places().await;
    decider.start_kill().unwrap();
    pipeline.api.shutdown().await.unwrap();
}
