//! What the operator reports back on a TicketEvent.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Weights;
use twinkle_domain::Window;

/// Observed state of a TicketEvent, written only by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketEventStatus {
    /// The metadata.generation the rest of this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One word summary for `kubectl get`; the conditions say why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Where the event stands in its sale window (Idle, PreScaled, Open,
    /// Closed); replicas are raised from PreScaled and released at Closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// When window changes next; the operator requeues for that instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window_change: Option<Timestamp>,
    /// Ready, TopicsReady, WorkloadsReady and DnsReady, in the standard
    /// Kubernetes shape (`kubectl wait --for=condition=Ready` works).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The replicas and partitions the operator planned from the forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<SizingStatus>,
    /// Disaster-recovery routing as last written to Route53.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr: Option<DrStatus>,
}

/// A TicketEvent's phase. The conditions carry the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Seen, nothing created yet.
    Pending,
    /// Topics, workloads or DNS records are being created or changed.
    Provisioning,
    /// Everything the event needs is in place.
    Ready,
    /// Something that was ready no longer is (see conditions).
    Degraded,
    /// Being deleted; the finalizer is cleaning up.
    Deleting,
}

/// Condition types the operator maintains on every TicketEvent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    /// All of the others are true.
    Ready,
    /// The queue, bookings and outcomes topics exist with their partitions.
    TopicsReady,
    /// Every Deployment has its planned replicas available.
    WorkloadsReady,
    /// The Route53 weighted records are written and in sync.
    DnsReady,
}

impl ConditionType {
    pub const ALL: [Self; 4] = [
        Self::Ready,
        Self::TopicsReady,
        Self::WorkloadsReady,
        Self::DnsReady,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::TopicsReady => "TopicsReady",
            Self::WorkloadsReady => "WorkloadsReady",
            Self::DnsReady => "DnsReady",
        }
    }
}

/// Planned replicas per workload and partitions per topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SizingStatus {
    pub queue_api: i32,
    pub booking_api: i32,
    pub queue_consumer: i32,
    pub booking_consumer: i32,
    /// Partitions of each of the event's topics.
    pub partitions: i32,
    /// The per-pod capacity the sizing used (override or default).
    pub per_pod_rps: i32,
    /// The four replica counts as `queueApi/bookingApi/queueConsumer/
    /// bookingConsumer`, for `kubectl get`.
    pub summary: String,
}

/// Disaster-recovery routing as last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrStatus {
    /// The routing state, in the DR state machine's vocabulary: normal,
    /// drEcsOnly, drSplit, drEks, or an override (overridePrimary,
    /// overrideDrEks, overrideDrEcs).
    pub state: String,
    /// The weights currently in Route53.
    pub weights: Weights,
    /// When the routing last changed (the last transition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Why it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who holds the Route53 TXT lease, and so may write the weights (this
    /// operator's in-cluster watchdog or a standalone one), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// The last routing transition the watchdog made while holding the
    /// lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition: Option<DrTransitionStatus>,
    /// Each target's health as the watchdog's probes judge it (after the
    /// failure and success thresholds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<DrHealthStatus>,
    /// Conditions a person should look at, e.g. noHealthyTarget (every
    /// target down: the last weights are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// The target the operator pinned traffic on because of
    /// spec.dr.manualOverride or mode Manual; the pin is cleared when they
    /// are removed. Pins made with `twinkle-operator dr failover` are not
    /// listed here and never cleared by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_by_spec: Option<DrTargetName>,
}

/// One routing transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrTransitionStatus {
    /// When the operator saw it happen.
    pub time: Timestamp,
    /// Machine-readable cause, e.g. TargetDown, DrEksHealthy,
    /// OperatorFailover.
    pub reason: String,
    /// Weights and cause, e.g. "100/0/0 → 0/0/100: primary down, DR EKS not
    /// ready".
    pub message: String,
    /// The routing state before.
    pub from: String,
    /// The routing state after.
    pub to: String,
    /// Caused by an override or command rather than by health or time.
    #[serde(default)]
    pub manual: bool,
}

/// A target's health per the watchdog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DrHealth {
    /// Not enough consecutive probes either way yet.
    #[default]
    Unknown,
    Up,
    Down,
}

/// Health of the three targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrHealthStatus {
    pub primary: DrHealth,
    pub dr_eks: DrHealth,
    pub dr_ecs: DrHealth,
}

/// One of the three DR targets, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DrTargetName {
    Primary,
    DrEks,
    DrEcs,
}
