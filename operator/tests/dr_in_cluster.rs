//! The in-cluster DR watchdog (issue #7) against the real kube-apiserver,
//! Kafka and moto of the test stack: the operator binary runs the
//! watchdog of a TicketEvent whose `spec.dr` points at three local HTTP
//! targets and a hosted zone created in moto for this test. It writes the
//! weights and reports them (`DnsReady`, `status.dr`), fails over when the
//! primary's server stops (status and a `DrTransition` Event within the
//! probe budget), follows `manualOverride`, and stops writing when the
//! event is deleted.
//!
//! The operator reaches moto through a counting TCP relay, so the test
//! sees every `ChangeResourceRecordSets` the operator sends (moto keeps no
//! count of its own).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod support;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aws_sdk_route53::{
    Client as Route53,
    config::{Credentials, Region},
    types::RrType,
};
use axum::{Router, http::StatusCode, routing::get};
use jiff::Timestamp;
use kube::Api;
use serde_json::{Value, json};
use support::{install_crd, repo};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_operator::crd::{TicketEvent, Weights};

const INTERVAL_SECS: u64 = 1;
const FAILURE_THRESHOLD: u64 = 2;

// ------------------------------------------------------------- targets

/// A local health endpoint: 200 or 503, or stopped (connection refused).
struct Target {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Target {
    async fn start(healthy: bool) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            status: Arc::new(AtomicU16::new(if healthy { 200 } else { 503 })),
            server: Mutex::new(None),
        };
        target.serve(listener);
        target
    }

    fn serve(&self, listener: TcpListener) {
        let status = self.status.clone();
        let app = Router::new().route(
            "/healthz",
            get(move || {
                let code = status.load(Ordering::SeqCst);
                async move { StatusCode::from_u16(code).unwrap() }
            }),
        );
        *self.server.lock().unwrap() = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    fn url(&self) -> String {
        format!("http://{}/healthz", self.addr)
    }

    fn stop(&self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }

    async fn restart(&self) {
        self.stop();
        self.status.store(200, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

// --------------------------------------------------------------- relay

/// A TCP relay to moto that counts `ChangeResourceRecordSets` requests
/// (the only POST the watchdog sends under `/hostedzone/`).
struct Relay {
    endpoint: String,
    changes: Arc<AtomicU64>,
}

impl Relay {
    async fn start(moto: &str) -> Relay {
        let upstream = moto
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let changes = Arc::new(AtomicU64::new(0));
        let counter = changes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        const NEEDLE: &[u8] = b"POST /2013-04-01/hostedzone/";
                        let mut buf = vec![0u8; 16 * 1024];
                        let mut tail: Vec<u8> = Vec::new();
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            tail.extend_from_slice(&buf[..n]);
                            let found = tail.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
                            counter.fetch_add(found as u64, Ordering::SeqCst);
                            let keep = tail.len().min(NEEDLE.len() - 1);
                            tail.drain(..tail.len() - keep);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Relay { endpoint, changes }
    }

    fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------- moto

fn moto(stack: &Stack) -> Route53 {
    let config = aws_config::SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(&stack.route53_endpoint)
        .credentials_provider(aws_sdk_route53::config::SharedCredentialsProvider::new(
            Credentials::new("testing", "testing", None, None, "moto"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    Route53::new(&config)
}

/// The CRD installed, a fresh namespace, and a TicketEvent client for it.
async fn namespace(stack: &Stack, prefix: &str) -> (String, Api<TicketEvent>) {
    install_crd(stack).await;
    let ns = unique(prefix);
    stack.kubectl(&["create", "namespace", &ns]).await.unwrap();
    let client = kube::Client::try_default().await.unwrap();
    (ns.clone(), Api::namespaced(client, &ns))
}

/// A fresh hosted zone in moto (what Terraform would own): (id, name).
async fn hosted_zone(moto: &Route53, prefix: &str) -> (String, String) {
    let zone_name = format!("{}.example.", unique(prefix));
    let zone = moto
        .create_hosted_zone()
        .name(&zone_name)
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
    (id, zone_name)
}

/// The weights of the three records by set identifier, and the lease TXT.
async fn records(moto: &Route53, zone: &str) -> (Option<Weights>, Vec<String>) {
    let sets = moto
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let mut weights = BTreeMap::new();
    let mut lease = Vec::new();
    for set in sets.resource_record_sets() {
        if set.r#type() == &RrType::A
            && let Some(id) = set.set_identifier()
        {
            weights.insert(id.to_owned(), set.weight().unwrap() as i32);
        }
        if set.r#type() == &RrType::Txt && set.name().starts_with("_twinkle-dr-lease.") {
            lease.extend(set.resource_records().iter().map(|r| r.value().to_owned()));
        }
    }
    let w = |id: &str| weights.get(id).copied();
    let weights = match (w("primary"), w("dr-eks"), w("dr-ecs")) {
        (Some(primary), Some(dr_eks), Some(dr_ecs)) => Some(Weights {
            primary,
            dr_eks,
            dr_ecs,
        }),
        _ => None,
    };
    (weights, lease)
}

/// TTLs of the three weighted records.
async fn ttls(moto: &Route53, zone: &str) -> Vec<i64> {
    let sets = moto
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    sets.resource_record_sets()
        .iter()
        .filter(|s| s.r#type() == &RrType::A)
        .map(|s| s.ttl().unwrap_or_default())
        .collect()
}

/// The expiry (Unix ms) in a lease TXT value.
fn expires(txt: &str) -> u64 {
    txt.split(' ')
        .find_map(|f| f.strip_prefix("expires="))
        .and_then(|v| v.trim_end_matches('"').parse().ok())
        .unwrap()
}

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millisecond()).unwrap()
}

const fn weights(primary: i32, dr_eks: i32, dr_ecs: i32) -> Weights {
    Weights {
        primary,
        dr_eks,
        dr_ecs,
    }
}

// ------------------------------------------------------------ operator

/// The demo manifest on the test Kafka, with a DR section for the local
/// targets and the moto zone.
fn manifest(stack: &Stack, name: &str, zone: &str, record: &str, urls: [String; 3]) -> Value {
    let text = std::fs::read_to_string(repo("examples/demo-event.yaml")).unwrap();
    let mut m: Value = yaml_serde::from_str(&text).unwrap();
    let now = Timestamp::now();
    m["metadata"] = json!({"name": name});
    let spec = &mut m["spec"];
    spec["opensAt"] = json!(
        now.checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap()
            .to_string()
    );
    spec["closesAt"] = json!(
        now.checked_add(jiff::SignedDuration::from_hours(3))
            .unwrap()
            .to_string()
    );
    spec["traffic"]["expectedPeakRps"] = json!(1000);
    spec["kafka"] = json!({
        "bootstrapServers": stack.kafka_bootstrap,
        "partitions": "auto",
        "replicationFactor": 1,
        "retention": "1h",
        "deletionPolicy": "Delete",
    });
    let [primary, dr_eks, dr_ecs] = urls;
    spec["dr"] = json!({
        "hostedZoneId": zone,
        "recordName": record,
        "ttl": 30,
        "targets": {
            "primary": {"endpoint": "192.0.2.10", "healthUrl": primary},
            "drEks": {"endpoint": "192.0.2.20", "healthUrl": dr_eks},
            "drEcs": {"endpoint": "192.0.2.30", "healthUrl": dr_ecs},
        },
        "mode": "Automatic",
        "failbackPolicy": "Manual",
        "probe": {
            "interval": format!("{INTERVAL_SECS}s"),
            "timeout": "500ms",
            "failureThreshold": FAILURE_THRESHOLD,
            "successThreshold": 1,
            "minDwell": "10s",
        },
    });
    m
}

async fn apply(stack: &Stack, ns: &str, manifest: &Value) {
    let file = std::env::temp_dir().join(format!("{}.json", unique("te")));
    std::fs::write(&file, manifest.to_string()).unwrap();
    stack
        .kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()])
        .await
        .unwrap();
    let _ = std::fs::remove_file(file);
}

async fn start_operator(
    stack: &Stack,
    ns: &str,
    route53: &str,
    pod: &str,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_twinkle-operator"))
        .args([
            "run",
            "--workload-image",
            "twinkle:test",
            "--watch-namespace",
            ns,
            "--lease-namespace",
            ns,
            "--metrics-listen",
            "127.0.0.1:0",
            "--poll-secs",
            "1",
            "--delete-give-up-secs",
            "20",
            "--identity",
            pod,
        ])
        .env("KUBECONFIG", &stack.kubeconfig)
        .env(
            "RUST_LOG",
            "info,kube=warn,aws_config=warn,aws_smithy_runtime=warn",
        )
        // Route53: moto (through the relay), credentials the way the SDK
        // finds them in a pod (environment), none in the resource.
        .env("TWINKLE_ROUTE53_ENDPOINT", route53)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("POD_NAME", pod)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn condition<'a>(te: &'a TicketEvent, type_: &str) -> Option<(&'a str, &'a str)> {
    te.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

fn dr_weights(te: &TicketEvent) -> Option<Weights> {
    Some(te.status.as_ref()?.dr.as_ref()?.weights)
}

/// Polls the TicketEvent every 100 ms until `done` holds (or `timeout`).
async fn wait_for(
    api: &Api<TicketEvent>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&TicketEvent) -> bool,
) -> TicketEvent {
    let deadline = Instant::now() + timeout;
    loop {
        let te = api.get(name).await.unwrap();
        if done(&te) {
            return te;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}: {:#?}",
            te.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events(stack: &Stack, ns: &str) -> Vec<Value> {
    let text = stack
        .kubectl(&["get", "events", "-n", ns, "-o", "json"])
        .await
        .unwrap();
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

fn notes(events: &[Value], reason: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| {
            e["note"]
                .as_str()
                .or(e["message"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_the_watchdog_of_a_ticket_event() {
    let started = Instant::now();
    let stack = Stack::require();
    let (ns, api) = namespace(&stack, "dr").await;

    // The hosted zone (what Terraform would own) and three targets; DR EKS
    // is still being built (503).
    let moto = moto(&stack);
    let (zone, zone_name) = hosted_zone(&moto, "dr").await;
    let record = format!("tickets.{zone_name}");
    let primary = Target::start(true).await;
    let dr_eks = Target::start(false).await;
    let dr_ecs = Target::start(true).await;
    let relay = Relay::start(&stack.route53_endpoint).await;
    let pod = unique("operator");
    let _operator = start_operator(&stack, &ns, &relay.endpoint, &pod).await;

    // 1. Created: the watchdog writes 100/0/0 and the status says so.
    let name = "rush";
    let mut m = manifest(
        &stack,
        name,
        &zone,
        &record,
        [primary.url(), dr_eks.url(), dr_ecs.url()],
    );
    apply(&stack, &ns, &m).await;
    let te = wait_for(
        &api,
        name,
        "DnsReady=True with 100/0/0",
        Duration::from_secs(40),
        |te| {
            condition(te, "DnsReady") == Some(("True", "Primary"))
                && dr_weights(te) == Some(weights(100, 0, 0))
        },
    )
    .await;
    let dr = te.status.as_ref().unwrap().dr.clone().unwrap();
    assert_eq!(dr.state, "normal");
    let holder = dr.lease_holder.clone().unwrap();
    assert!(holder.starts_with(&pod), "{holder}");
    let (in_moto, lease) = records(&moto, &zone).await;
    assert_eq!(in_moto, Some(weights(100, 0, 0)));
    assert!(lease[0].contains(&format!("holder={holder}")), "{lease:?}");
    stack
        .kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=30s",
            &format!("ticketevent/{name}"),
        ])
        .await
        .unwrap();
    // Every target probed once at least: DR ECS is up, DR EKS down.
    wait_for(&api, name, "health", Duration::from_secs(10), |te| {
        te.status
            .as_ref()
            .and_then(|s| s.dr.as_ref()?.health)
            .is_some_and(|h| {
                h.dr_ecs == twinkle_operator::crd::DrHealth::Up
                    && h.dr_eks == twinkle_operator::crd::DrHealth::Down
            })
    })
    .await;

    // 2. The primary's server stops: 0/0/100 (DR EKS not ready) in Route53
    //    and in the status within interval × threshold + a few seconds.
    let writes_before = relay.changes();
    let stopped = Instant::now();
    primary.stop();
    let budget = Duration::from_secs(INTERVAL_SECS * FAILURE_THRESHOLD + 4);
    let mut in_route53 = None;
    let mut in_status = None;
    while in_route53.is_none() || in_status.is_none() {
        assert!(
            stopped.elapsed() < budget,
            "no failover within {budget:?}: Route53 after {in_route53:?}, status after {in_status:?}"
        );
        if in_route53.is_none() && records(&moto, &zone).await.0 == Some(weights(0, 0, 100)) {
            in_route53 = Some(stopped.elapsed());
        }
        if in_status.is_none()
            && dr_weights(&api.get(name).await.unwrap()) == Some(weights(0, 0, 100))
        {
            in_status = Some(stopped.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let te = wait_for(
        &api,
        name,
        "DnsReady=True FailedOver",
        Duration::from_secs(5),
        |te| condition(te, "DnsReady") == Some(("True", "FailedOver")),
    )
    .await;
    let dr = te.status.as_ref().unwrap().dr.clone().unwrap();
    assert_eq!(dr.state, "drEcsOnly");
    let last = dr.last_transition.unwrap();
    assert_eq!(last.reason, "TargetDown");
    assert!(
        last.message
            .starts_with("100/0/0 → 0/0/100: primary down, DR EKS not ready"),
        "{}",
        last.message
    );
    assert_eq!(
        relay.changes() - writes_before,
        1,
        "one change batch for the failover"
    );
    let all = events(&stack, &ns).await;
    let transitions = notes(&all, "DrTransition");
    assert!(
        transitions
            .iter()
            .any(|n| n.starts_with("100/0/0 → 0/0/100: primary down, DR EKS not ready")),
        "{transitions:?}"
    );
    let mut written = notes(&all, "DnsWeightsWritten");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !written.iter().any(|n| n.contains("0/0/100")) {
        assert!(Instant::now() < deadline, "no write Event: {written:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        written = notes(&events(&stack, &ns).await, "DnsWeightsWritten");
    }
    eprintln!(
        "primary stopped → 0/0/100 in Route53 after {:?}, in status.dr after {:?} \
         (budget {budget:?}, probes every {INTERVAL_SECS}s, down after {FAILURE_THRESHOLD}); \
         writes: {written:?}",
        in_route53.unwrap(),
        in_status.unwrap()
    );

    // 2b. DR ECS fails too: nothing is up, the weights stay (static
    //     stability) and DnsReady says why.
    dr_ecs.stop();
    wait_for(
        &api,
        name,
        "DnsReady=False AllTargetsDown",
        Duration::from_secs(INTERVAL_SECS * FAILURE_THRESHOLD + 5),
        |te| condition(te, "DnsReady") == Some(("False", "AllTargetsDown")),
    )
    .await;
    assert_eq!(records(&moto, &zone).await.0, Some(weights(0, 0, 100)));
    let alarms = notes(&events(&stack, &ns).await, "DrAlarm");
    assert!(
        alarms.iter().any(|n| n.contains("no target is healthy")),
        "{alarms:?}"
    );
    dr_ecs.restart().await;

    // 3. Failback through the resource: the primary is back, the on-call
    //    pins it with manualOverride, then removes the override.
    primary.restart().await;
    m["spec"]["dr"]["manualOverride"] = json!({"primary": 100, "drEks": 0, "drEcs": 0});
    apply(&stack, &ns, &m).await;
    let te = wait_for(
        &api,
        name,
        "override to the primary",
        Duration::from_secs(10),
        |te| {
            condition(te, "DnsReady") == Some(("True", "ManualOverride"))
                && dr_weights(te) == Some(weights(100, 0, 0))
        },
    )
    .await;
    let dr = te.status.as_ref().unwrap().dr.clone().unwrap();
    assert_eq!(dr.state, "overridePrimary");
    assert_eq!(
        dr.pinned_by_spec,
        Some(twinkle_operator::crd::DrTargetName::Primary)
    );
    assert_eq!(records(&moto, &zone).await.0, Some(weights(100, 0, 0)));
    m["spec"]["dr"]
        .as_object_mut()
        .unwrap()
        .remove("manualOverride");
    apply(&stack, &ns, &m).await;
    let te = wait_for(
        &api,
        name,
        "override cleared",
        Duration::from_secs(10),
        |te| {
            te.status
                .as_ref()
                .and_then(|s| s.dr.as_ref())
                .is_some_and(|d| d.state == "normal" && d.pinned_by_spec.is_none())
        },
    )
    .await;
    assert_eq!(condition(&te, "DnsReady"), Some(("True", "Primary")));
    let transitions = notes(&events(&stack, &ns).await, "DrTransition");
    for needle in ["override: everything to primary", "override cleared"] {
        assert!(
            transitions.iter().any(|n| n.contains(needle)),
            "no {needle:?} in {transitions:?}"
        );
    }

    // 3b. Another TTL: the watchdog restarts with the new config and
    //     rewrites the records (same weights) with it.
    m["spec"]["dr"]["ttl"] = json!(45);
    apply(&stack, &ns, &m).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while ttls(&moto, &zone).await != [45, 45, 45] {
        assert!(Instant::now() < deadline, "TTL not rewritten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(
        &api,
        name,
        "DnsReady=True after the restart",
        Duration::from_secs(10),
        |te| {
            condition(te, "DnsReady") == Some(("True", "Primary"))
                && dr_weights(te) == Some(weights(100, 0, 0))
        },
    )
    .await;
    assert_eq!(records(&moto, &zone).await.0, Some(weights(100, 0, 0)));

    // 4. Deleted: the watchdog stops and releases its lease; after that no
    //    change batch reaches Route53, even when the primary fails again.
    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{name}"),
            "--timeout=30s",
        ])
        .await
        .unwrap();
    let (after_delete, lease) = records(&moto, &zone).await;
    let writes_after_delete = relay.changes();
    assert!(
        expires(&lease[0]) <= now_ms(),
        "lease not released: {lease:?}"
    );
    primary.stop();
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS * FAILURE_THRESHOLD + 2)).await;
    assert_eq!(
        relay.changes(),
        writes_after_delete,
        "Route53 written after deletion"
    );
    assert_eq!(records(&moto, &zone).await, (after_delete, lease));

    let _ = stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await;
    eprintln!("dr_in_cluster took {:?}", started.elapsed());
}

/// Leadership moves (the leader is stopped with SIGTERM, as Kubernetes
/// stops a pod): the old leader stops its watchdog and releases the
/// Route53 lease, the new leader's watchdog takes it at once (not after
/// the lease's expiry) and adopts the routing without rewriting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_the_watchdog() {
    let stack = Stack::require();
    let (ns, api) = namespace(&stack, "drlead").await;
    let moto = moto(&stack);
    let (zone, zone_name) = hosted_zone(&moto, "drlead").await;
    let targets = [
        Target::start(true).await,
        Target::start(true).await,
        Target::start(true).await,
    ];
    let (pod_a, pod_b) = (unique("op-a"), unique("op-b"));
    let mut a = start_operator(&stack, &ns, &stack.route53_endpoint, &pod_a).await;
    let name = "handover";
    let m = manifest(
        &stack,
        name,
        &zone,
        &format!("tickets.{zone_name}"),
        targets.each_ref().map(Target::url),
    );
    apply(&stack, &ns, &m).await;
    let holder = |te: &TicketEvent| {
        te.status
            .as_ref()
            .and_then(|s| s.dr.as_ref()?.lease_holder.clone())
            .unwrap_or_default()
    };
    wait_for(&api, name, "A writes", Duration::from_secs(40), |te| {
        condition(te, "DnsReady") == Some(("True", "Primary")) && holder(te).starts_with(&pod_a)
    })
    .await;
    let _b = start_operator(&stack, &ns, &stack.route53_endpoint, &pod_b).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stopped = Instant::now();
    let pid = a.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    // A stops its watchdog on the way out and releases the Route53 lease.
    let exit = tokio::time::timeout(Duration::from_secs(20), a.wait())
        .await
        .expect("the old leader exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let (_, lease) = records(&moto, &zone).await;
    assert!(lease[0].contains(&pod_a), "{lease:?}");
    assert!(expires(&lease[0]) <= now_ms(), "not released: {lease:?}");
    let te = wait_for(
        &api,
        name,
        "B holds the lease",
        Duration::from_secs(40),
        |te| {
            condition(te, "DnsReady") == Some(("True", "Primary")) && holder(te).starts_with(&pod_b)
        },
    )
    .await;
    let took = stopped.elapsed();
    eprintln!("leader stopped → the new leader's watchdog holds the Route53 lease after {took:?}");
    assert_eq!(te.status.unwrap().dr.unwrap().state, "normal");
    assert_eq!(records(&moto, &zone).await.0, Some(weights(100, 0, 0)));

    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{name}"),
            "--timeout=30s",
        ])
        .await
        .unwrap();
    let _ = stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await;
}

/// Route53 unreachable (nothing listens at the endpoint): the watchdog
/// cannot start, and the status says so instead of "starting" forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_route53_is_a_condition() {
    let stack = Stack::require();
    let (ns, api) = namespace(&stack, "drdown").await;
    let target = Target::start(true).await;
    let _operator = start_operator(&stack, &ns, "http://127.0.0.1:1", &unique("op")).await;
    let name = "nodns";
    let m = manifest(
        &stack,
        name,
        "ZNOSUCHZONE",
        "tickets.nowhere.example",
        [target.url(), target.url(), target.url()],
    );
    apply(&stack, &ns, &m).await;
    let te = wait_for(
        &api,
        name,
        "DnsReady=False Route53Unreachable",
        Duration::from_secs(45),
        |te| condition(te, "DnsReady") == Some(("False", "Route53Unreachable")),
    )
    .await;
    assert_eq!(condition(&te, "Ready").map(|c| c.0), Some("False"));
    let message = &te
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "DnsReady")
        .unwrap()
        .message;
    assert!(message.contains("tickets.nowhere.example"), "{message}");

    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{name}"),
            "--timeout=30s",
        ])
        .await
        .unwrap();
    let _ = stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await;
}
