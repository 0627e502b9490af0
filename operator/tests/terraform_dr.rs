//! Terraform's Route53 records and the DR watchdog agree: the real
//! `terraform/modules/route53-dr` is applied (AWS provider from the
//! machine's offline mirror) to the test stack's Route53 (moto); the real
//! `twinkle-operator dr` commands, configured with the `dr.yaml` Terraform
//! renders, read the 100/0/0 Terraform wrote, fail over and back; and a
//! `terraform plan` after the failover shows no change: Terraform leaves the
//! watchdog's weights alone and the watchdog keeps Terraform's values and
//! health checks. The set identifiers are also the operator's plan's.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use aws_sdk_route53::config::{Credentials, Region};
use axum::{Router, routing::get};
use serde_json::Value;
use twinkle_e2e::stack::{Stack, capture, output, unique};

/// A path relative to the repository root.
fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Skipped only where smoke_tools.rs skips: scripts/test.sh found no
/// terraform (and printed a NOTICE).
fn terraform() -> Option<PathBuf> {
    if std::env::var("TT_TERRAFORM_MISSING").as_deref() == Ok("1") {
        eprintln!("NOTICE: terraform is not installed: this check is SKIPPED");
        return None;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("terraform"))
            .find(|p| p.is_file())
    });
    Some(found.expect("terraform on PATH (or TT_TERRAFORM_MISSING=1 from scripts/test.sh)"))
}

fn plugin_dir() -> PathBuf {
    let dir = std::env::var_os("TT_TF_PLUGIN_DIR")
        .map_or_else(|| PathBuf::from("/opt/tf-plugins"), PathBuf::from);
    assert!(
        dir.join("registry.terraform.io/hashicorp/aws").is_dir(),
        "no AWS provider mirror in {} (TT_TF_PLUGIN_DIR): terraform cannot download it here",
        dir.display()
    );
    dir
}

async fn create_zone(stack: &Stack) -> (String, String) {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&stack.route53_endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    let r53 = aws_sdk_route53::Client::new(&config);
    let name = format!("{}.example", unique("tfdr"));
    let zone = r53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .unwrap();
    let id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    (id, name)
}

async fn healthy_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/healthz")
}

struct Tf {
    bin: PathBuf,
    dir: PathBuf,
    rc: PathBuf,
}

impl Tf {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg(format!("-chdir={}", self.dir.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &self.rc)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
        cmd
    }

    async fn run(&self, args: &[&str]) -> String {
        output(&mut self.command(args))
            .await
            .unwrap_or_else(|e| panic!("terraform {args:?}: {e}"))
    }
}

async fn dr(config: &Path, args: &[&str]) -> Value {
    let text = output(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
            .arg("dr")
            .args(args)
            .args(["-o", "json", "--config"])
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1"),
    )
    .await
    .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_records_are_driven_by_the_watchdog_without_drift() {
    let Some(bin) = terraform() else { return };
    let stack = Stack::require();
    let mirror = plugin_dir();
    let (zone_id, zone) = create_zone(&stack).await;
    let healthy = healthy_target().await;
    let dir = std::env::temp_dir().join(unique("tfdr"));
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
            mirror.display()
        ),
    )
    .unwrap();
    let module = repo("terraform/modules/route53-dr").canonicalize().unwrap();
    // A root like envs/singapore's use of the module, on moto.
    std::fs::write(
        dir.join("main.tf"),
        format!(
            r#"
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    route53 = "{endpoint}"
  }}
}}

module "dns" {{
  source         = "{module}"
  hosted_zone_id = "{zone_id}"
  record_name    = "tickets.{zone}"
  targets = {{
    primary = {{ endpoint = "192.0.2.10", health_url = "{healthy}" }}
    dr_eks  = {{ endpoint = "192.0.2.20", health_url = "http://127.0.0.1:9/healthz" }}
    dr_ecs  = {{ endpoint = "192.0.2.30", health_url = "{healthy}" }}
  }}
}}

output "watchdog_config" {{
  value = module.dns.watchdog_config
}}

output "set_identifiers" {{
  value = module.dns.set_identifiers
}}
"#,
            endpoint = stack.route53_endpoint,
            module = module.display(),
        ),
    )
    .unwrap();
    let tf = Tf {
        bin,
        dir: dir.clone(),
        rc,
    };
    let started = Instant::now();
    tf.run(&["init", "-input=false", "-no-color"]).await;
    println!("terraform init: {:?}", started.elapsed());
    // Most of this test's time: the provider waits a random 10-30 s before
    // its first GetChange after creating records, even on moto.
    tf.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .await;
    println!("terraform apply: {:?}", started.elapsed());
    let outputs: Value = serde_json::from_str(&tf.run(&["output", "-json"]).await).unwrap();

    // The operator plans the same set identifiers.
    let plan = output(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
            .args(["plan", "-o", "json", "-f"])
            .arg(repo("examples/demo-event.yaml")),
    )
    .await
    .unwrap();
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let planned: Vec<&str> = plan["dr"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["setIdentifier"].as_str().unwrap())
        .collect();
    let ids = &outputs["set_identifiers"]["value"];
    assert_eq!(
        planned,
        vec![
            ids["primary"].as_str().unwrap(),
            ids["drEks"].as_str().unwrap(),
            ids["drEcs"].as_str().unwrap()
        ],
        "Terraform's set identifiers are the operator's"
    );

    // The rendered watchdog config, pointed at moto (test-only settings).
    let mut config = outputs["watchdog_config"]["value"].clone();
    config["route53"]["endpointUrl"] = stack.route53_endpoint.clone().into();
    config["route53"]["insyncPollMs"] = 50.into();
    config["route53"]["insyncTimeoutMs"] = 5000.into();
    config["lease"] = serde_json::json!({"durationMs": 15000, "holderId": "tf-test"});
    config["probe"]["intervalMs"] = 200.into();
    config["probe"]["timeoutMs"] = 150.into();
    for target in ["primary", "drEks", "drEcs"] {
        assert!(
            config["targets"][target]["healthCheckId"].is_string(),
            "{config:#}"
        );
    }
    let config_file = dir.join("dr.yaml");
    std::fs::write(&config_file, config.to_string()).unwrap();

    let status = dr(&config_file, &["status"]).await;
    println!("dr status: {:?}", started.elapsed());
    let weights = &status["route53Weights"];
    assert_eq!(
        (&weights["primary"], &weights["drEks"], &weights["drEcs"]),
        (&100.into(), &0.into(), &0.into()),
        "the watchdog reads Terraform's 100/0/0: {status:#}"
    );

    let failover = dr(&config_file, &["failover", "--to", "dr-ecs"]).await;
    assert_eq!(failover["weights"]["drEcs"], 100, "{failover:#}");
    assert_eq!(failover["weights"]["primary"], 0);

    // Terraform sees nothing to change: the weights are the watchdog's
    // (ignore_changes) and the watchdog kept values, TTL and health checks.
    let plan =
        capture(&mut tf.command(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]))
            .await
            .unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "terraform plan after a failover must be empty:\n{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );

    println!("failover + terraform plan: {:?}", started.elapsed());
    let failback = dr(&config_file, &["failback"]).await;
    println!("dr failback: {:?}", started.elapsed());
    assert_eq!(failback["weights"]["primary"], 100, "{failback:#}");
    std::fs::remove_dir_all(dir).ok();
}
