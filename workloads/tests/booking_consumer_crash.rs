//! kill -9 the decider process mid-stream (wherever it is: mid-transaction
//! included — the next decider's session aborts what it left open): every
//! 202 still ends in exactly one outcome, no seat is sold twice, nobody
//! books twice. Then, with no decider running, the Redis projection is lost
//! and restored from the outcomes topic with the CLI.
//! Its own test binary: it runs real processes against the shared servers.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::pipeline::Pipeline;
use twinkle_workloads::ports::BookingStore;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_the_decider_then_rebuild_from_the_outcomes_topic() {
    let (pipeline, mut decider) = Pipeline::start().await;
    let accepted = pipeline
        .book_all(support::pipeline::CUSTOMERS / 3, || async {
            decider.start_kill().unwrap(); // SIGKILL: no clean-up at all
            decider.wait().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        })
        .await;
    // A fresh process resumes from the offsets committed with the last
    // decisions (once the dead one's lease has expired).
    let mut decider = pipeline.spawn_decider();
    pipeline.check_invariants(&accepted).await;
    pipeline.check_places().await;
    decider.start_kill().unwrap();
    decider.wait().await.unwrap();

    // The CLI agrees; then the inventory is lost, the check fails, and the
    // rebuild brings back exactly what was there.
    let store = pipeline.store().await;
    let before = store.slot_counts(&pipeline.event.id).await.unwrap();
    let cli = |command: &'static str| {
        let p = &pipeline;
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle"))
                .args(["booking", command, "-o", "json"])
                .arg("--event")
                .arg(p.dir.join("event.json"))
                .args([
                    "--kafka",
                    &p.stack.kafka_bootstrap,
                    "--redis",
                    &p.stack.redis_url,
                ])
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap()
        }
    };
    let checked = cli("check").await;
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&checked.stdout)));
    assert_eq!(report["decided"], support::pipeline::CUSTOMERS);

    let mut con = redis::Client::open(pipeline.stack.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ev = pipeline.event.id.as_str();
    let keys: Vec<String> = ["wm", "cap", "left", "conf", "out"]
        .iter()
        .map(|k| format!("tt:{{{ev}}}:b:{k}"))
        .collect();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    let lost = cli("check").await;
    assert!(!lost.status.success(), "the check must notice the loss");

    // A rebuild by hand is refused while a decider holds the lease (the
    // killed one's lapses within its TTL).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.decider(&pipeline.event.id).await.unwrap().is_some() {
        let refused = cli("rebuild").await;
        assert!(!refused.status.success(), "refused while the lease is held");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("is running"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let rebuilt = cli("rebuild").await;
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let progress = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(
        progress.contains("replaying outcomes:"),
        "progress shown: {progress}"
    );
    assert_eq!(store.slot_counts(&pipeline.event.id).await.unwrap(), before);
    assert!(cli("check").await.status.success());
    pipeline.api.shutdown().await.unwrap();
}
