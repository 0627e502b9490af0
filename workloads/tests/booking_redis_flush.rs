//! Redis emptied (`FLUSHALL`) mid-sale, with two decider processes and one
//! of them a paused zombie: the active decider is frozen (SIGSTOP) holding
//! the lease while requests keep arriving; Redis is then emptied while a
//! third of the customers are still to book (the projection, the
//! registrations, the queue's places and sessions and both leases with
//! it). The queue keeper restores places and sessions from its journal, so
//! the rest book as if nothing happened (a 503 and a retry at most); the
//! standby takes the lease, fences the zombie through the outcomes log's
//! transactions, restores the projection from the log (sold seats stay
//! sold) and decides the backlog; the zombie is woken and must not get a
//! decision in. Every 202 ends in exactly one outcome in the log, which its
//! customer reads — never a 404 — and every customer keeps their number.
//! Its own test binary: it empties the shared Redis.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::pipeline::{CUSTOMERS, Pipeline};

async fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn flushall_with_a_zombie_and_a_standby_decider_loses_nothing() {
    let (pipeline, mut zombie) = Pipeline::start().await;
    // The first decider holds the lease (it restored the projection).
    pipeline
        .projection_reaches(0, Duration::from_secs(60))
        .await;
    let mut standby = pipeline.spawn_decider();
    let mut projected_before = 0;
    let accepted = pipeline
        .book_all(CUSTOMERS / 3, || async {
            signal(&zombie, "-STOP").await;
            pipeline.accepted_reaches(CUSTOMERS * 2 / 3).await;
            projected_before = pipeline.projected_watermark().await.unwrap_or(0);
            let mut con = redis::Client::open(pipeline.redis_url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
            let took = pipeline
                .projection_reaches(projected_before, Duration::from_secs(60))
                .await;
            eprintln!(
                "FLUSHALL at watermark {projected_before}: projection restored to it {took:?} later"
            );
            signal(&zombie, "-CONT").await;
        })
        .await;
    assert!(
        projected_before > 0,
        "decisions were projected before the flush, so the restore had sold seats to bring back"
    );
    pipeline.check_invariants(&accepted).await;
    pipeline.check_places().await;
    for decider in [&mut zombie, &mut standby] {
        decider.start_kill().unwrap();
    }
    pipeline.api.shutdown().await.unwrap();
}
