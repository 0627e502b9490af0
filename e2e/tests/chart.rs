//! The operator's Helm chart (`charts/twinkle-operator`): its CRD is the
//! generated one, it lints, it renders with default and full values into
//! manifests that kubeconform accepts in strict mode against the live
//! apiserver's schemas (plus the TicketEvent schema taken from the generated
//! CRD), and checkov finds nothing to fail in the render.
//!
//! Whether the RBAC it grants is enough (and used) is checked against the
//! real apiserver by `operator/tests/chart_rbac.rs`.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use twinkle_e2e::{
    kube_schemas::write_schemas,
    stack::{Stack, capture, output, unique},
};

fn tool(var: &str) -> PathBuf {
    std::env::var(var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests through scripts/test.sh"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn chart() -> PathBuf {
    repo("charts/twinkle-operator")
}

fn scratch(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `helm template` of the chart into a string.
async fn render(namespace: &str, values: Option<&Path>) -> String {
    let mut cmd = tokio::process::Command::new(tool("TT_HELM"));
    cmd.args(["template", "twinkle-operator"])
        .arg(chart())
        .args(["--namespace", namespace, "--include-crds"]);
    if let Some(values) = values {
        cmd.arg("--values").arg(values);
    }
    output(&mut cmd).await.unwrap()
}

fn full_values() -> PathBuf {
    chart().join("ci/full-values.yaml")
}

/// The documents of a multi-document YAML stream, as JSON.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|doc| {
            let value: Value = yaml_serde::from_str(doc).unwrap();
            (!value.is_null()).then_some(value)
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(docs, kind);
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

#[test]
fn the_chart_ships_the_generated_crd() {
    let generated = std::fs::read(repo("crds/ticketevent.yaml")).unwrap();
    let in_chart = std::fs::read(chart().join("crds/ticketevent.yaml")).unwrap();
    assert!(
        generated == in_chart,
        "charts/twinkle-operator/crds/ticketevent.yaml differs from crds/ticketevent.yaml \
         (which crdgen writes). Copy it: cp crds/ticketevent.yaml charts/twinkle-operator/crds/"
    );
}

// ------------------------------------------------------------------ schemas

/// What openapi2jsonschema does for kubeconform's strict schemas: objects
/// with known properties refuse unknown ones, int-or-string accepts both,
/// `nullable` accepts null.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("int-or-string")
                || map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            {
                map.remove("type");
                map.remove("format");
                map.insert(
                    "oneOf".into(),
                    json!([{"type": "string"}, {"type": "integer"}]),
                );
            }
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && map.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(ty)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([ty, "null"]));
            }
            for (key, value) in map.iter_mut() {
                // `properties` and `definitions` are maps of names to schemas.
                if key == "properties" || key == "definitions" {
                    if let Value::Object(children) = value {
                        children.values_mut().for_each(strict);
                    }
                } else {
                    strict(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The TicketEvent JSON schema from the generated CRD's openAPIV3Schema.
fn ticket_event_schema() -> Value {
    let crd: Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo("crds/ticketevent.yaml")).unwrap())
            .unwrap();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("a v1alpha1 version");
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    // The apiserver adds these to every custom resource; the CRD leaves
    // them out of its schema.
    let properties = schema["properties"].as_object_mut().unwrap();
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "enum": ["ticket.twinkle.dev/v1alpha1"]}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "enum": ["TicketEvent"]}),
    );
    properties.insert(
        "metadata".into(),
        json!({"$ref": "_definitions.json#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}),
    );
    strict(&mut schema);
    schema
}

/// Schemas for kubeconform: the live apiserver's (made strict) plus the
/// TicketEvent's. Returns kubeconform's `-schema-location`.
async fn schemas(stack: &Stack, dir: &Path) -> String {
    let openapi = stack
        .kubectl(&["get", "--raw", "/openapi/v2"])
        .await
        .unwrap();
    let mut openapi: Value = serde_json::from_str(&openapi).unwrap();
    strict(&mut openapi);
    let written = write_schemas(&openapi, dir).unwrap();
    assert!(
        written.contains_key("apiextensions.k8s.io/v1/CustomResourceDefinition"),
        "{written:?}"
    );
    std::fs::write(
        dir.join("ticketevent-ticket-v1alpha1.json"),
        ticket_event_schema().to_string(),
    )
    .unwrap();
    format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        dir.display()
    )
}

