//! The chart's RBAC is enough, and no more: the operator runs on the real
//! apiserver as the chart's ServiceAccount (a token from the TokenRequest
//! API, nothing else), with exactly the Role, Lease Role and bindings
//! `helm template` renders, and takes a TicketEvent through its whole life:
//! leader Lease, finalizer, Secret lookup, server-side apply of every object,
//! status, Events, an update, deletion with topic cleanup. Nothing it does is
//! forbidden; nothing beyond the rendered rules is granted.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use support::{install_crd, repo};
use twinkle_e2e::stack::{Stack, output, unique};

async fn helm_template(release: &str, ns: &str) -> String {
    let helm = std::env::var("TT_HELM").expect("TT_HELM: run the tests through scripts/test.sh");
    output(
        tokio::process::Command::new(helm)
            .args(["template", release])
            .arg(repo("charts/twinkle-operator"))
            .args(["--namespace", ns, "--set", &format!("watchNamespace={ns}")])
            .args(["--show-only", "templates/serviceaccount.yaml"])
            .args(["--show-only", "templates/rbac.yaml"]),
    )
    .await
    .unwrap()
}

/// A kubeconfig for the test apiserver that authenticates with `token` only.
async fn token_kubeconfig(stack: &Stack, token: &str, path: &Path) {
    let admin = stack
        .kubectl(&["config", "view", "--raw", "--minify", "-o", "json"])
        .await
        .unwrap();
    let admin: Value = serde_json::from_str(&admin).unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let mut cluster_entry = serde_json::json!({"server": cluster["server"]});
    for key in ["certificate-authority-data", "certificate-authority"] {
        if !cluster[key].is_null() {
            cluster_entry[key] = cluster[key].clone();
        }
    }
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster_entry}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "operator"}}],
        "current-context": "operator",
    });
    std::fs::write(path, config.to_string()).unwrap();
}

fn manifest(ns: &str, name: &str, peak: u32) -> String {
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
  title: "rbac test"
  opensAt: "{opens}"
  closesAt: "{closes}"
  slots: [{{id: s1, label: "10:00", capacity: 10}}]
  perCustomerLimit: 1
  traffic: {{expectedPeakRps: {peak}, headroomPercent: 30, minReplicas: 1, maxReplicas: 20, preScaleLead: 15m}}
  queue: {{admissionPerSecond: 100, maxActiveSessions: 1000, sessionTtl: 10m}}
  kafka: {{bootstrapSecretRef: {{name: kafka-bootstrap, key: servers}}, partitions: auto, replicationFactor: 1, retention: 1h, deletionPolicy: Delete}}
  redis: {{secretRef: {{name: redis, key: url}}}}
"#,
        opens = at(10),
        closes = at(120),
    )
}

async fn apply_text(stack: &Stack, dir: &Path, text: &str) {
    let file = dir.join(format!("{}.yaml", unique("obj")));
    std::fs::write(&file, text).unwrap();
    stack
        .kubectl(&["apply", "-f", file.to_str().unwrap()])
        .await
        .unwrap();
}

