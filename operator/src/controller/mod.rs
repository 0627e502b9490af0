//! The TicketEvent controller (issue #6): Kafka topics, queue workloads,
//! status and a finalizer; with `spec.dr`, the event's DR watchdog
//! (issue #7, [`dr`]).
//!
//! `reconcile` is thin: it times the run, delegates to `kube`'s finalizer
//! helper, and counts failures; the work is in [`apply`] and [`cleanup`].
//! The DR watchdogs run as tasks of their own ([`dr::Registry`]) and write
//! their part of the status through the same [`writer::StatusWriter`].

mod apply;
pub mod dr;
pub mod leader;
pub mod metrics;
mod status;
pub mod topics;
pub mod workloads;
mod writer;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use k8s_openapi::api::{
    apps::v1::Deployment, autoscaling::v2::HorizontalPodAutoscaler, core::v1::ConfigMap,
    core::v1::Service,
};
use kube::{
    Api, Client, Resource as _, ResourceExt as _,
    runtime::{
        Controller,
        controller::Action,
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        finalizer::{Event as Finalizer, finalizer},
        watcher,
    },
};
use twinkle_crd::TicketEvent;

pub use self::{metrics::Metrics, workloads::WorkloadSettings};
use crate::{Error, Result};

/// The finalizer that keeps a TicketEvent until its topics are dealt with.
pub const FINALIZER: &str = "ticket.twinkle.dev/cleanup";
/// Field manager of every server-side apply (objects and status).
pub const FIELD_MANAGER: &str = "twinkle-operator";

/// How the controller behaves; from flags in `main`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workloads: WorkloadSettings,
    /// Give up deleting topics after Kafka stayed unreachable this long
    /// during deletion (the finalizer is then released with a Warning), so
    /// namespace deletion never wedges on a dead cluster.
    pub delete_give_up: Duration,
    /// Requeue interval while something is still converging.
    pub poll: Duration,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for the error backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// When deleting an object's topics first failed.
    delete_failing_since: Mutex<HashMap<String, std::time::Instant>>,
    /// The one status writer (reconcile and DR watchdogs).
    status: Arc<writer::StatusWriter>,
    /// The DR watchdog tasks of events with `spec.dr`.
    dr: dr::Registry,
    /// Kafka Admin clients, one per cluster.
    kafka: topics::Admins,
}

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let status = Arc::new(writer::StatusWriter::new(client.clone()));
        let dr = dr::Registry::new(
            dr::adapter::DrEnv::from_env(),
            recorder.clone(),
            status.clone(),
        );
        Self {
            client,
            recorder,
            settings,
            metrics,
            failures: Mutex::default(),
            delete_failing_since: Mutex::default(),
            status,
            dr,
            kafka: topics::Admins::default(),
        }
    }

    /// Publishes a Kubernetes Event on the TicketEvent; failing to record
    /// one must not fail the reconcile.
    async fn event(&self, te: &TicketEvent, type_: EventType, reason: &str, note: String) {
        let event = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &te.object_ref(&())).await {
            tracing::warn!(%error, reason, "cannot record a Kubernetes Event");
        }
    }
}

fn key(te: &TicketEvent) -> String {
    format!("{}/{}", te.namespace().unwrap_or_default(), te.name_any())
}

/// One reconcile: instrumented, wrapped in the finalizer.
#[tracing::instrument(skip_all, fields(event = %key(&te)))]
pub async fn reconcile(te: Arc<TicketEvent>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start();
    let ns = te.namespace().unwrap_or_default();
    let api: Api<TicketEvent> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, te.clone(), |event| async {
        match event {
            Finalizer::Apply(te) => apply::apply(&te, &ctx).await,
            Finalizer::Cleanup(te) => apply::cleanup(&te, &ctx).await,
        }
    })
    .await
    .or_else(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => Err(e),
        // A stale second cleanup of an object already gone: nothing to do.
        kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(status))
            if status.code == 404 =>
        {
            Ok(Action::await_change())
        }
        other => Err(Error::Finalizer(other.to_string())),
    });
    if result.is_ok()
        && let Ok(mut failures) = ctx.failures.lock()
    {
        failures.remove(&key(&te));
    }
    result
}

/// Requeues failed reconciles with an exponential backoff (2s … 5m).
pub fn error_policy(te: Arc<TicketEvent>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error.reason());
    let attempt = ctx.failures.lock().map_or(1, |mut failures| {
        let n = failures.entry(key(&te)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    });
    let delay =
        Duration::from_secs(2u64.saturating_pow(attempt.min(9))).min(Duration::from_secs(300));
    tracing::warn!(event = %key(&te), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Runs the controller until `shutdown` resolves, then stops every DR
/// watchdog: this replica no longer reconciles (it lost the leader Lease,
/// or is shutting down), so it must not write weights either.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=twinkle-operator");
    Controller::new(
        api::<TicketEvent>(&client, &namespace),
        watcher::Config::default(),
    )
    .owns(api::<Deployment>(&client, &namespace), owned.clone())
    .owns(api::<Service>(&client, &namespace), owned.clone())
    .owns(
        api::<HorizontalPodAutoscaler>(&client, &namespace),
        owned.clone(),
    )
    .owns(api::<ConfigMap>(&client, &namespace), owned)
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx.clone())
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "controller stream");
        }
    })
    .await;
    ctx.dr.stop_all().await;
    ctx.status.clear();
}
