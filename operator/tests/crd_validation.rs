//! The generated CRD on the real kube-apiserver: the example is accepted,
//! every manifest in `fixtures/invalid/` is refused by the server itself
//! with the message its `# expect:` line names, and a created TicketEvent
//! gets its defaults, status subresource and printer columns.

mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{install_crd, repo};
use twinkle_e2e::{
    Error,
    stack::{Stack, unique},
};

fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// `kubectl apply --dry-run=server`: Ok(stdout) if accepted, Err(stderr)
/// if refused.
async fn dry_run(stack: &Stack, file: &Path) -> Result<String, String> {
    match stack
        .kubectl(&[
            "apply",
            "--dry-run=server",
            "-n",
            "default",
            "-f",
            text(file),
        ])
        .await
    {
        Ok(out) => Ok(out),
        Err(Error::Command { stderr, .. }) => Err(stderr),
        Err(other) => panic!("cannot run kubectl: {other}"),
    }
}

/// Retries `check` for a while: right after a CRD update, an Established
/// CRD can still be served with its previous schema for a moment.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The `# expect: ...` line of an invalid fixture.
fn expected_fragment(file: &Path) -> String {
    let content = std::fs::read_to_string(file).expect("read fixture");
    assert!(
        content.lines().any(|l| l.starts_with("# flaw: ")),
        "{} lacks a `# flaw:` line",
        file.display()
    );
    content
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", file.display()))
        .to_owned()
}

#[tokio::test]
async fn example_is_accepted() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let example = repo("examples/demo-event.yaml");
    eventually("the example should be accepted", || async {
        dry_run(&stack, &example).await.map(drop)
    })
    .await;
}

#[tokio::test]
async fn each_invalid_manifest_is_refused_with_its_reason() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read fixtures/invalid")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "only {} invalid fixtures", files.len());
    for file in &files {
        let fragment = expected_fragment(file);
        eventually(&file.display().to_string(), || async {
            match dry_run(&stack, file).await {
                Ok(out) => Err(format!("accepted by the API server: {out}")),
                Err(stderr) if stderr.contains(&fragment) => Ok(()),
                Err(stderr) => Err(format!("refused, but not with {fragment:?}: {stderr}")),
            }
        })
        .await;
    }
}

#[tokio::test]
async fn created_event_gets_defaults_status_and_columns() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let ns = unique("te");
    stack
        .kubectl(&["create", "namespace", &ns])
        .await
        .expect("create namespace");

    // The example minus everything that has a default.
    let manifest = r#"
apiVersion: ticket.twinkle.dev/v1alpha1
kind: TicketEvent
metadata: {name: minimal}
spec:
  title: Minimal
  opensAt: "2026-12-05T10:00:00+09:00"
  closesAt: "2026-12-05T12:00:00+09:00"
  slots: [{id: a, label: A, capacity: 1}]
  perCustomerLimit: 1
  traffic: {expectedPeakRps: 50000, maxReplicas: 40}
  queue: {admissionPerSecond: 10, maxActiveSessions: 10, sessionTtl: 5m}
  kafka: {bootstrapServers: "kafka-0.kafka:9092"}
  redis: {secretRef: {name: redis, key: url}}
"#;
    let file = std::env::temp_dir().join(format!("{ns}.yaml"));
    std::fs::write(&file, manifest).expect("write manifest");
    eventually("create the minimal TicketEvent", || async {
        stack
            .kubectl(&["apply", "-n", &ns, "-f", text(&file)])
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;

    let got: Value = serde_json::from_str(
        &stack
            .kubectl(&["get", "te", "minimal", "-n", &ns, "-o", "json"])
            .await
            .expect("get by short name"),
    )
    .expect("json");
    let spec = &got["spec"];
    assert_eq!(spec["kafka"]["partitions"], "auto");
    assert_eq!(spec["kafka"]["deletionPolicy"], "Retain");
    assert_eq!(spec["kafka"]["replicationFactor"], 3);
    assert_eq!(spec["kafka"]["retention"], "168h");
    assert_eq!(spec["traffic"]["headroomPercent"], 30);
    assert_eq!(spec["traffic"]["minReplicas"], 2);
    assert_eq!(spec["traffic"]["preScaleLead"], "15m");
    assert_eq!(spec["queue"]["openingMode"], "fifo");
    // What the server stored parses back into the Rust types.
    let event: twinkle_operator::crd::TicketEvent =
        serde_json::from_value(got).expect("stored object parses as a TicketEvent");
    assert_eq!(event.spec.title, "Minimal");

    // The status subresource and the columns the operator will fill in.
    let status = serde_json::json!({"status": {
        "observedGeneration": 1,
        "phase": "Ready",
        "window": "Idle",
        "sizing": {"queueApi": 26, "bookingApi": 26, "queueConsumer": 26, "bookingConsumer": 26,
                   "partitions": 26, "perPodRps": 2500, "summary": "26/26/26/26"},
        "dr": {"state": "Normal", "weights": {"primary": 100, "drEks": 0, "drEcs": 0}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllReady", "message": "",
                        "lastTransitionTime": "2026-11-22T00:00:00Z", "observedGeneration": 1}]
    }});
    stack
        .kubectl(&[
            "patch",
            "te",
            "minimal",
            "-n",
            &ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ])
        .await
        .expect("patch the status subresource");
    stack
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=10s",
            "te/minimal",
            "-n",
            &ns,
        ])
        .await
        .expect("kubectl wait --for=condition=Ready");
    let table = stack
        .kubectl(&["get", "ticketevents", "-n", &ns])
        .await
        .expect("kubectl get");
    let header: Vec<_> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "PEAK RPS", "REPLICAS", "DR STATE", "AGE"],
        "{table}"
    );
    let row = table.lines().nth(1).unwrap_or_default();
    for cell in ["minimal", "Ready", "50000", "26/26/26/26", "Normal"] {
        assert!(row.contains(cell), "{cell} missing from {table}");
    }

    std::fs::remove_file(&file).ok();
    stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await
        .expect("delete namespace");
}
