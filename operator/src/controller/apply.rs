//! What one reconcile does: topics, workloads, status (apply) and the
//! finalizer's cleanup.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api, Resource, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use serde::{Serialize, de::DeserializeOwned};
use twinkle_crd::{ConditionType, DeletionPolicy, TicketEvent};

use super::{
    Context, FIELD_MANAGER,
    status::Cond,
    topics::TopicError,
    workloads,
    writer::{Base, Dns},
};
use crate::{Error, Result, plan::Plan};

/// Where the event's Kafka is: inline servers, or the Secret key it names.
async fn bootstrap(te: &TicketEvent, ctx: &Context) -> Result<String> {
    let kafka = &te.spec.kafka;
    if let Some(servers) = &kafka.bootstrap_servers {
        return Ok(servers.clone());
    }
    let r = kafka
        .bootstrap_secret_ref
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("kafka has no bootstrap servers".into()))?;
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &te.namespace().unwrap_or_default());
    let secret = secrets.get(&r.name).await?;
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(&r.key))
        .ok_or_else(|| Error::InvalidSpec(format!("Secret {} has no key {}", r.name, r.key)))?;
    String::from_utf8(bytes.0)
        .map(|s| s.trim().to_owned())
        .map_err(|_| Error::InvalidSpec(format!("Secret {} key {} is not text", r.name, r.key)))
}

async fn ssa<K>(api: &Api<K>, object: &K) -> Result<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(object)).await?)
}

/// Topics as planned; never an error for Kafka's own failures (they are
/// conditions), so workloads and status still get applied.
async fn reconcile_topics(te: &TicketEvent, plan: &Plan, ctx: &Context) -> (Cond, bool) {
    let bootstrap = match bootstrap(te, ctx).await {
        Ok(b) => b,
        Err(e) => {
            return (
                Cond::new(
                    ConditionType::TopicsReady,
                    false,
                    "BootstrapUnresolved",
                    e.to_string(),
                ),
                true,
            );
        }
    };
    match ctx.kafka.ensure(&bootstrap, &plan.topics).await {
        Ok(outcome) => {
            for name in &outcome.created {
                ctx.event(
                    te,
                    EventType::Normal,
                    "TopicCreated",
                    format!("created Kafka topic {name}"),
                )
                .await;
            }
            for (name, from, to) in &outcome.grown {
                ctx.event(
                    te,
                    EventType::Normal,
                    "TopicGrown",
                    format!("increased partitions of {name} from {from} to {to}"),
                )
                .await;
            }
            if outcome.not_shrunk.is_empty() {
                let parts = plan.topics.first().map_or(0, |t| t.partitions);
                (
                    Cond::new(
                        ConditionType::TopicsReady,
                        true,
                        "Reconciled",
                        format!("{} topics with {parts} partitions", plan.topics.len()),
                    ),
                    false,
                )
            } else {
                let detail: Vec<String> = outcome
                    .not_shrunk
                    .iter()
                    .map(|(n, have, want)| format!("{n} has {have} partitions, planned {want}"))
                    .collect();
                let message = format!(
                    "Kafka cannot decrease partitions; kept: {}",
                    detail.join("; ")
                );
                ctx.event(
                    te,
                    EventType::Warning,
                    "PartitionsNotDecreased",
                    message.clone(),
                )
                .await;
                (
                    Cond::new(ConditionType::TopicsReady, false, "NotSupported", message),
                    false,
                )
            }
        }
        Err(e @ TopicError::Unavailable { .. }) => {
            ctx.metrics.failed("KafkaUnavailable");
            ctx.event(te, EventType::Warning, "KafkaUnavailable", e.to_string())
                .await;
            (
                Cond::new(
                    ConditionType::TopicsReady,
                    false,
                    "KafkaUnavailable",
                    e.to_string(),
                ),
                true,
            )
        }
        Err(e) => {
            ctx.metrics.failed("TopicFailed");
            ctx.event(te, EventType::Warning, "TopicFailed", e.to_string())
                .await;
            (
                Cond::new(
                    ConditionType::TopicsReady,
                    false,
                    "TopicFailed",
                    e.to_string(),
                ),
                true,
            )
        }
    }
}

