//! The controller against the real kube-apiserver and Kafka of the test
//! stack: the operator binary runs as a process watching a fresh namespace;
//! TicketEvents are applied with kubectl and their effects checked in
//! Kafka and in the cluster (Deployments, HPAs, status, deletion).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use serde_json::{Value, json};
use support::{install_crd, repo};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_operator::{
    crd::TicketEvent,
    plan::{Plan, TopicRole, topic_name, topic_prefix},
    sizing::Workload,
};

/// The demo manifest, pointed at the test Kafka, without DR, opening soon
/// (so it is inside the pre-scale lead and sized for the forecast).
fn manifest(stack: &Stack, name: &str, peak: i64, policy: &str) -> Value {
    let text = std::fs::read_to_string(repo("examples/demo-event.yaml")).unwrap();
    let mut m: Value = yaml_serde::from_str(&text).unwrap();
    let now = Timestamp::now();
    m["metadata"] = json!({"name": name});
    let spec = &mut m["spec"];
    spec.as_object_mut().unwrap().remove("dr");
    spec["opensAt"] = json!(
        now.checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap()
            .to_string()
    );
    spec["closesAt"] = json!(
        now.checked_add(jiff::SignedDuration::from_hours(2))
            .unwrap()
            .to_string()
    );
    spec["traffic"]["expectedPeakRps"] = json!(peak);
    spec["kafka"] = json!({
        "bootstrapServers": stack.kafka_bootstrap,
        "partitions": "auto",
        "replicationFactor": 1,
        "retention": "1h",
        "deletionPolicy": policy,
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

async fn get(stack: &Stack, ns: &str, what: &str) -> Value {
    serde_json::from_str(
        &stack
            .kubectl(&["get", "-n", ns, what, "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap()
}

/// Polls the TicketEvent until `done` holds for it (up to 60 s).
async fn wait_for(
    stack: &Stack,
    ns: &str,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let te = get(stack, ns, &format!("ticketevent/{name}")).await;
        if done(&te) {
            return te;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {te:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn condition<'a>(te: &'a Value, type_: &str) -> &'a Value {
    te["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// What the operator's own sizing plans for the manifest now.
fn plan(manifest: &Value, ns: &str) -> Plan {
    let te: TicketEvent = serde_json::from_value(manifest.clone()).unwrap();
    Plan::new(&te, ns, Timestamp::now()).unwrap()
}

fn replicas(plan: &Plan, workload: Workload) -> i64 {
    i64::from(
        plan.workloads
            .iter()
            .find(|w| w.workload == workload)
            .unwrap()
            .replicas_now,
    )
}

fn kafka_partitions(stack: &Stack) -> HashMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect()
}

/// The operator binary, killed when dropped.
async fn start_operator(stack: &Stack, ns: &str) -> tokio::process::Child {
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
        ])
        .env("KUBECONFIG", &stack.kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn expect_workloads(stack: &Stack, ns: &str, name: &str, plan: &Plan) {
    for (workload, suffix) in [
        (Workload::QueueApi, "queue-api"),
        (Workload::QueueConsumer, "queue-consumer"),
        (Workload::BookingApi, "booking-api"),
        (Workload::BookingConsumer, "booking-consumer"),
    ] {
        let want = replicas(plan, workload);
        let d = get(stack, ns, &format!("deployment/{name}-{suffix}")).await;
        assert_eq!(d["spec"]["replicas"], want, "{suffix} replicas");
        let owner = &d["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "TicketEvent");
        assert_eq!(owner["name"], name);
        assert_eq!(owner["controller"], true);
        let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[0], suffix, "{args}");
        assert_eq!(args[4], topic_prefix(ns, name), "{args}");
        let hpa = get(stack, ns, &format!("hpa/{name}-{suffix}")).await;
        assert_eq!(hpa["spec"]["minReplicas"], want, "{suffix} HPA min");
        assert_eq!(hpa["spec"]["maxReplicas"], 40);
        assert_eq!(hpa["metadata"]["ownerReferences"][0]["name"], name);
    }
    get(stack, ns, &format!("service/{name}-queue-api")).await;
    get(stack, ns, &format!("service/{name}-booking-api")).await;
    let cm = get(stack, ns, &format!("configmap/{name}-event")).await;
    let config: twinkle_domain::EventConfig =
        serde_json::from_str(cm["data"]["event.json"].as_str().unwrap()).unwrap();
    assert_eq!(config.id.as_str(), name);
}

fn expect_topics(stack: &Stack, ns: &str, name: &str, partitions: usize) {
    let topics = kafka_partitions(stack);
    for role in TopicRole::ALL {
        let topic = topic_name(ns, name, role);
        // The queue journal keeps one partition: its order is the queue's.
        let want = if role == TopicRole::Journal {
            1
        } else {
            partitions
        };
        assert_eq!(topics.get(&topic), Some(&want), "{topic}");
    }
}

async fn wait_ready_generation(stack: &Stack, ns: &str, name: &str) -> Value {
    let te = get(stack, ns, &format!("ticketevent/{name}")).await;
    let generation = te["metadata"]["generation"].clone();
    wait_for(stack, ns, name, "observedGeneration", |te| {
        te["status"]["observedGeneration"] == generation
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_workloads_resizing_and_deletion() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let ns = unique("op");
    stack.kubectl(&["create", "namespace", &ns]).await.unwrap();
    let _operator = start_operator(&stack, &ns).await;

    // 1. Created: Ready, topics with the planned partitions, workloads.
    let name = "rush";
    let m = manifest(&stack, name, 2_000, "Retain");
    let planned = plan(&m, &ns);
    apply(&stack, &ns, &m).await;
    stack
        .kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=90s",
            &format!("ticketevent/{name}"),
        ])
        .await
        .unwrap();
    let partitions = planned.topics[0].partitions as usize;
    expect_topics(&stack, &ns, name, partitions);
    expect_workloads(&stack, &ns, name, &planned).await;
    let te = get(&stack, &ns, &format!("ticketevent/{name}")).await;
    assert_eq!(te["status"]["phase"], "Ready");
    assert_eq!(condition(&te, "DnsReady")["reason"], "NotManaged");
    assert_eq!(
        te["metadata"]["finalizers"][0],
        "ticket.twinkle.dev/cleanup"
    );

    // 2. A bigger forecast: more replicas and more partitions.
    let bigger = manifest(&stack, name, 40_000, "Retain");
    let grown = plan(&bigger, &ns);
    assert!(
        grown.topics[0].partitions > planned.topics[0].partitions,
        "the test needs growth"
    );
    apply(&stack, &ns, &bigger).await;
    wait_ready_generation(&stack, &ns, name).await;
    stack
        .kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=60s",
            &format!("ticketevent/{name}"),
        ])
        .await
        .unwrap();
    expect_topics(&stack, &ns, name, grown.topics[0].partitions as usize);
    expect_workloads(&stack, &ns, name, &grown).await;

    // 3. Smaller again: replicas shrink, partitions stay, the condition says why.
    let smaller = manifest(&stack, name, 1_000, "Retain");
    let shrunk = plan(&smaller, &ns);
    apply(&stack, &ns, &smaller).await;
    let te = wait_ready_generation(&stack, &ns, name).await;
    let topics = condition(&te, "TopicsReady");
    assert_eq!(topics["status"], "False", "{te:#}");
    assert_eq!(topics["reason"], "NotSupported");
    assert!(
        topics["message"]
            .as_str()
            .unwrap()
            .contains("cannot decrease"),
        "{topics}"
    );
    assert_eq!(condition(&te, "Ready")["status"], "False");
    expect_topics(&stack, &ns, name, grown.topics[0].partitions as usize);
    expect_workloads(&stack, &ns, name, &shrunk).await;

    // 3b. The HPA scales a Deployment up (here kubectl, another field
    // manager): the change wakes the controller, which keeps the count
    // instead of forcing the plan back.
    let scaled = replicas(&shrunk, Workload::BookingApi) + 5;
    let deployment = format!("deployment/{name}-booking-api");
    stack
        .kubectl(&[
            "scale",
            "-n",
            &ns,
            &deployment,
            &format!("--replicas={scaled}"),
        ])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = get(&stack, &ns, &deployment).await;
    assert_eq!(d["spec"]["replicas"], scaled, "the HPA's scale-up stands");

    // 4. Deleted with Retain: the topics stay.
    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{name}"),
            "--timeout=60s",
        ])
        .await
        .unwrap();
    expect_topics(&stack, &ns, name, grown.topics[0].partitions as usize);

    // 5. Deleted with Delete: the topics go.
    let doomed = "doomed";
    // This one finds Kafka through a Secret instead of inline servers.
    stack
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "kafka",
            "-n",
            &ns,
            &format!("--from-literal=servers={}", stack.kafka_bootstrap),
        ])
        .await
        .unwrap();
    let mut m = manifest(&stack, doomed, 1_000, "Delete");
    let kafka = m["spec"]["kafka"].as_object_mut().unwrap();
    kafka.remove("bootstrapServers");
    kafka.insert(
        "bootstrapSecretRef".into(),
        json!({"name": "kafka", "key": "servers"}),
    );
    apply(&stack, &ns, &m).await;
    stack
        .kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=90s",
            &format!("ticketevent/{doomed}"),
        ])
        .await
        .unwrap();
    assert!(kafka_partitions(&stack).contains_key(&topic_name(&ns, doomed, TopicRole::Queue)));
    let d = get(&stack, &ns, &format!("deployment/{doomed}-queue-api")).await;
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], "kafka", "{env}");
    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{doomed}"),
            "--timeout=60s",
        ])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topics = kafka_partitions(&stack);
        let left: Vec<_> = TopicRole::ALL
            .iter()
            .map(|r| topic_name(&ns, doomed, *r))
            .filter(|t| topics.contains_key(t))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "topics not deleted: {left:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every action left a Kubernetes Event on its TicketEvent.
    let events = stack
        .kubectl(&["get", "events", "-n", &ns, "-o", "json"])
        .await
        .unwrap();
    for reason in [
        "TopicCreated",
        "TopicGrown",
        "PartitionsNotDecreased",
        "TopicsRetained",
        "TopicsDeleted",
    ] {
        assert!(events.contains(reason), "no {reason} Event");
    }

    // The retained topics are this test's garbage, not the stack's.
    let retained: Vec<String> = TopicRole::ALL
        .iter()
        .map(|r| topic_name(&ns, name, *r))
        .collect();
    twinkle_operator::controller::topics::Admins::default()
        .delete(&stack.kafka_bootstrap, &retained)
        .await
        .unwrap();
    let _ = stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await;
}

