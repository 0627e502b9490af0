//! The traffic forecast the operator sizes workloads and partitions from.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::Duration;

/// The traffic forecast for the opening rush and the bounds the operator
/// sizes within.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not exceed maxReplicas")
    .field_path(".minReplicas"))]
pub struct Traffic {
    /// Forecast peak of requests per second arriving at the opening (the
    /// "book" rush), across all customers.
    #[schemars(range(min = 1, max = 10_000_000))]
    pub expected_peak_rps: i32,
    /// Requests per second one pod sustains. Leave unset to use the
    /// operator's default, which comes from the project's measured benchmark;
    /// set it only with a measurement of your own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub per_pod_rps: Option<i32>,
    /// Extra capacity on top of the forecast, in whole percent: 30 plans for
    /// 30 % more requests than expectedPeakRps. A percentage, not a fraction,
    /// so "0.3" cannot be mistaken for 30 % (the API server refuses it).
    #[serde(default = "default_headroom_percent")]
    #[schemars(range(min = 0, max = 1000))]
    pub headroom_percent: i32,
    /// Fewest replicas of each workload, also outside the sale window.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most replicas of each workload the forecast may ask for: the cost cap.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// How long before opensAt the forecast replicas must be running (pods
    /// need time to be scheduled, pull images and warm up); e.g. 15m.
    #[serde(default = "default_pre_scale_lead")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')")
        .message("preScaleLead must be at most 24h"))]
    pub pre_scale_lead: Duration,
}

fn default_headroom_percent() -> i32 {
    30
}

fn default_min_replicas() -> i32 {
    2
}

fn default_pre_scale_lead() -> Duration {
    Duration::known("15m")
}