/// Applies the objects and reports whether the deployment controller has
/// seen every Deployment's current spec. Not "pods available": readiness
/// of pods depends on nodes and images outside the operator's control (the
/// test cluster has no nodes at all); availability is the HPA's and the
/// workloads' own `/readyz` concern, and `kubectl wait` on the event must
/// not hang on it.
async fn reconcile_workloads(te: &TicketEvent, plan: &Plan, ctx: &Context) -> Result<Cond> {
    let ns = &plan.namespace;
    let objects = workloads::objects(te, plan, &ctx.settings.workloads)?;
    let client = &ctx.client;
    ssa(&Api::namespaced(client.clone(), ns), &objects.config_map).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut pending = Vec::new();
    for deployment in &objects.deployments {
        let mut deployment = deployment.clone();
        let current = deployments.get_opt(&deployment.name_any()).await?;
        if let Some(spec) = deployment.spec.as_mut() {
            let planned = spec.replicas.unwrap_or(1);
            let last = current
                .as_ref()
                .and_then(|d| d.annotations().get(workloads::PLANNED_REPLICAS))
                .and_then(|v| v.parse().ok());
            let now = current.as_ref().and_then(|d| d.spec.as_ref()?.replicas);
            spec.replicas = Some(workloads::replicas_to_apply(planned, now, last));
        }
        let applied = ssa(&deployments, &deployment).await?;
        let generation = applied.metadata.generation.unwrap_or(0);
        let observed = applied
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if observed < generation {
            pending.push(applied.name_any());
        }
    }
    for service in &objects.services {
        ssa(&Api::namespaced(client.clone(), ns), service).await?;
    }
    for hpa in &objects.hpas {
        ssa(&Api::namespaced(client.clone(), ns), hpa).await?;
    }
    let names: Vec<String> = objects.deployments.iter().map(|d| d.name_any()).collect();
    Ok(if pending.is_empty() {
        Cond::new(
            ConditionType::WorkloadsReady,
            true,
            "Applied",
            format!(
                "{} applied and observed by the deployment controller",
                names.join(", ")
            ),
        )
    } else {
        Cond::new(
            ConditionType::WorkloadsReady,
            false,
            "Progressing",
            format!(
                "waiting for the deployment controller to observe {}",
                pending.join(", ")
            ),
        )
    })
}

/// The status with this reconcile's conditions; `DnsReady` and
/// `status.dr` come from the event's DR watchdog task (or say there is
/// none), composed by the status writer.
async fn write_status(
    te: &TicketEvent,
    plan: &Plan,
    conds: Vec<Cond>,
    dns: Dns,
    ctx: &Context,
) -> Result<()> {
    let base = Base {
        namespace: plan.namespace.clone(),
        name: plan.name.clone(),
        generation: te.metadata.generation,
        previous: te.status.clone(),
        plan: plan.clone(),
        conds,
    };
    ctx.status
        .write_reconciled(&super::key(te), base, dns)
        .await
}

/// Reconciles a live TicketEvent.
pub async fn apply(te: &TicketEvent, ctx: &Context) -> Result<Action> {
    let now = Timestamp::now();
    let plan = Plan::new(te, &te.namespace().unwrap_or_default(), now)?;
    // Starts, restarts or re-pins the event's DR watchdog (a task of its
    // own; this only registers it). First: DR must not wait for Kafka or
    // the workloads, which may be down in the very outage it handles.
    let dns = ctx.dr.ensure(te).await;
    let (topics, kafka_retry) = reconcile_topics(te, &plan, ctx).await;
    let workloads = match reconcile_workloads(te, &plan, ctx).await {
        Ok(c) => c,
        Err(e) => {
            ctx.event(te, EventType::Warning, "WorkloadsFailed", e.to_string())
                .await;
            return Err(e);
        }
    };
    let changed = te.status.as_ref().and_then(|s| s.observed_generation) != te.metadata.generation;
    if changed && workloads.ok {
        ctx.event(
            te,
            EventType::Normal,
            "WorkloadsApplied",
            workloads.message.clone(),
        )
        .await;
    }
    write_status(te, &plan, vec![topics, workloads.clone()], dns, ctx).await?;

    let converging = kafka_retry || !workloads.ok;
    Ok(Action::requeue(requeue_after(
        &plan,
        now,
        converging,
        ctx.settings.poll,
    )))
}

