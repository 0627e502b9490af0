//! Two operator processes at once against the real apiserver: only the
//! holder of the coordination.k8s.io Lease runs the controller (and writes);
//! when it is killed, the other takes over and reconciles.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{path::Path, process::Stdio, time::Duration};

use support::install_crd;
use twinkle_e2e::stack::{Stack, unique};

fn spawn_operator(stack: &Stack, ns: &str, identity: &str, log: &Path) -> tokio::process::Child {
    let out = std::fs::File::create(log).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .args([
            "run",
            "--workload-image",
            "twinkle:test",
            "--watch-namespace",
            ns,
        ])
        .args([
            "--lease-namespace",
            ns,
            "--lease",
            "twinkle-operator-leader-test",
        ])
        .args([
            "--identity",
            identity,
            "--metrics-listen",
            "127.0.0.1:0",
            "--poll-secs",
            "1",
        ])
        .env("KUBECONFIG", &stack.kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn leading(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("leading: starting the controller")
}

fn manifest(stack: &Stack, ns: &str, name: &str, peak: u32) -> String {
    let now = jiff::Timestamp::now();
    let at = |mins: i64| {
        now.checked_add(jiff::SignedDuration::from_mins(mins))
            .unwrap()
    };
    format!(
        r#"apiVersion: ticket.twinkle.dev/v1alpha1
kind: TicketEvent
metadata: {{name: {name}, namespace: {ns}}}
spec:
  title: "leader test"
  opensAt: "{opens}"
  closesAt: "{closes}"
  slots: [{{id: s1, label: "10:00", capacity: 10}}]
  perCustomerLimit: 1
  traffic: {{expectedPeakRps: {peak}, headroomPercent: 30, minReplicas: 1, maxReplicas: 20, preScaleLead: 15m}}
  queue: {{admissionPerSecond: 100, maxActiveSessions: 1000, sessionTtl: 10m}}
  kafka: {{bootstrapServers: "{kafka}", partitions: auto, replicationFactor: 1, retention: 1h, deletionPolicy: Delete}}
  redis: {{secretRef: {{name: redis, key: url}}}}
"#,
        opens = at(10),
        closes = at(120),
        kafka = stack.kafka_bootstrap,
    )
}

async fn apply(stack: &Stack, dir: &Path, text: &str) {
    let file = dir.join(format!("{}.yaml", unique("te")));
    std::fs::write(&file, text).unwrap();
    stack
        .kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .unwrap();
}

async fn wait_ready(stack: &Stack, ns: &str, name: &str, timeout: &str) {
    stack
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("--timeout={timeout}"),
            "-n",
            ns,
            &format!("ticketevent/{name}"),
        ])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let ns = unique("leader");
    stack.kubectl(&["create", "namespace", &ns]).await.unwrap();
    let dir = std::env::temp_dir().join(unique("leader"));
    std::fs::create_dir_all(&dir).unwrap();
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let mut a = spawn_operator(&stack, &ns, "op-a", &log_a);
    let mut b = spawn_operator(&stack, &ns, "op-b", &log_b);

    // Exactly one of them leads.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(leading(&log_a) || leading(&log_b)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        leading(&log_a) ^ leading(&log_b),
        "exactly one leader: a={} b={}",
        leading(&log_a),
        leading(&log_b)
    );
    let (leader, standby_log, standby_id) = if leading(&log_a) {
        (&mut a, &log_b, "op-b")
    } else {
        (&mut b, &log_a, "op-a")
    };
    let lease = stack
        .kubectl(&[
            "get",
            "lease",
            "twinkle-operator-leader-test",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await
        .unwrap();
    assert_ne!(lease, standby_id, "the Lease names the leader");

    apply(&stack, &dir, &manifest(&stack, &ns, "ev", 2000)).await;
    wait_ready(&stack, &ns, "ev", "60s").await;
    let managers = stack
        .kubectl(&[
            "get",
            "ticketevent",
            "ev",
            "-n",
            &ns,
            "--show-managed-fields",
            "-o",
            "json",
        ])
        .await
        .unwrap();
    assert!(
        managers.contains("twinkle-operator"),
        "status written by the operator"
    );

    // The leader dies without releasing the Lease: the standby takes over
    // after it expires and reconciles a change.
    leader.start_kill().unwrap();
    leader.wait().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !leading(standby_log) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(leading(standby_log), "the standby took over");
    apply(&stack, &dir, &manifest(&stack, &ns, "ev", 60_000)).await;
    let generation = stack
        .kubectl(&[
            "get",
            "ticketevent",
            "ev",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut observed = String::new();
    while tokio::time::Instant::now() < deadline {
        observed = stack
            .kubectl(&[
                "get",
                "ticketevent",
                "ev",
                "-n",
                &ns,
                "-o",
                "jsonpath={.status.observedGeneration}",
            ])
            .await
            .unwrap();
        if observed == generation {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(observed, generation, "the new leader reconciled the change");
    wait_ready(&stack, &ns, "ev", "60s").await;

    stack
        .kubectl(&["delete", "ticketevent", "ev", "-n", &ns, "--timeout=60s"])
        .await
        .unwrap();
    a.start_kill().ok();
    b.start_kill().ok();
    stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await
        .ok();
    std::fs::remove_dir_all(dir).ok();
}
