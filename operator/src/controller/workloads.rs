//! The event's workloads as Kubernetes objects: the mounted event config,
//! Deployments, Services and HPAs, all owned by the TicketEvent so deleting
//! it garbage-collects them.
//!
//! Four workloads run the same `twinkle` image: queue-api, queue-consumer,
//! booking-api and booking-consumer (its subcommand is the component name).

use k8s_openapi::{
    api::{
        apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler, core::v1::ConfigMap,
        core::v1::Service,
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::Resource as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use twinkle_crd::TicketEvent;

use crate::{
    Error, Result,
    plan::{Plan, topic_prefix},
    sizing::{Workload, capacity},
};

/// The workloads, each a `twinkle` subcommand of the same name.
pub const BUILT: [Workload; 4] = [
    Workload::QueueApi,
    Workload::QueueConsumer,
    Workload::BookingApi,
    Workload::BookingConsumer,
];

/// Where the event config is mounted in the pods.
const EVENT_DIR: &str = "/etc/twinkle";
const TOKEN_DIR: &str = "/etc/twinkle-token";

/// Settings the operator is started with, not part of any TicketEvent.
#[derive(Debug, Clone)]
pub struct WorkloadSettings {
    /// The `twinkle` workloads image.
    pub image: String,
    /// Secret (in the event's namespace) with the token signing key.
    pub token_secret: String,
    /// Key of that Secret.
    pub token_secret_key: String,
    /// This cluster's region in a DR pair: the queue keeper and the
    /// decider of an event with a `dr` section write only while its
    /// ownership record names this region. `None`: the only region.
    pub sell_region: Option<twinkle_dr::Region>,
    /// Service account the workload pods run as; in a DR pair its IAM role
    /// (IRSA) may read the ownership record. `None`: the namespace's
    /// default.
    pub service_account: Option<String>,
    /// Route53 endpoint override for the consumers' ownership reads (moto
    /// in tests).
    pub route53_endpoint: Option<String>,
}

/// The consumers' DR pairing: where the ownership record is and which
/// region they are (see `twinkle --sell-region`); empty outside a pair.
fn pairing_env(event: &TicketEvent, settings: &WorkloadSettings) -> Vec<Value> {
    let (Some(region), Some(dr)) = (settings.sell_region, &event.spec.dr) else {
        return Vec::new();
    };
    let mut env = vec![
        json!({"name": "TWINKLE_SELL_REGION", "value": region.to_string()}),
        json!({"name": "TWINKLE_OWNER_ZONE_ID", "value": dr.hosted_zone_id}),
        json!({"name": "TWINKLE_OWNER_RECORD",
               "value": twinkle_dr::Ownership::record_name(&dr.record_name)}),
    ];
    if let Some(endpoint) = &settings.route53_endpoint {
        env.push(json!({"name": "TWINKLE_ROUTE53_ENDPOINT", "value": endpoint}));
    }
    env
}

/// Every object of an event, ready for server-side apply.
#[derive(Debug)]
pub struct Objects {
    pub config_map: ConfigMap,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
}

fn typed<T: DeserializeOwned>(what: &'static str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|source| Error::Json { what, source })
}

/// Annotation on each Deployment: the replicas the operator last planned.
pub const PLANNED_REPLICAS: &str = "ticket.twinkle.dev/planned-replicas";

/// The replicas to apply to a Deployment. The plan is the floor; the HPA
/// (same floor) may add pods between reconciles. If the Deployment still has
/// what the operator planned last time, nobody else scaled it and the new
/// plan applies (up or down). If it has something else, the HPA scaled it:
/// its count stands (raised to the new plan if that is higher), and scaling
/// back down is the HPA's job — so reconciles never fight the autoscaler.
pub fn replicas_to_apply(planned: i32, current: Option<i32>, last_planned: Option<i32>) -> i32 {
    match (current, last_planned) {
        (Some(current), Some(last)) if current != last => current.max(planned),
        _ => planned,
    }
}

pub fn config_map_name(event: &str) -> String {
    format!("{event}-event")
}

fn labels(event: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "twinkle",
        "app.kubernetes.io/instance": event,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "twinkle-operator",
    })
}