/// Runs kubeconform -strict; (success, stdout).
async fn kubeconform(location: &str, files: &[&Path]) -> (bool, String) {
    let out = capture(
        tokio::process::Command::new(tool("TT_KUBECONFORM"))
            .args(["-strict", "-summary", "-output", "text"])
            .args(["-schema-location", location])
            // The Prometheus Operator's CRD is not in this cluster; the
            // ServiceMonitor's shape is asserted below instead.
            .args(["-skip", "ServiceMonitor"])
            .args(files),
    )
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_lints_and_renders_manifests_kubeconform_accepts() {
    let stack = Stack::require();
    let helm = tool("TT_HELM");
    let dir = scratch("chart");

    // Lint with both value sets (values.schema.json checks them too).
    for values in [None, Some(full_values())] {
        let mut cmd = tokio::process::Command::new(&helm);
        cmd.args(["lint", "--strict"]).arg(chart());
        if let Some(values) = &values {
            cmd.arg("--values").arg(values);
        }
        let report = output(&mut cmd).await.unwrap();
        assert!(report.contains("0 chart(s) failed"), "{report}");
    }

    // values.schema.json refuses a typo and an out-of-range value.
    for bad in [
        "replicaCount=0",
        "imag.tag=1",
        "serviceAccount.irsaRoleArn=nope",
    ] {
        let out = capture(
            tokio::process::Command::new(&helm)
                .arg("template")
                .arg(chart())
                .args(["--set", bad]),
        )
        .await
        .unwrap();
        assert!(!out.status.success(), "--set {bad} must be refused");
    }

    let default = render("twinkle-system", None).await;
    let full = render("twinkle-system", Some(&full_values())).await;
    let (default_file, full_file) = (dir.join("default.yaml"), dir.join("full.yaml"));
    std::fs::write(&default_file, &default).unwrap();
    std::fs::write(&full_file, &full).unwrap();

    let location = schemas(&stack, &dir.join("schemas")).await;
    let example = repo("examples/demo-event.yaml");
    let (ok, report) = kubeconform(&location, &[&default_file, &full_file, &example]).await;
    println!("kubeconform: {report}");
    assert!(ok && report.contains("Invalid: 0, Errors: 0"), "{report}");
    // Every document was validated, none skipped for a missing schema
    // (the one ServiceMonitor is skipped on purpose).
    assert!(report.contains("Skipped: 1"), "{report}");

    // The schemas are strict: an unknown field fails, for a core kind and
    // for a TicketEvent alike.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n\
         spec: {maxUnavailable: 1, selectr: {}}\n",
    )
    .unwrap();
    let (ok, report) = kubeconform(&location, &[&broken]).await;
    assert!(!ok && report.contains("selectr"), "{report}");
    let event = std::fs::read_to_string(&example).unwrap().replace(
        "  perCustomerLimit: 1",
        "  perCustomerLimit: 1\n  perCustomerLimt: 2",
    );
    std::fs::write(&broken, event).unwrap();
    let (ok, report) = kubeconform(&location, &[&broken]).await;
    assert!(!ok && report.contains("perCustomerLimt"), "{report}");

    check_default_render(&documents(&default));
    check_full_render(&documents(&full));
    std::fs::remove_dir_all(dir).ok();
}

