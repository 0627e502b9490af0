//! Disaster-recovery routing: the Route53 weighted records in front of the
//! three targets, and how the watchdog may move their weights (SPEC §4).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Duration;

/// A lower-case DNS name (`tickets.example.com`, optionally with the
/// trailing dot).
const DNS_NAME: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?\.?$";
/// A DNS name or a dotted IPv4 address.
const ENDPOINT: &str = r"^(([0-9]{1,3}\.){3}[0-9]{1,3}|([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?)$";

/// Route53 weighted routing across the primary region and the two DR
/// targets. The operator starts at 100/0/0 (everything to the primary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dr {
    /// Route53 hosted zone that holds recordName (e.g. Z0123456789ABCDEFGHIJ,
    /// without the /hostedzone/ prefix).
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,32}$"))]
    pub hosted_zone_id: String,
    /// The name customers use, e.g. tickets.example.com.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_NAME))]
    pub record_name: String,
    /// TTL of the weighted records in seconds: how long resolvers may keep
    /// sending customers to a target after its weight drops. Keep it short.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl: i32,
    /// The three places customers can be routed to.
    pub targets: DrTargets,
    /// Automatic: the watchdog shifts weights when a target fails its health
    /// probes. Manual: the watchdog only reports; weights stay at 100/0/0 or
    /// at manualOverride.
    #[serde(default)]
    pub mode: DrMode,
    /// Whether traffic returns to the primary by itself once it is healthy
    /// again (Automatic) or only when a person decides (Manual, default).
    #[serde(default)]
    pub failback_policy: FailbackPolicy,
    /// How the watchdog probes the targets' health URLs.
    #[serde(default)]
    pub probe: Probe,
    /// Weights to write as they are, whatever mode says and whatever the
    /// probes see: the on-call's lever. Remove it to hand control back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.primary + self.drEks + self.drEcs > 0")
        .message("manualOverride needs at least one positive weight"))]
    pub manual_override: Option<Weights>,
    /// Seats per slot the DR region leaves unsold while it sells, for what
    /// the primary may have confirmed in its last moments without those
    /// decisions having replicated. Unset: derived at takeover from the
    /// primary's confirmation rate over its last 10 s of replicated
    /// decisions times a 2 s replication lag budget, rounded up (0 if it
    /// sold nothing). The primary always sells every seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub reserve_per_slot: Option<i32>,
}

fn default_ttl() -> i32 {
    60
}

/// The three DR targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrTargets {
    /// The primary region (Seoul EKS).
    pub primary: DrTarget,
    /// The standby cluster (Singapore EKS), possibly still being built when
    /// the primary fails.
    pub dr_eks: DrTarget,
    /// The always-on DR service (Singapore ECS).
    pub dr_ecs: DrTarget,
}

/// One place customers can be routed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrTarget {
    /// What the weighted record points at: a DNS name (a CNAME record, e.g.
    /// a load balancer's name) or an IPv4 address (an A record).
    #[schemars(length(min = 1, max = 253), regex(pattern = ENDPOINT))]
    pub endpoint: String,
    /// URL the watchdog probes; any 2xx answer within the probe timeout
    /// counts as healthy.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+([/?#]\S*)?$")
    )]
    pub health_url: String,
}

/// Route53 weights (0-255) for the three targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    #[schemars(range(min = 0, max = 255))]
    pub primary: i32,
    #[schemars(range(min = 0, max = 255))]
    pub dr_eks: i32,
    #[schemars(range(min = 0, max = 255))]
    pub dr_ecs: i32,
}

impl Weights {
    /// Everything to the primary: where every event starts.
    pub const NORMAL: Self = Self {
        primary: 100,
        dr_eks: 0,
        dr_ecs: 0,
    };
}

/// `Automatic` (default): the watchdog moves weights on failed probes.
/// `Manual`: it only reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DrMode {
    #[default]
    Automatic,
    Manual,
}

/// `Manual` (default): once failed over, traffic returns to the primary
/// only when a person says so. `Automatic`: it returns after the primary
/// stays healthy for probe.minDwell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailbackPolicy {
    #[default]
    Manual,
    Automatic,
}

/// Health probing of the targets and the hysteresis that keeps weights from
/// flapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.timeout) <= duration(self.interval)")
    .message("probe timeout must not exceed the probe interval"))]
pub struct Probe {
    /// Time between two probes of a target, e.g. 10s.
    #[serde(default = "default_interval")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('10m')")
        .message("probe interval must be between 1s and 10m"))]
    pub interval: Duration,
    /// How long one probe may take before it counts as failed.
    #[serde(default = "default_timeout")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('100ms')")
        .message("probe timeout must be at least 100ms"))]
    pub timeout: Duration,
    /// Consecutive failed probes before a target is considered down.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 20))]
    pub failure_threshold: i32,
    /// Consecutive good probes before a target is considered healthy again.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 20))]
    pub success_threshold: i32,
    /// Least time between two weight changes: no flapping.
    #[serde(default = "default_min_dwell")]
    pub min_dwell: Duration,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            failure_threshold: default_threshold(),
            success_threshold: default_threshold(),
            min_dwell: default_min_dwell(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::known("10s")
}

fn default_timeout() -> Duration {
    Duration::known("3s")
}

fn default_threshold() -> i32 {
    3
}

fn default_min_dwell() -> Duration {
    Duration::known("5m")
}
