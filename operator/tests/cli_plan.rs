//! `twinkle-operator plan` as a user runs it.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("TWINKLE_OUTPUT")
        .env_remove("TWINKLE_EVENT_FILE")
        .env_remove("TWINKLE_NAMESPACE")
        .output()
        .expect("run twinkle-operator")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const AT: &str = "2026-12-05T09:50:00+09:00";

#[test]
fn plan_prints_tables_by_default() {
    let text = stdout(&run(&[
        "plan",
        "-f",
        "examples/demo-event.yaml",
        "-n",
        "popup",
        "--at",
        AT,
    ]));
    assert!(text.contains("Window:  PreScaled"), "{text}");
    assert!(text.contains("popup.winter-popup.queue     14"), "{text}");
    assert!(
        text.contains("winter-popup-queue-api         14    2         14"),
        "{text}"
    );
    assert!(
        text.contains("dr-ecs   CNAME  singapore-ecs-alb.twinkle.example      0"),
        "{text}"
    );
}

#[test]
fn plan_json_and_yaml() {
    let base = ["plan", "-f", "examples/demo-event.yaml", "--at", AT];
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&[&base[..], &["-o", "json"]].concat()))).expect("json");
    assert_eq!(json["namespace"], "default");
    assert_eq!(json["topics"][2]["name"], "default.winter-popup.outcomes");
    assert_eq!(json["workloads"][0]["replicasNow"], 14);
    assert_eq!(json["dr"]["records"][0]["weight"], 100);

    let yaml = stdout(&run(&[&base[..], &["-o", "yaml"]].concat()));
    assert!(
        yaml.contains("name: default.winter-popup.bookings"),
        "{yaml}"
    );
}

#[test]
fn plan_reads_stdin() {
    use std::io::Write as _;
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo-event.yaml"
    ))
    .expect("read example");
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .args(["plan", "-f", "-", "-o", "json", "--at", AT])
        .env_remove("TWINKLE_OUTPUT")
        .env_remove("TWINKLE_NAMESPACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&example)
        .expect("write stdin");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&child.wait_with_output().expect("wait"))).expect("json");
    assert_eq!(json["name"], "winter-popup");
}

#[test]
fn plan_refuses_other_kinds_and_missing_files() {
    let out = run(&["plan", "-f", "crds/ticketevent.yaml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a CustomResourceDefinition"), "{err}");

    let out = run(&["plan", "-f", "does-not-exist.yaml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read does-not-exist.yaml"));
}

#[test]
fn without_a_subcommand_it_names_the_commands() {
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`run` runs the controller"), "{err}");
}
