//! `terraform/`: formatted, valid against the real AWS provider (offline,
//! from the machine's provider mirror), clean under checkov, every variable
//! and output documented, and the three Route53 weighted records exactly the
//! ones the DR watchdog manages (set identifiers, 100/0/0, health checks).
//!
//! `operator/tests/terraform_dr.rs` goes further: it applies the records'
//! module to the test stack's Route53 (moto) and drives the real watchdog
//! with the config Terraform renders.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use hcl::{Block, Body, Expression};
use serde_json::Value;
use twinkle_e2e::stack::{capture, output, unique};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn terraform_dir() -> PathBuf {
    repo("terraform")
}

/// scripts/test.sh prints a NOTICE banner and sets TT_TERRAFORM_MISSING=1
/// when terraform is not installed (as in smoke_tools.rs); anywhere else a
/// missing terraform is a failure.
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

/// Every `.tf` file under `dir`, recursively.
fn tf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != ".terraform") {
                files.extend(tf_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "tf") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn parse(path: &Path) -> Body {
    hcl::parse(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier() == ident)
}

fn label(block: &Block, i: usize) -> &str {
    block.labels().get(i).map_or("", |l| l.as_str())
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn child<'a>(body: &'a Body, ident: &str) -> Option<&'a Block> {
    body.blocks().find(|b| b.identifier() == ident)
}

// ------------------------------------------------------------------ terraform CLI