/// When to look again: soon while converging, otherwise at the next window
/// change (so replicas go up `preScaleLead` before opensAt and down after
/// closesAt on time, without polling), and at least every 5 minutes.
fn requeue_after(plan: &Plan, now: Timestamp, converging: bool, poll: Duration) -> Duration {
    let mut next = if converging {
        poll
    } else {
        Duration::from_secs(300)
    };
    if let Some(at) = plan.window.next_change
        && let Ok(until) = Duration::try_from(now.duration_until(at))
    {
        // A second past the boundary, so the window has changed by then.
        next = next.min(until + Duration::from_secs(1));
    }
    next
}

/// The finalizer's cleanup: owned objects go by garbage collection; topics
/// by deletionPolicy, giving up (with a Warning) if Kafka stays unreachable.
pub async fn cleanup(te: &TicketEvent, ctx: &Context) -> Result<Action> {
    // The DR watchdog first: once this returns it writes no more weights
    // (and has released its Route53 lease). The records stay as they are.
    ctx.dr.stop(&super::key(te)).await;
    ctx.status.forget(&super::key(te));
    if te.spec.kafka.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            te,
            EventType::Normal,
            "TopicsRetained",
            "deletionPolicy Retain: Kafka topics kept".into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let plan = Plan::new(te, &te.namespace().unwrap_or_default(), Timestamp::now())?;
    let names: Vec<String> = plan.topics.iter().map(|t| t.name.clone()).collect();
    let key = super::key(te);
    let result = match bootstrap(te, ctx).await {
        Ok(b) => ctx
            .kafka
            .delete(&b, &names)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => {
            if let Ok(mut m) = ctx.delete_failing_since.lock() {
                m.remove(&key);
            }
            ctx.event(
                te,
                EventType::Normal,
                "TopicsDeleted",
                format!("deleted {}", names.join(", ")),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(why) => {
            let since = ctx
                .delete_failing_since
                .lock()
                .map(|mut m| *m.entry(key.clone()).or_insert_with(std::time::Instant::now))
                .unwrap_or_else(|_| std::time::Instant::now());
            if since.elapsed() >= ctx.settings.delete_give_up {
                if let Ok(mut m) = ctx.delete_failing_since.lock() {
                    m.remove(&key);
                }
                ctx.event(
                    te,
                    EventType::Warning,
                    "TopicsNotDeleted",
                    format!("gave up deleting {} ({why}); releasing the finalizer so deletion does not wedge", names.join(", ")),
                )
                .await;
                Ok(Action::await_change())
            } else {
                Err(Error::Kafka(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::workloads::tests::event;

    #[test]
    fn requeues_at_the_next_window_change() {
        let te = event(); // opens 2026-12-05T01:00Z, lead 15m, closes 09:00Z
        let poll = Duration::from_secs(5);
        let at = |now: &str| {
            let now: Timestamp = now.parse().unwrap();
            (Plan::new(&te, "popup", now).unwrap(), now)
        };
        // Idle, two minutes before the pre-scale: wake up right after it.
        let (plan, now) = at("2026-12-05T00:43:00Z");
        assert_eq!(
            requeue_after(&plan, now, false, poll),
            Duration::from_secs(121)
        );
        // Converging wins when it is sooner.
        assert_eq!(requeue_after(&plan, now, true, poll), poll);
        // Open, hours before closing: the periodic resync.
        let (plan, now) = at("2026-12-05T02:00:00Z");
        assert_eq!(
            requeue_after(&plan, now, false, poll),
            Duration::from_secs(300)
        );
        // Closed: nothing changes any more but the resync.
        let (plan, now) = at("2026-12-06T00:00:00Z");
        assert_eq!(
            requeue_after(&plan, now, false, poll),
            Duration::from_secs(300)
        );
    }
}
