//! `twinkle-operator dr …` as a person runs it: the real binary against the
//! real moto Route53 of the test stack, with a live local health target for
//! the primary and dead ones for the DR targets.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use axum::{Router, routing::get};
use twinkle_e2e::stack::{Stack, unique};

async fn create_zone(stack: &Stack) -> (String, String) {
    let zone = twinkle_e2e::route53::create_zone(stack, "drcli").await;
    (zone.id, zone.record)
}

async fn healthy_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/healthz")
}

/// The config names no Route53 endpoint: `TWINKLE_ROUTE53_ENDPOINT` (what
/// the in-cluster watchdog reads) supplies moto's, as on a standby whose
/// config file is shared with production.
fn write_config(dir: &Path, zone: &str, record: &str, primary_url: &str) -> std::path::PathBuf {
    // Port 9 on loopback: nothing listens, so the DR targets probe as down.
    let config = format!(
        r#"
route53:
  hostedZoneId: {zone}
  recordName: {record}
  recordType: A
  ttl: 60
  insyncPollMs: 50
  insyncTimeoutMs: 5000
targets:
  primary: {{ setIdentifier: primary-seoul-eks, values: [192.0.2.10], healthUrl: "{primary_url}" }}
  drEks: {{ setIdentifier: dr-singapore-eks, values: [192.0.2.20], healthUrl: "http://127.0.0.1:9/healthz" }}
  drEcs: {{ setIdentifier: dr-singapore-ecs, values: [192.0.2.30], healthUrl: "http://127.0.0.1:9/healthz" }}
probe: {{ intervalMs: 400, timeoutMs: 300 }}
failover:
  probe: {{ failuresToDown: 2, successesToUp: 2 }}
lease: {{ durationMs: 5000 }}
"#
    );
    let path = dir.join("dr.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `twinkle-operator dr ARGS --config CONFIG` with stdout and stderr
/// piped, as under ECS or a CI job; returns stdout. Piped logs must carry no
/// ANSI colour codes (CloudWatch shows them as text).
async fn dr(stack: &Stack, config: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .arg("dr")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("TWINKLE_ROUTE53_ENDPOINT", &stack.route53_endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dr {args:?} failed: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI codes in piped logs: {stderr:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_failover_status_and_failback() {
    let stack = Stack::require();
    let (zone, record) = create_zone(&stack).await;
    let dir = std::env::temp_dir().join(unique("drcli"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(&dir, &zone, &record, &healthy_target().await);

    let failover = json(
        &dr(
            &stack,
            &config,
            &["failover", "--to", "dr-ecs", "-o", "json"],
        )
        .await,
    );
    assert_eq!(failover["state"], "overrideDrEcs", "{failover}");
    assert_eq!(failover["weights"]["drEcs"], 100);
    assert_eq!(failover["weights"]["primary"], 0);
    assert_eq!(failover["ownership"]["region"], "dr", "{failover}");
    assert_eq!(failover["ownership"]["epoch"], 1);

    let status = json(&dr(&stack, &config, &["status", "-o", "json"]).await);
    assert_eq!(status["route53Weights"]["drEcs"], 100, "{status}");
    assert_eq!(status["route53Weights"]["primary"], 0);
    assert_eq!(status["state"], "overrideDrEcs");
    assert_eq!(
        status["ownership"],
        serde_json::json!({"region": "dr", "epoch": 1})
    );
    assert_eq!(status["probes"]["results"]["primary"]["healthy"], true);
    assert_eq!(status["probes"]["results"]["drEks"]["healthy"], false);

    let failback = json(&dr(&stack, &config, &["failback", "-o", "json"]).await);
    assert_eq!(failback["state"], "normal", "{failback}");
    assert_eq!(failback["weights"]["primary"], 100);
    assert_eq!(failback["ownership"]["region"], "primary");
    assert_eq!(failback["ownership"]["epoch"], 2);

    let table = dr(&stack, &config, &["status"]).await;
    assert!(
        table.contains("Primary") && table.contains("healthy"),
        "{table}"
    );
    assert!(table.contains("100"), "{table}");
    assert!(
        table.contains("selling region primary (epoch 2)"),
        "{table}"
    );
    std::fs::remove_dir_all(dir).ok();
}
