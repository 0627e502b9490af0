//! Failover to a lagging replica mid-rush, as an ElastiCache primary
//! failover does it: a real second `redis-server` replicates the primary;
//! it stops receiving writes (`REPLICAOF NO ONE` — from then on it lags by
//! everything written after); the rush goes on for 1.5 s; the primary is
//! killed (-9) and the replica's data is what the workloads find when they
//! reconnect (a fresh server on the primary's port syncs from the lagging
//! replica and is promoted). Decisions that were projected are rolled back
//! in Redis but not in the log: the decider restores the projection, the
//! API answers 503 (never 404, never a different outcome) meanwhile, and no
//! seat is sold twice.
//! Its own Redis pair (not the stack's), on ports of its own.

#![allow(clippy::unwrap_used)]

mod support;

use std::{path::Path, time::Duration};

use support::pipeline::{CUSTOMERS, Pipeline};
use twinkle_e2e::stack::unique;

/// Below the kernel's ephemeral range (32768+), where an outgoing
/// connection could hold the port; offset by the stack's base so two stacks
/// don't collide.
fn port_base() -> u16 {
    let stack: u16 = std::env::var("TT_PORT_BASE")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(39000);
    20_000 + stack % 10_000
}

/// A `redis-server` of the test's own (AOF everysec, like the stack's),
/// logging to `dir/redis.log`.
fn redis_server(port: u16, dir: &Path, extra: &[&str]) -> tokio::process::Child {
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join("redis.log")).unwrap();
    tokio::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--dir")
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ])
        .args(extra)
        .stdout(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn redis_cmd(port: u16, args: &[&str]) -> String {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `port` answers and, if `replica`, its link to its primary
/// is up (the initial sync finished).
async fn ready(port: u16, replica: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = redis_cmd(port, &["info", "replication"]).await;
        let up = if replica {
            info.contains("master_link_status:up")
        } else {
            info.contains("role:master")
        };
        if up {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis on {port} not ready: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_to_a_lagging_replica_loses_nothing() {
    let (primary_port, replica_port) = (port_base() + 81, port_base() + 82);
    let dir = std::env::temp_dir().join(unique("redis-failover"));
    let mut primary = redis_server(primary_port, &dir.join("primary"), &[]);
    ready(primary_port, false).await;
    let mut replica = redis_server(
        replica_port,
        &dir.join("replica"),
        &["--replicaof", "127.0.0.1", &primary_port.to_string()],
    );
    ready(replica_port, true).await;

    let (pipeline, mut decider) =
        Pipeline::start_on(format!("redis://127.0.0.1:{primary_port}")).await;
    let mut promoted = None;
    let mut lost = 0;
    let accepted = pipeline
        .book_all(CUSTOMERS / 3, || async {
            // The replica stops receiving writes: it now lags.
            let at_split = pipeline.projected_watermark().await.unwrap_or(0);
            redis_cmd(replica_port, &["replicaof", "no", "one"]).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let before = pipeline.projected_watermark().await.unwrap_or(0);
            primary.start_kill().unwrap();
            primary.wait().await.unwrap();
            // The lagging data comes back on the primary's address.
            let server = redis_server(
                primary_port,
                &dir.join("promoted"),
                &[
                    "--replicaof",
                    "127.0.0.1",
                    &replica_port.to_string(),
                    "--replica-serve-stale-data",
                    "no",
                ],
            );
            ready(primary_port, true).await;
            redis_cmd(primary_port, &["replicaof", "no", "one"]).await;
            let rolled_back = pipeline.projected_watermark().await.unwrap_or(0);
            lost = before.saturating_sub(rolled_back);
            eprintln!(
                "replica split at watermark ~{at_split}; primary died at {before}; \
                 promoted replica holds {rolled_back} ({lost} projected decisions lost)"
            );
            let took = pipeline
                .projection_reaches(before, Duration::from_secs(60))
                .await;
            eprintln!("projection whole again {took:?} after the promotion");
            promoted = Some(server);
        })
        .await;
    assert!(
        lost > 0,
        "the promoted replica must really have missed projected decisions"
    );
    pipeline.check_invariants(&accepted).await;
    pipeline.check_places().await;
    decider.start_kill().unwrap();
    pipeline.api.shutdown().await.unwrap();
    replica.start_kill().unwrap();
    if let Some(mut server) = promoted {
        server.start_kill().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