#[tokio::test]
async fn terraform_fmt_check_passes() {
    let Some(terraform) = terraform() else { return };
    let out = capture(
        tokio::process::Command::new(&terraform)
            .args(["fmt", "-check", "-recursive", "-diff"])
            .arg(terraform_dir()),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "terraform fmt -check -recursive terraform/ failed; run `terraform fmt -recursive terraform/`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The provider mirror that comes with this machine's terraform
/// (`registry.terraform.io/hashicorp/aws/<version>/linux_amd64/…`).
fn plugin_dir() -> PathBuf {
    let dir = std::env::var_os("TT_TF_PLUGIN_DIR")
        .map_or_else(|| PathBuf::from("/opt/tf-plugins"), PathBuf::from);
    assert!(
        dir.join("registry.terraform.io/hashicorp/aws").is_dir(),
        "no AWS provider mirror in {}: terraform validate needs the provider and this machine \
         cannot download it. Point TT_TF_PLUGIN_DIR at a filesystem mirror \
         (registry.terraform.io/hashicorp/aws/<version>/<os>_<arch>/terraform-provider-aws_*)",
        dir.display()
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != ".terraform" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn validate(terraform: &Path, rc: &Path, root: &Path) -> Value {
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(terraform);
        cmd.arg(format!("-chdir={}", root.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", rc)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        cmd
    };
    output(&mut run(&[
        "init",
        "-backend=false",
        "-input=false",
        "-no-color",
    ]))
    .await
    .unwrap_or_else(|e| panic!("terraform init in {}: {e}", root.display()));
    let out = capture(&mut run(&["validate", "-json", "-no-color"]))
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_roots_validate_against_the_aws_provider_offline() {
    let Some(terraform) = terraform() else { return };
    let mirror = plugin_dir();
    // A copy, so init's .terraform and lock files stay out of the tree.
    let dir = std::env::temp_dir().join(unique("tf-validate"));
    copy_dir(&terraform_dir(), &dir);
    let rc = dir.join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
            mirror.display()
        ),
    )
    .unwrap();
    let (seoul_dir, singapore_dir) = (dir.join("envs/seoul"), dir.join("envs/singapore"));
    let (seoul, singapore) = tokio::join!(
        validate(&terraform, &rc, &seoul_dir),
        validate(&terraform, &rc, &singapore_dir),
    );
    for (root, report) in [("seoul", seoul), ("singapore", singapore)] {
        assert_eq!(
            report["valid"], true,
            "terraform validate envs/{root}: {report:#}"
        );
        assert_eq!(report["warning_count"], 0, "envs/{root}: {report:#}");
    }
    std::fs::remove_dir_all(dir).ok();
}

// ------------------------------------------------------------------ checkov

#[tokio::test]
async fn checkov_passes_terraform() {
    let checkov = std::env::var("TT_CHECKOV")
        .map(PathBuf::from)
        .expect("TT_CHECKOV is not set: run the tests through scripts/test.sh");
    let out = capture(
        tokio::process::Command::new(checkov)
            .args(["--compact", "--framework", "terraform", "-o", "json", "-d"])
            .arg(terraform_dir())
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
    println!("checkov (terraform/): passed {passed}, failed {failed}, skipped {skipped}");
    let failures: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} on {} ({})",
                c["check_id"], c["check_name"], c["resource"], c["file_path"]
            )
        })
        .collect();
    assert_eq!(failed, 0, "checkov failed checks:\n{}", failures.join("\n"));
    assert!(passed > 200, "checkov scanned too little: {summary}");
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
}

// ------------------------------------------------------------------ HCL

#[test]
fn every_variable_and_output_is_documented() {
    let files = tf_files(&terraform_dir());
    assert!(files.len() > 20, "{files:?}");
    let mut undocumented = Vec::new();
    for file in &files {
        let body = parse(file);
        for kind in ["variable", "output"] {
            for block in blocks(&body, kind) {
                let described = matches!(
                    attr(block.body(), "description"),
                    Some(Expression::String(s)) if s.len() > 5
                );
                if !described {
                    undocumented.push(format!("{} {kind} {}", file.display(), label(block, 0)));
                }
            }
        }
    }
    assert!(undocumented.is_empty(), "no description: {undocumented:#?}");
}

#[test]
fn examples_set_only_declared_variables() {
    for root in ["seoul", "singapore"] {
        let dir = terraform_dir().join("envs").join(root);
        let declared: Vec<String> = blocks(&parse(&dir.join("variables.tf")), "variable")
            .map(|b| label(b, 0).to_owned())
            .collect();
        let example = parse(&dir.join(format!("{root}.tfvars.example")));
        for attribute in example.attributes() {
            assert!(
                declared.iter().any(|d| d == attribute.key()),
                "{root}.tfvars.example sets undeclared {}",
                attribute.key()
            );
        }
        // Every variable without a default is in the example.
        for block in blocks(&parse(&dir.join("variables.tf")), "variable") {
            if attr(block.body(), "default").is_none() {
                assert!(
                    example.attributes().any(|a| a.key() == label(block, 0)),
                    "{root}.tfvars.example lacks required {}",
                    label(block, 0)
                );
            }
        }
    }
}

/// The set identifiers the watchdog writes: the operator plans `primary`,
/// `dr-eks` and `dr-ecs` (operator/src/plan/mod.rs) and the rendered
/// watchdog config names the same records.
const SET_IDENTIFIERS: [(&str, u64); 3] = [("primary", 100), ("dr-eks", 0), ("dr-ecs", 0)];

#[test]
fn the_weighted_records_are_the_ones_the_watchdog_manages() {
    let body = parse(&terraform_dir().join("modules/route53-dr/main.tf"));
    let health_checks: Vec<&Block> = blocks(&body, "resource")
        .filter(|b| label(b, 0) == "aws_route53_health_check")
        .collect();
    assert_eq!(health_checks.len(), 1, "one for_each health check resource");
    let health_check = format!("aws_route53_health_check.{}", label(health_checks[0], 1));

    let mut found = BTreeMap::new();
    for record in blocks(&body, "resource").filter(|b| label(b, 0) == "aws_route53_record") {
        let r = record.body();
        let Some(Expression::String(id)) = attr(r, "set_identifier") else {
            panic!("record {} has no literal set_identifier", label(record, 1));
        };
        let weight = child(r, "weighted_routing_policy")
            .and_then(|w| attr(w.body(), "weight"))
            .and_then(|w| match w {
                Expression::Number(n) => n.as_u64(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("record {id}: no literal weighted_routing_policy.weight"));
        // The health check of this very target is attached.
        let attached = attr(r, "health_check_id")
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            attached.contains(&health_check) && attached.contains(&format!("\"{id}\"")),
            "record {id}: health_check_id = {attached}"
        );
        // The same name and type for all three, and the weights left to
        // the watchdog after creation.
        assert_eq!(attr(r, "name").unwrap().to_string(), "local.record_name");
        assert_eq!(attr(r, "type").unwrap().to_string(), "local.record_type");
        let lifecycle = child(r, "lifecycle").expect("lifecycle");
        let ignored = attr(lifecycle.body(), "ignore_changes")
            .unwrap()
            .to_string();
        assert!(
            ignored.contains("weighted_routing_policy"),
            "record {id}: Terraform must not undo the watchdog's weights ({ignored})"
        );
        found.insert(id.to_string(), weight);
    }
    let want: BTreeMap<String, u64> = SET_IDENTIFIERS
        .iter()
        .map(|(id, w)| ((*id).to_owned(), *w))
        .collect();
    assert_eq!(found, want, "set identifiers and initial weights 100/0/0");

    // The watchdog config Terraform renders names the records by their own
    // set identifiers and health checks (never a second copy of them).
    let text = std::fs::read_to_string(terraform_dir().join("modules/route53-dr/main.tf")).unwrap();
    for key in [
        "setIdentifier = record.set_identifier",
        "healthCheckId = record.health_check_id",
        "hostedZoneId = var.hosted_zone_id",
    ] {
        assert!(text.contains(key), "watchdog config lacks `{key}`");
    }
}

#[test]
fn the_route53_policy_is_scoped_to_the_zone_and_the_watchdogs_names() {
    let body = parse(&terraform_dir().join("modules/dr-access/main.tf"));
    let document = blocks(&body, "data")
        .find(|b| label(b, 0) == "aws_iam_policy_document")
        .expect("the policy document");
    let mut actions = Vec::new();
    for statement in blocks(document.body(), "statement") {
        let s = statement.body();
        let acts = attr(s, "actions").unwrap().to_string();
        let resources = attr(s, "resources").unwrap().to_string();
        assert!(!resources.contains("\"*\""), "{acts} on {resources}");
        if acts.contains("ChangeResourceRecordSets") || acts.contains("ListResourceRecordSets") {
            assert!(
                resources.contains("hostedzone/${var.hosted_zone_id}"),
                "{acts} on {resources}"
            );
        }
        if acts.contains("ChangeResourceRecordSets") {
            let conditions: Vec<String> = blocks(s, "condition")
                .map(|c| attr(c.body(), "variable").unwrap().to_string())
                .collect();
            assert!(
                conditions
                    .iter()
                    .any(|c| c.contains("ChangeResourceRecordSetsNormalizedRecordNames")),
                "{conditions:?}"
            );
        }
        actions.push(acts);
    }
    let all = actions.join(" ");
    for action in [
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
        "route53:GetChange",
        "route53:GetHealthCheckStatus",
    ] {
        assert!(all.contains(action), "{action} missing from {all}");
    }
    assert!(!all.contains('*'), "no wildcard actions: {all}");

    // The lease record the policy allows is the watchdog's default name.
    let watchdog = std::fs::read_to_string(repo("watchdog/src/config.rs")).unwrap();
    assert!(
        watchdog.contains("\"_twinkle-dr-lease.{}\""),
        "watchdog lease default moved"
    );
    let policy =
        std::fs::read_to_string(terraform_dir().join("modules/dr-access/main.tf")).unwrap();
    assert!(policy.contains("\"_twinkle-dr-lease.${local.record_name}\""));
}

#[test]
fn the_ticket_event_dr_output_has_the_crd_fields() {
    // crd/src/dr.rs: hostedZoneId, recordName, ttl, targets.{primary,drEks,drEcs}.{endpoint,healthUrl}
    let crd: Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo("crds/ticketevent.yaml")).unwrap())
            .unwrap();
    let dr = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["dr"];
    let required: Vec<&str> = dr["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let text = std::fs::read_to_string(terraform_dir().join("modules/route53-dr/main.tf")).unwrap();
    let section = &text[text
        .find("ticket_event_dr = {")
        .expect("ticket_event_dr local")..];
    for field in required {
        assert!(
            section.contains(&format!("{field} ")),
            "ticket_event_dr lacks required spec.dr.{field}"
        );
    }
    for field in dr["properties"]["targets"]["properties"]["primary"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            section.contains(&format!("{} ", field.as_str().unwrap())),
            "{field}"
        );
    }
}
