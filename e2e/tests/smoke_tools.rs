//! The manifest and infrastructure tools are real and work offline:
//! helm lints and renders a chart, kubeconform validates the render against
//! schemas taken from the real apiserver, checkov finds a planted flaw,
//! terraform fmt checks formatting.

use std::path::PathBuf;

use twinkle_e2e::{
    kube_schemas::write_schemas,
    stack::{Stack, capture, output, unique},
};

fn tool(var: &str) -> PathBuf {
    std::env::var(var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests through scripts/test.sh"))
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("tools"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[tokio::test]
async fn helm_renders_and_kubeconform_validates_against_live_schemas() {
    let stack = Stack::require();
    let helm = tool("TT_HELM");
    let dir = scratch();
    let chart = dir.join("smoke");
    output(
        tokio::process::Command::new(&helm)
            .arg("create")
            .arg(&chart),
    )
    .await
    .expect("helm create");
    output(tokio::process::Command::new(&helm).arg("lint").arg(&chart))
        .await
        .expect("helm lint");
    let rendered = output(
        tokio::process::Command::new(&helm)
            .arg("template")
            .arg(&chart),
    )
    .await
    .expect("helm template");
    assert!(rendered.contains("kind: Deployment"), "{rendered}");
    let manifests = dir.join("rendered.yaml");
    std::fs::write(&manifests, &rendered).expect("write render");

    let openapi = stack
        .kubectl(&["get", "--raw", "/openapi/v2"])
        .await
        .expect("openapi from apiserver");
    let openapi: serde_json::Value = serde_json::from_str(&openapi).expect("openapi json");
    let schemas = dir.join("schemas");
    let written = write_schemas(&openapi, &schemas).expect("write schemas");
    assert!(written.contains_key("apps/v1/Deployment"), "{written:?}");

    let kubeconform = tool("TT_KUBECONFORM");
    let location = format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        schemas.display()
    );
    let report = output(
        tokio::process::Command::new(&kubeconform)
            .args(["-strict", "-summary", "-schema-location"])
            .arg(&location)
            .arg(&manifests),
    )
    .await
    .expect("kubeconform accepts helm's default chart");
    assert!(report.contains("Invalid: 0, Errors: 0"), "{report}");

    // And it really validates: a Deployment with a string for replicas fails.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: many\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n",
    )
    .expect("write broken");
    let out = capture(
        tokio::process::Command::new(&kubeconform)
            .args(["-strict", "-schema-location"])
            .arg(&location)
            .arg(&broken),
    )
    .await
    .expect("run kubeconform");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "kubeconform must reject replicas: many"
    );
    assert!(report.contains("replicas"), "{report}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn checkov_reports_a_planted_terraform_flaw() {
    let checkov = tool("TT_CHECKOV");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/terraform-insecure");
    let out = capture(
        tokio::process::Command::new(&checkov)
            .args([
                "--quiet",
                "--compact",
                "--framework",
                "terraform",
                "-o",
                "json",
                "-d",
            ])
            .arg(fixture)
            .env("BC_SKIP_MAPPING", "TRUE"),
    )
    .await
    .expect("run checkov");
    assert!(
        !out.status.success(),
        "checkov exits non-zero on failed checks"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("checkov json");
    let failed: Vec<&str> = report["results"]["failed_checks"]
        .as_array()
        .expect("failed_checks")
        .iter()
        .filter_map(|c| c["check_id"].as_str())
        .collect();
    assert!(
        failed.contains(&"CKV_AWS_24"),
        "checkov should flag SSH open to the world (CKV_AWS_24); failed: {failed:?}"
    );
}

#[tokio::test]
async fn terraform_fmt_checks_formatting() {
    // scripts/test.sh prints a NOTICE banner and sets this when terraform is
    // not installed; anywhere else a missing terraform is a failure.
    if std::env::var("TT_TERRAFORM_MISSING").as_deref() == Ok("1") {
        return;
    }
    let terraform = which("terraform").expect("terraform on PATH");
    let dir = scratch();
    std::fs::write(dir.join("bad.tf"), "variable \"x\" {\ndefault=1\n}\n").expect("write");
    let err = output(
        tokio::process::Command::new(&terraform)
            .args(["fmt", "-check", "-recursive"])
            .arg(&dir),
    )
    .await;
    assert!(
        err.is_err(),
        "terraform fmt -check must flag unformatted HCL"
    );
    output(
        tokio::process::Command::new(&terraform)
            .arg("fmt")
            .arg(&dir),
    )
    .await
    .expect("terraform fmt");
    output(
        tokio::process::Command::new(&terraform)
            .args(["fmt", "-check", "-recursive"])
            .arg(&dir),
    )
    .await
    .expect("formatted HCL passes");
    std::fs::remove_dir_all(dir).ok();
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