fn with_planned(mut metadata: Value, replicas: i32) -> Value {
    metadata["annotations"] = json!({ PLANNED_REPLICAS: replicas.to_string() });
    metadata
}

/// The objects for `event` sized by `plan`.
pub fn objects(event: &TicketEvent, plan: &Plan, settings: &WorkloadSettings) -> Result<Objects> {
    let owner: OwnerReference = event
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("the TicketEvent has no uid yet".into()))?;
    let ns = &plan.namespace;
    let name = &plan.name;
    let config = twinkle_domain::EventConfig::try_from(event)?;
    let config_json = serde_json::to_string_pretty(&config).map_err(|source| Error::Json {
        what: "the event config",
        source,
    })?;
    let meta = |object: &str, component: &str| {
        json!({
            "name": object, "namespace": ns,
            "labels": labels(name, component),
            "ownerReferences": [owner],
        })
    };
    let config_map = typed(
        "ConfigMap",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta(&config_map_name(name), "config"),
            "data": {"event.json": config_json},
        }),
    )?;

    let kafka_env = match (
        &event.spec.kafka.bootstrap_servers,
        &event.spec.kafka.bootstrap_secret_ref,
    ) {
        (Some(servers), _) => json!({"name": "TWINKLE_KAFKA", "value": servers}),
        (None, Some(r)) => json!({"name": "TWINKLE_KAFKA",
            "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}}),
        (None, None) => return Err(Error::InvalidSpec("kafka has no bootstrap servers".into())),
    };
    let redis = &event.spec.redis.secret_ref;
    // The workloads name their topics `<prefix>.queue|bookings|outcomes`
    // (as `topic_name` does) and their consumer groups `<prefix>.<role>`.
    let prefix = topic_prefix(ns, name);
    let pairing = pairing_env(event, settings);

    let mut objects = Objects {
        config_map,
        deployments: Vec::new(),
        services: Vec::new(),
        hpas: Vec::new(),
    };
    for workload in BUILT {
        let Some(sized) = plan.workloads.iter().find(|w| w.workload == workload) else {
            continue;
        };
        let object = &sized.deployment;
        let component = workload.name();
        let replicas = i32::try_from(sized.replicas_now).unwrap_or(i32::MAX);
        let max = i32::try_from(plan.max_replicas)
            .unwrap_or(i32::MAX)
            .max(replicas);
        let selector = json!({
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": component,
        });
        // One decider decides, and one keeper keeps the queue, at a time
        // (the others stand by on its lease, and its log fences any older
        // one); a rolling update would run the new release beside a
        // previous one that may decide differently, so the consumers are
        // replaced, not rolled.
        let strategy = if matches!(
            workload,
            Workload::BookingConsumer | Workload::QueueConsumer
        ) {
            json!({"type": "Recreate"})
        } else {
            json!({"type": "RollingUpdate"})
        };
        let mut env = vec![
            kafka_env.clone(),
            json!({"name": "TWINKLE_REDIS", "valueFrom": {"secretKeyRef":
                {"name": redis.name, "key": redis.key}}}),
            json!({"name": "TWINKLE_TOKEN_SECRET_FILE",
                   "value": format!("{TOKEN_DIR}/{}", settings.token_secret_key)}),
            json!({"name": "TWINKLE_LOG_JSON", "value": "true"}),
            json!({"name": "TWINKLE_GROUP", "value": prefix}),
            json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        ];
        if workload.is_consumer() {
            env.extend(pairing.iter().cloned());
        }
        objects.deployments.push(typed(
            "Deployment",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": with_planned(meta(object, component), replicas),
                "spec": {
                    // The plan's replicas; `apply` keeps an HPA scale-up
                    // (see `replicas_to_apply`).
                    "replicas": replicas,
                    "strategy": strategy,
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {"labels": labels(name, component)},
                        "spec": {
                            "serviceAccountName": settings.service_account,
                            "automountServiceAccountToken": false,
                            "securityContext": {
                                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [{
                                "name": component,
                                "image": settings.image,
                                "args": [component, "--event", format!("{EVENT_DIR}/event.json"),
                                         "--topic-prefix", prefix],
                                "env": env,
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "resources": {
                                    // The capacity model plans each pod's rate on
                                    // this request (sizing::capacity).
                                    "requests": {"cpu": capacity::cpu_request(), "memory": "128Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                                  "periodSeconds": 10},
                                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                                   "periodSeconds": 5},
                                "securityContext": {
                                    "allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "event", "mountPath": EVENT_DIR, "readOnly": true},
                                    {"name": "token", "mountPath": TOKEN_DIR, "readOnly": true},
                                ],
                            }],
                            "volumes": [
                                {"name": "event", "configMap": {"name": config_map_name(name)}},
                                {"name": "token", "secret": {"secretName": settings.token_secret}},
                            ],
                        },
                    },
                },
            }),
        )?);
        if !workload.is_consumer() {
            objects.services.push(typed(
                "Service",
                json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": meta(object, component),
                    "spec": {
                        "selector": selector,
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                    },
                }),
            )?);
        }
        objects.hpas.push(typed(
            "HorizontalPodAutoscaler",
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": meta(object, component),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object},
                    // The forecast is the floor; the HPA adds what it missed.
                    "minReplicas": replicas,
                    "maxReplicas": max,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization",
                                   "averageUtilization": capacity::HPA_TARGET_CPU_PERCENT}}}],
                },
            }),
        )?);
    }
    Ok(objects)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn event() -> TicketEvent {
        let mut te: TicketEvent =
            yaml_serde::from_str(include_str!("../../../examples/demo-event.yaml")).unwrap();
        te.metadata.namespace = Some("popup".into());
        te.metadata.uid = Some("0000-1111".into());
        te.spec.dr = None;
        te
    }

    fn settings() -> WorkloadSettings {
        WorkloadSettings {
            image: "registry.example/twinkle:1".into(),
            token_secret: "twinkle-token".into(),
            token_secret_key: "secret".into(),
            sell_region: None,
            service_account: None,
            route53_endpoint: None,
        }
    }

    #[test]
    fn queue_workloads_are_hardened_sized_and_owned() {
        let te = event();
        let at = "2026-12-05T00:50:00Z".parse().unwrap(); // pre-scaled
        let plan = Plan::new(&te, "popup", at).unwrap();
        let objects = objects(&te, &plan, &settings()).unwrap();
        assert_eq!(objects.deployments.len(), 4);
        assert_eq!(objects.services.len(), 2, "one per API");
        assert_eq!(objects.hpas.len(), 4);
        let value = serde_json::to_value(&objects.deployments[0]).unwrap();
        assert_eq!(value["metadata"]["name"], "winter-popup-queue-api");
        assert_eq!(value["spec"]["strategy"]["type"], "RollingUpdate");
        let decider = objects
            .deployments
            .iter()
            .map(|d| serde_json::to_value(d).unwrap())
            .find(|d| d["metadata"]["name"] == "winter-popup-booking-consumer")
            .unwrap();
        assert_eq!(
            decider["spec"]["strategy"]["type"], "Recreate",
            "two decider releases never run side by side"
        );
        let keeper = objects
            .deployments
            .iter()
            .map(|d| serde_json::to_value(d).unwrap())
            .find(|d| d["metadata"]["name"] == "winter-popup-queue-consumer")
            .unwrap();
        assert_eq!(
            keeper["spec"]["strategy"]["type"], "Recreate",
            "two queue keeper releases never run side by side"
        );
        assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], "0000-1111");
        let want = plan
            .workloads
            .iter()
            .find(|w| w.workload == Workload::QueueApi)
            .unwrap()
            .replicas_now;
        assert_eq!(value["spec"]["replicas"], want);
        assert_eq!(
            value["metadata"]["annotations"][PLANNED_REPLICAS],
            want.to_string()
        );
        let pod = &value["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "registry.example/twinkle:1");
        assert_eq!(
            c["args"],
            json!([
                "queue-api",
                "--event",
                "/etc/twinkle/event.json",
                "--topic-prefix",
                "popup.winter-popup"
            ])
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(c["resources"]["requests"]["cpu"].is_string());
        // Credentials only by reference: Kafka from the Secret the spec names.
        let env = c["env"].as_array().unwrap();
        assert!(
            env.iter()
                .all(|e| e["name"] != "TWINKLE_REDIS" || e.get("value").is_none())
        );
        assert_eq!(
            env[0]["valueFrom"]["secretKeyRef"]["name"],
            "kafka-bootstrap"
        );

        let hpa = serde_json::to_value(&objects.hpas[1]).unwrap();
        assert_eq!(
            hpa["spec"]["scaleTargetRef"]["name"],
            "winter-popup-queue-consumer"
        );
        assert_eq!(hpa["spec"]["maxReplicas"], 40);
        let cm = serde_json::to_value(&objects.config_map).unwrap();
        let config: twinkle_domain::EventConfig =
            serde_json::from_str(cm["data"]["event.json"].as_str().unwrap()).unwrap();
        assert_eq!(config.id.as_str(), "winter-popup");
    }

    #[test]
    fn replicas_follow_the_plan_unless_the_hpa_scaled() {
        // New Deployment, or untouched since the last plan: the plan wins.
        assert_eq!(replicas_to_apply(5, None, None), 5);
        assert_eq!(replicas_to_apply(3, Some(5), Some(5)), 3);
        assert_eq!(replicas_to_apply(8, Some(5), Some(5)), 8);
        // The HPA scaled to 9: kept, even when the plan shrinks...
        assert_eq!(replicas_to_apply(3, Some(9), Some(5)), 9);
        // ...and raised when the plan grows past it (pre-scaling).
        assert_eq!(replicas_to_apply(12, Some(9), Some(5)), 12);
        // No annotation (created by an older operator): the plan.
        assert_eq!(replicas_to_apply(4, Some(9), None), 4);
    }

    #[test]
    fn an_event_without_uid_is_not_applied() {
        let mut te = event();
        te.metadata.uid = None;
        let plan = Plan::new(&te, "popup", jiff::Timestamp::now()).unwrap();
        assert!(objects(&te, &plan, &settings()).is_err());
    }

    #[test]
    fn in_a_dr_pair_the_consumers_learn_their_region_and_the_ownership_record() {
        let demo: TicketEvent =
            yaml_serde::from_str(include_str!("../../../examples/demo-event.yaml")).unwrap();
        let mut te = event();
        te.spec.dr = demo.spec.dr.clone();
        let dr = te.spec.dr.clone().expect("the demo event has a dr section");
        let plan = Plan::new(&te, "popup", jiff::Timestamp::now()).unwrap();
        let paired = WorkloadSettings {
            sell_region: Some(twinkle_dr::Region::Dr),
            service_account: Some("twinkle-workloads".into()),
            route53_endpoint: Some("http://moto:5000".into()),
            ..settings()
        };
        let env_of = |settings: &WorkloadSettings, te: &TicketEvent, component: &str| {
            let objects = objects(te, &plan, settings).unwrap();
            let deployment = objects
                .deployments
                .iter()
                .map(|d| serde_json::to_value(d).unwrap())
                .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == component)
                .unwrap();
            let pod = &deployment["spec"]["template"]["spec"];
            let env: std::collections::BTreeMap<String, String> = pod["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_owned(),
                        e["value"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            (env, pod["serviceAccountName"].clone())
        };
        for consumer in ["queue-consumer", "booking-consumer"] {
            let (env, account) = env_of(&paired, &te, consumer);
            assert_eq!(env["TWINKLE_SELL_REGION"], "dr", "{consumer}");
            assert_eq!(env["TWINKLE_OWNER_ZONE_ID"], dr.hosted_zone_id);
            assert_eq!(
                env["TWINKLE_OWNER_RECORD"],
                format!("_twinkle-dr-owner.{}", dr.record_name)
            );
            assert_eq!(env["TWINKLE_ROUTE53_ENDPOINT"], "http://moto:5000");
            assert_eq!(account, "twinkle-workloads");
        }
        // The APIs sell nothing themselves; an operator outside a pair, or
        // an event without a dr section, pairs nobody.
        let (api, _) = env_of(&paired, &te, "booking-api");
        assert!(!api.contains_key("TWINKLE_SELL_REGION"));
        let (alone, account) = env_of(&settings(), &te, "booking-consumer");
        assert!(!alone.contains_key("TWINKLE_SELL_REGION"));
        assert!(account.is_null());
        let (no_dr, _) = env_of(&paired, &event(), "booking-consumer");
        assert!(!no_dr.contains_key("TWINKLE_SELL_REGION"));
    }
}
