//! The virtual waiting room's settings.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Duration;

/// How the waiting room admits customers to the booking page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// Customers admitted per second: the speed of the serving counter. Keep
    /// it within what the booking pipeline sustains.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub admission_per_second: i32,
    /// Most admitted customers holding a booking session at once; admission
    /// pauses at this cap and resumes as sessions end.
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_active_sessions: i32,
    /// How long an admitted session (and its admission token) lasts, e.g.
    /// 10m. Between 30s and 24h.
    #[x_kube(validation = Rule::new("duration(self) >= duration('30s') && duration(self) <= duration('24h')")
        .message("sessionTtl must be between 30s and 24h"))]
    pub session_ttl: Duration,
    /// A session whose page sends no heartbeat for this long is abandoned
    /// and its capacity reused. Unset: the workloads' default (30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5s') && duration(self) <= duration('1h')")
        .message("heartbeatTimeout must be between 5s and 1h"))]
    pub heartbeat_timeout: Option<Duration>,
    /// Order of the customers who entered before opensAt.
    #[serde(default)]
    pub opening_mode: OpeningMode,
    /// How long before opensAt the waiting room accepts entries. Unset: the
    /// workloads' default (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')")
        .message("preQueueWindow must be at most 24h"))]
    pub pre_queue_window: Option<Duration>,
}

/// Order of the customers who entered before opening. `fifo`: strict
/// arrival order, pre-queue included. `shuffleAtOpen`: everyone who entered
/// in the pre-queue window is ordered randomly once at opening (refreshing
/// at 09:59:59.9 buys nothing); later arrivals queue behind them in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OpeningMode {
    #[default]
    Fifo,
    ShuffleAtOpen,
}