/// Kafka unreachable: a condition and a requeue, not a crash; deleting the
/// event gives up on its topics after the bound and releases the finalizer,
/// so namespace deletion cannot wedge on a dead cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_kafka_is_a_condition_and_never_wedges_deletion() {
    let stack = Stack::require();
    install_crd(&stack).await;
    let ns = unique("op");
    stack.kubectl(&["create", "namespace", &ns]).await.unwrap();
    let _operator = start_operator(&stack, &ns).await;

    let name = "nokafka";
    let mut m = manifest(&stack, name, 1_000, "Delete");
    // Nothing listens on port 1.
    m["spec"]["kafka"]["bootstrapServers"] = json!("127.0.0.1:1");
    apply(&stack, &ns, &m).await;
    let te = wait_for(&stack, &ns, name, "TopicsReady=False", |te| {
        condition(te, "TopicsReady")["reason"] == "KafkaUnavailable"
    })
    .await;
    assert_eq!(condition(&te, "TopicsReady")["status"], "False");
    assert_eq!(condition(&te, "Ready")["status"], "False");
    // The workloads are applied all the same.
    get(&stack, &ns, &format!("deployment/{name}-queue-api")).await;

    let started = Instant::now();
    stack
        .kubectl(&[
            "delete",
            "-n",
            &ns,
            &format!("ticketevent/{name}"),
            "--timeout=90s",
        ])
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(90));
    let events = stack
        .kubectl(&["get", "events", "-n", &ns, "-o", "json"])
        .await
        .unwrap();
    assert!(
        events.contains("TopicsNotDeleted"),
        "no give-up Warning: {events}"
    );
    let _ = stack
        .kubectl(&["delete", "namespace", &ns, "--wait=false"])
        .await;
}