/// What the default render must contain: a cluster-wide operator, hardened.
fn check_default_render(docs: &[Value]) {
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ] {
        assert!(
            kinds.contains(kind),
            "default render lacks a {kind}: {kinds:?}"
        );
    }
    assert!(
        !kinds.contains("ServiceMonitor"),
        "ServiceMonitor is opt-in"
    );
    let crd = one(docs, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "ticketevents.ticket.twinkle.dev");

    let deployment = one(docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["run"]));
    assert_eq!(deployment["spec"]["replicas"], 2, "a standby for the Lease");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env = |name: &str| -> Value {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(env("TWINKLE_METRICS_LISTEN")["value"], "0.0.0.0:9090");
    assert!(env("TWINKLE_WORKLOAD_IMAGE")["value"].is_string());
    assert_eq!(
        env("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env("TWINKLE_WATCH_NAMESPACE"),
        Value::Null,
        "all namespaces"
    );

    // The leader-election Role names exactly the Lease the operator uses.
    let lease = env("TWINKLE_LEASE")["value"].clone();
    let role = one(docs, "Role");
    assert_eq!(role["metadata"]["namespace"], "twinkle-system");
    assert_eq!(role["rules"][0]["resourceNames"], json!([lease]));
    check_rbac(docs);
}

/// No wildcard anywhere, no verb the operator does not use.
fn check_rbac(docs: &[Value]) {
    let allowed: BTreeSet<&str> = ["get", "list", "watch", "create", "patch", "update"].into();
    for role in find(docs, "ClusterRole")
        .into_iter()
        .chain(find(docs, "Role"))
    {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                for item in rule[field].as_array().unwrap() {
                    assert_ne!(item, "*", "wildcard {field} in {rule}");
                }
            }
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    allowed.contains(verb.as_str().unwrap()),
                    "verb {verb} in {rule}"
                );
            }
            if rule["verbs"].as_array().unwrap().contains(&json!("update")) {
                assert_eq!(rule["resources"], json!(["ticketevents/finalizers"]));
            }
        }
    }
}

/// The full values switch on every option.
fn check_full_render(docs: &[Value]) {
    // watchNamespace: a Role in that namespace instead of a ClusterRole.
    assert!(find(docs, "ClusterRole").is_empty());
    let watch_role = find(docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == "popup")
        .expect("a Role in the watched namespace");
    assert!(
        watch_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["ticketevents"]))
    );
    let sa = one(docs, "ServiceAccount");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/twinkle-seoul-operator"
    );
    let deployment = one(docs, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["image"].as_str().unwrap().contains("@sha256:"),
        "a digest wins over the tag"
    );
    let service = one(docs, "Service");
    let monitor = one(docs, "ServiceMonitor");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"],
        "the ServiceMonitor scrapes the metrics Service's port"
    );
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key], value, "selector {key}");
    }
    let policy = one(docs, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    check_rbac(docs);
}

// ------------------------------------------------------------------ checkov

#[tokio::test(flavor = "multi_thread")]
async fn checkov_passes_the_rendered_chart() {
    let dir = scratch("chart-checkov");
    // Both renders in one checkov run (one start-up), in two namespaces so
    // their objects stay distinct.
    std::fs::write(
        dir.join("default.yaml"),
        render("twinkle-default", None).await,
    )
    .unwrap();
    std::fs::write(
        dir.join("full.yaml"),
        render("twinkle-full", Some(&full_values())).await,
    )
    .unwrap();
    let out = capture(
        tokio::process::Command::new(tool("TT_CHECKOV"))
            .args(["--compact", "--framework", "kubernetes", "-o", "json", "-d"])
            .arg(&dir)
            .env("BC_SKIP_MAPPING", "TRUE"),
    )
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let (passed, failed, skipped) = (
        summary["passed"].as_u64().unwrap(),
        summary["failed"].as_u64().unwrap(),
        summary["skipped"].as_u64().unwrap(),
    );
    println!("checkov (rendered chart): passed {passed}, failed {failed}, skipped {skipped}");
    let failures: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} on {}", c["check_id"], c["check_name"], c["resource"]))
        .collect();
    assert_eq!(failed, 0, "checkov failed checks:\n{}", failures.join("\n"));
    assert!(passed > 100, "checkov scanned too little: {summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    for skip in report["results"]["skipped_checks"].as_array().unwrap() {
        let reason = skip["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        println!(
            "  skipped {} on {}: {reason}",
            skip["check_id"], skip["resource"]
        );
        assert!(reason.len() > 20, "skip without a reason: {skip}");
    }
    std::fs::remove_dir_all(dir).ok();
}
