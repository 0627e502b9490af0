//! The `TicketEvent` resource: one sale, everything it needs.

use jiff::Timestamp;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Dr, Kafka, Queue, SecretKeyRef, TicketEventStatus, Traffic};

/// Longest TicketEvent name: Deployments, Services (`<name>-booking-api`)
/// and Kafka topics are named after it and must stay within DNS-label and
/// topic-name limits.
pub const MAX_NAME_LENGTH: usize = 40;

/// A ticket sale with an opening rush: its slots and sale window, the
/// traffic forecast, the waiting room, and where its Kafka topics, Redis
/// state and DNS records live. The operator turns it into topics,
/// right-sized workloads and Route53 weighted records.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "ticket.twinkle.dev",
    version = "v1alpha1",
    kind = "TicketEvent",
    namespaced,
    shortname = "te",
    status = "TicketEventStatus",
    derive = "PartialEq",
    doc = "A ticket sale with an opening rush, turned by the Twinkle Ticket operator into Kafka topics, right-sized workloads and Route53 weighted records.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Provisioning, Ready, Degraded or Deleting"
    ),
    printcolumn(
        name = "Peak RPS",
        type_ = "integer",
        json_path = ".spec.traffic.expectedPeakRps",
        description = "Forecast peak requests per second"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".status.sizing.summary",
        description = "Planned replicas: queue-api/booking-api/queue-consumer/booking-consumer"
    ),
    printcolumn(
        name = "DR State",
        type_ = "string",
        json_path = ".status.dr.state",
        description = "Disaster-recovery routing state"
    ),
    printcolumn(
        name = "Window",
        type_ = "string",
        json_path = ".status.window",
        description = "Idle, PreScaled, Open or Closed",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(format!(
        "self.metadata.name.size() <= {MAX_NAME_LENGTH} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ))
    .message(format!(
        "metadata.name must be a DNS label of at most {MAX_NAME_LENGTH} characters starting with a letter: workloads, Services and Kafka topics are named after it"
    ).as_str()),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.closesAt > self.opensAt")
    .message("closesAt must be after opensAt")
    .field_path(".closesAt"))]
// Partitions below 1 are the partitions rule's to report, not this one's.
#[x_kube(validation = Rule::new("type(self.kafka.partitions) != int || self.kafka.partitions < 1 || self.kafka.partitions >= self.traffic.minReplicas")
    .message("kafka.partitions must be at least traffic.minReplicas: a consumer beyond the partition count would sit idle")
    .field_path(".kafka.partitions"))]
pub struct TicketEventSpec {
    /// Shown to customers on the entry page and the waiting screen.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// When booking opens (RFC 3339, e.g. 2026-12-01T10:00:00+09:00). The
    /// waiting room admits no one before.
    pub opens_at: Timestamp,
    /// When booking closes (RFC 3339); after it the workloads scale back down.
    pub closes_at: Timestamp,
    /// The bookable slots, keyed by id.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["id".into()]))]
    pub slots: Vec<Slot>,
    /// Confirmed bookings one customer (queue id) may hold.
    #[schemars(range(min = 1, max = 100))]
    pub per_customer_limit: i32,
    /// Traffic forecast and replica bounds.
    pub traffic: Traffic,
    /// Waiting-room settings.
    pub queue: Queue,
    /// Kafka cluster and topic settings.
    pub kafka: Kafka,
    /// Redis holding the live queue and booking state.
    pub redis: Redis,
    /// Route53 disaster-recovery routing. Unset: the operator manages no DNS
    /// records (DnsReady reports NotConfigured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr: Option<Dr>,
}

/// A bookable time slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Stable id, used in URLs and Redis keys (e.g. s1000).
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub id: String,
    /// What customers see (e.g. "10:00 - 11:00").
    #[schemars(length(min = 1, max = 100))]
    pub label: String,
    /// Seats in the slot; never oversold.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub capacity: i32,
}

/// Where the workloads find Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redis {
    /// A Secret key holding the Redis URL (redis:// or rediss://, password
    /// included).
    pub secret_ref: SecretKeyRef,
}