async fn can_i(stack: &Stack, sa: &str, verb: &str, resource: &str, ns: &str) -> bool {
    stack
        .kubectl(&["auth", "can-i", verb, resource, "-n", ns, "--as", sa])
        .await
        .is_ok_and(|out| out.trim() == "yes")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_runs_on_exactly_the_charts_rbac() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let ns = unique("rbac");
    stack.kubectl(&["create", "namespace", &ns]).await.unwrap();
    let dir = std::env::temp_dir().join(unique("rbac"));
    std::fs::create_dir_all(&dir).unwrap();

    // The chart's ServiceAccount and RBAC, as rendered.
    let rendered = helm_template("tt", &ns).await;
    assert!(rendered.contains("kind: Role\n"), "{rendered}");
    assert!(
        !rendered.contains("ClusterRole"),
        "namespaced install: {rendered}"
    );
    apply_text(&stack, &dir, &rendered).await;
    let sa_name = "tt-twinkle-operator";
    let sa = format!("system:serviceaccount:{ns}:{sa_name}");

    // Least privilege, as the apiserver sees it.
    for (verb, resource) in [
        ("list", "ticketevents.ticket.twinkle.dev"),
        ("patch", "ticketevents.ticket.twinkle.dev/status"),
        ("create", "deployments.apps"),
        ("get", "secrets"),
        ("create", "events.events.k8s.io"),
        ("create", "leases.coordination.k8s.io"),
    ] {
        assert!(
            can_i(&stack, &sa, verb, resource, &ns).await,
            "{verb} {resource}"
        );
    }
    for (verb, resource) in [
        ("get", "ticketevents.ticket.twinkle.dev"),
        ("delete", "ticketevents.ticket.twinkle.dev"),
        ("delete", "deployments.apps"),
        ("update", "deployments.apps"),
        ("list", "secrets"),
        ("create", "secrets"),
        ("get", "pods"),
        ("list", "ticketevents.ticket.twinkle.dev"),
    ] {
        let other_ns = if verb == "list" && resource.starts_with("ticketevents") {
            "default"
        } else {
            &ns
        };
        assert!(
            !can_i(&stack, &sa, verb, resource, other_ns).await,
            "{verb} {resource} in {other_ns} must not be granted"
        );
    }

    // The operator as that ServiceAccount, nothing else.
    let token = stack
        .kubectl(&["create", "token", sa_name, "-n", &ns, "--duration=1h"])
        .await
        .unwrap();
    let kubeconfig = dir.join("kubeconfig");
    token_kubeconfig(&stack, token.trim(), &kubeconfig).await;
    let log = dir.join("operator.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .args(["run", "--workload-image", "twinkle:test"])
        .args(["--watch-namespace", &ns, "--lease-namespace", &ns])
        .args(["--lease", "tt-twinkle-operator", "--identity", "op-rbac"])
        .args(["--metrics-listen", "127.0.0.1:0", "--poll-secs", "1"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // The Kafka address comes from a Secret (get secrets).
    stack
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "kafka-bootstrap",
            "-n",
            &ns,
            &format!("--from-literal=servers={}", stack.kafka_bootstrap),
        ])
        .await
        .unwrap();
    apply_text(&stack, &dir, &manifest(&ns, "ev", 2000)).await;
    let wait_ready = |generation: &'static str| {
        let ns = ns.clone();
        let stack = stack.clone();
        async move {
            stack
                .kubectl(&[
                    "wait",
                    &format!("--for=jsonpath={{.status.observedGeneration}}={generation}"),
                    "--timeout=60s",
                    "-n",
                    &ns,
                    "ticketevent/ev",
                ])
                .await
                .unwrap();
            stack
                .kubectl(&[
                    "wait",
                    "--for=condition=Ready",
                    "--timeout=60s",
                    "-n",
                    &ns,
                    "ticketevent/ev",
                ])
                .await
                .unwrap_or_else(|e| panic!("Ready at generation {generation}: {e}"));
        }
    };
    wait_ready("1").await;

    let holder = stack
        .kubectl(&[
            "get",
            "lease",
            "tt-twinkle-operator",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await
        .unwrap();
    assert_eq!(holder, "op-rbac");
    let owned = stack
        .kubectl(&[
            "get",
            "deployments,services,hpa,configmaps",
            "-n",
            &ns,
            "-l",
            "app.kubernetes.io/managed-by=twinkle-operator",
            "-o",
            "name",
        ])
        .await
        .unwrap();
    assert!(owned.contains("deployment.apps/ev-queue-api"), "{owned}");
    assert!(owned.contains("configmap/ev-event"), "{owned}");

    // An update is reconciled (patches again, writes status again).
    apply_text(&stack, &dir, &manifest(&ns, "ev", 4000)).await;
    wait_ready("2").await;

    let events = stack
        .kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &ns,
            "-o",
            "jsonpath={range .items[*]}{.reportingController} {.reason}{\"\\n\"}{end}",
        ])
        .await
        .unwrap();
    assert!(events.contains("twinkle-operator TopicCreated"), "{events}");

    // Deletion: the finalizer deletes the topics, then lets go.
    stack
        .kubectl(&["delete", "ticketevent/ev", "-n", &ns, "--wait=false"])
        .await
        .unwrap();
    stack
        .kubectl(&[
            "wait",
            "--for=delete",
            "--timeout=60s",
            "-n",
            &ns,
            "ticketevent/ev",
        ])
        .await
        .unwrap();
    let events = stack
        .kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].reason}",
        ])
        .await
        .unwrap();
    assert!(events.contains("TopicsDeleted"), "{events}");

    // Give a last reconcile or Event a moment, then read the log.
    tokio::time::sleep(Duration::from_secs(1)).await;
    operator.start_kill().unwrap();
    let _ = operator.wait().await;
    let text = std::fs::read_to_string(&log).unwrap();
    // Not a bare "403": log timestamps' microseconds contain it
    // (`08:24:55.403430Z` failed this once).
    for denied in ["forbidden", "Forbidden", "code: 403"] {
        assert!(
            !text.contains(denied),
            "the operator was denied something the chart should grant:\n{text}"
        );
    }
    assert!(text.contains("leading: starting the controller"), "{text}");

    stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
}
