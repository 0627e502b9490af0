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
    /// The watchdog's state (Normal, Failover, ...; the DR state machine
    /// owns the vocabulary).
    pub state: String,
    /// The weights currently in Route53.
    pub weights: Weights,
    /// When the weights last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Why they last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
