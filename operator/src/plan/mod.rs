//! `twinkle-operator plan`: what the controller would create for a
//! TicketEvent, computed offline from the manifest alone.
//!
//! Names chosen here are the ones the controller will use:
//! * topics `<namespace>.<name>.queue`, `.bookings`, `.outcomes`, `.journal` (the
//!   namespace keeps two teams' `summer-sale` apart on a shared cluster;
//!   both parts are DNS labels, so topic names are legal and never mix `.`
//!   with `_`, which Kafka's metric names would conflate);
//! * Deployments `<name>-queue-api`, `-booking-api`, `-queue-consumer`,
//!   `-booking-consumer`;
//! * Route53 set identifiers `primary`, `dr-eks`, `dr-ecs`.

mod manifest;
mod render;

use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::Serialize;

pub use manifest::load;
pub use render::table;

use crate::{
    Error, Result,
    crd::{DeletionPolicy, DrMode, FailbackPolicy, Partitions, TicketEvent, Weights},
    sizing::{
        self, PartitionReason, PartitionRequest, PerPodSource, ReplicaReason, Sizing, SizingInput,
        Window, WindowState, Workload,
    },
};

/// The four topics of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TopicRole {
    /// Entries to the waiting room, keyed by queue id.
    Queue,
    /// Booking requests from admitted customers.
    Bookings,
    /// Decided bookings, pushed back to customers.
    Outcomes,
    /// The queue keeper's journal: places, the draw, admissions.
    Journal,
}

impl TopicRole {
    pub const ALL: [Self; 4] = [Self::Queue, Self::Bookings, Self::Outcomes, Self::Journal];

    pub fn suffix(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Bookings => "bookings",
            Self::Outcomes => "outcomes",
            Self::Journal => "journal",
        }
    }

    /// A log the workloads replay their truth from (sold seats, places):
    /// kept forever, whatever the spec's retention.
    pub fn is_truth(self) -> bool {
        matches!(self, Self::Outcomes | Self::Journal)
    }
}

/// The prefix of an event's topics and consumer groups (the workloads'
/// `--topic-prefix`).
pub fn topic_prefix(namespace: &str, event: &str) -> String {
    format!("{namespace}.{event}")
}

/// The Kafka topic name of an event's topic.
pub fn topic_name(namespace: &str, event: &str, role: TopicRole) -> String {
    format!("{}.{}", topic_prefix(namespace, event), role.suffix())
}

/// The Deployment (and Service) name of an event's workload.
pub fn workload_name(event: &str, workload: Workload) -> String {
    format!("{event}-{}", workload.name())
}

/// Everything the controller would create for one TicketEvent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub namespace: String,
    pub name: String,
    pub title: String,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    /// The instant the window below was evaluated at.
    pub at: Timestamp,
    #[serde(flatten)]
    pub window: WindowState,
    pub expected_peak_rps: u64,
    pub headroom_percent: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub sizing: Sizing,
    pub topics: Vec<TopicPlan>,
    pub workloads: Vec<WorkloadPlan>,
    /// `None` when the TicketEvent configures no DR routing.
    pub dr: Option<DrPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicPlan {
    pub role: TopicRole,
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    /// retention.ms of the topic; `None`: kept forever (`-1`).
    pub retention_ms: Option<u64>,
    /// As written in the TicketEvent (`168h`), or `forever`.
    pub retention: String,
    pub deletion_policy: DeletionPolicy,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPlan {
    pub workload: Workload,
    pub deployment: String,
    /// Replicas from PreScaled until Closed.
    pub peak_replicas: u32,
    /// Replicas outside the window.
    pub baseline_replicas: u32,
    /// Replicas at [`Plan::at`].
    pub replicas_now: u32,
    pub reason: ReplicaReason,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrPlan {
    pub hosted_zone_id: String,
    pub record_name: String,
    pub ttl: u32,
    pub mode: DrMode,
    pub failback_policy: FailbackPolicy,
    /// Whether the weights are the starting 100/0/0 or the manual override.
    pub weights_from: WeightsFrom,
    pub records: Vec<DrRecordPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WeightsFrom {
    Initial,
    ManualOverride,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrRecordPlan {
    pub set_identifier: &'static str,
    pub record_type: RecordType,
    pub endpoint: String,
    pub weight: u32,
    pub health_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordType {
    A,
    #[serde(rename = "CNAME")]
    Cname,
}

fn non_negative<T: TryFrom<i32>>(value: i32, field: &str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::InvalidSpec(format!("{field} must not be negative")))
}

impl Plan {
    /// The plan for `event` at instant `at`. `default_namespace` applies
    /// when the manifest names none (as kubectl would apply it).
    pub fn new(event: &TicketEvent, default_namespace: &str, at: Timestamp) -> Result<Self> {
        let spec = &event.spec;
        let name = event
            .metadata
            .name
            .clone()
            .ok_or_else(|| Error::InvalidSpec("metadata.name is missing".into()))?;
        let namespace = event
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_owned());
        if spec.closes_at <= spec.opens_at {
            return Err(Error::InvalidSpec("closesAt must be after opensAt".into()));
        }
        let traffic = &spec.traffic;
        let input = SizingInput {
            expected_peak_rps: non_negative(traffic.expected_peak_rps, "expectedPeakRps")?,
            per_pod_rps: traffic
                .per_pod_rps
                .map(|rps| non_negative(rps, "perPodRps"))
                .transpose()?,
            headroom_percent: non_negative(traffic.headroom_percent, "headroomPercent")?,
            min_replicas: non_negative(traffic.min_replicas, "minReplicas")?,
            max_replicas: non_negative(traffic.max_replicas, "maxReplicas")?,
            partitions: match spec.kafka.partitions {
                Partitions::Auto => PartitionRequest::Auto,
                Partitions::Count(n) => PartitionRequest::Fixed(non_negative(n, "partitions")?),
            },
        };
        let sizing = sizing::size(&input)?;
        let window = sizing::window_at(
            at,
            spec.opens_at,
            spec.closes_at,
            traffic.pre_scale_lead.get(),
        );

        let topics = TopicRole::ALL
            .into_iter()
            .map(|role| {
                Ok(TopicPlan {
                    role,
                    name: topic_name(&namespace, &name, role),
                    // The journal's one partition is the order of places.
                    partitions: if role == TopicRole::Journal {
                        1
                    } else {
                        sizing.partitions.count
                    },
                    replication_factor: non_negative(
                        spec.kafka.replication_factor,
                        "replicationFactor",
                    )?,
                    // The outcomes log and the queue journal are the
                    // truth the decider and the keeper replay: deleting
                    // old records would give sold seats back and take
                    // places away. The spec's retention applies to the
                    // logs that are consumed and done with.
                    retention_ms: (!role.is_truth()).then(|| {
                        u64::try_from(spec.kafka.retention.get().as_millis()).unwrap_or(u64::MAX)
                    }),
                    retention: if role.is_truth() {
                        "forever".to_owned()
                    } else {
                        spec.kafka.retention.to_string()
                    },
                    deletion_policy: spec.kafka.deletion_policy,
                    why: partitions_why(&sizing, &input),
                })
            })
            .collect::<Result<_>>()?;

        let workloads = sizing
            .workloads
            .iter()
            .map(|w| WorkloadPlan {
                workload: w.workload,
                deployment: workload_name(&name, w.workload),
                peak_replicas: w.replicas,
                baseline_replicas: w.baseline,
                replicas_now: if window.window.is_scaled() {
                    w.replicas
                } else {
                    w.baseline
                },
                reason: w.reason,
                why: replicas_why(w.reason, &sizing, &input),
            })
            .collect();

        let dr = spec.dr.as_ref().map(|dr| {
            let (weights, weights_from) = match dr.manual_override {
                Some(weights) => (weights, WeightsFrom::ManualOverride),
                None => (Weights::NORMAL, WeightsFrom::Initial),
            };
            let targets = &dr.targets;
            let record =
                |set_identifier, target: &crate::crd::DrTarget, weight: i32| DrRecordPlan {
                    set_identifier,
                    record_type: if target.endpoint.parse::<Ipv4Addr>().is_ok() {
                        RecordType::A
                    } else {
                        RecordType::Cname
                    },
                    endpoint: target.endpoint.clone(),
                    weight: u32::try_from(weight).unwrap_or(0),
                    health_url: target.health_url.clone(),
                };
            DrPlan {
                hosted_zone_id: dr.hosted_zone_id.clone(),
                record_name: dr.record_name.clone(),
                ttl: u32::try_from(dr.ttl).unwrap_or(0),
                mode: dr.mode,
                failback_policy: dr.failback_policy,
                weights_from,
                records: vec![
                    record("primary", &targets.primary, weights.primary),
                    record("dr-eks", &targets.dr_eks, weights.dr_eks),
                    record("dr-ecs", &targets.dr_ecs, weights.dr_ecs),
                ],
            }
        });

        Ok(Self {
            namespace,
            name,
            title: spec.title.clone(),
            opens_at: spec.opens_at,
            closes_at: spec.closes_at,
            at,
            window,
            expected_peak_rps: input.expected_peak_rps,
            headroom_percent: input.headroom_percent,
            min_replicas: input.min_replicas,
            max_replicas: input.max_replicas,
            sizing,
            topics,
            workloads,
            dr,
        })
    }

    /// The window the plan was evaluated in.
    pub fn window(&self) -> Window {
        self.window.window
    }
}

/// The forecast formula with the event's numbers.
fn forecast_formula(sizing: &Sizing, input: &SizingInput) -> String {
    let source = match sizing.per_pod_source {
        PerPodSource::Default => "default",
        PerPodSource::Override => "perPodRps",
    };
    format!(
        "ceil({} rps × {}% / {} rps per pod ({source})) = {}",
        input.expected_peak_rps,
        100 + u64::from(input.headroom_percent),
        sizing.per_pod_rps,
        sizing.forecast
    )
}

fn replicas_why(reason: ReplicaReason, sizing: &Sizing, input: &SizingInput) -> String {
    let forecast = sizing.forecast;
    match reason {
        ReplicaReason::Forecast => forecast_formula(sizing, input),
        ReplicaReason::RaisedToMin => {
            format!(
                "forecast {forecast} raised to minReplicas {}",
                input.min_replicas
            )
        }
        ReplicaReason::ClampedByMax => {
            format!(
                "forecast {forecast} clamped to maxReplicas {}",
                input.max_replicas
            )
        }
        ReplicaReason::ClampedByPartitions => format!(
            "clamped to {} partitions (a consumer beyond them would idle)",
            sizing.partitions.count
        ),
    }
}

fn partitions_why(sizing: &Sizing, input: &SizingInput) -> String {
    let bounded = forecast_within_bounds(sizing.forecast, input);
    match sizing.partitions.reason {
        PartitionReason::AutoFromReplicas => {
            format!("auto: one per consumer replica ({bounded})")
        }
        PartitionReason::AutoFloor => format!(
            "auto: floor of {} (consumers need {bounded})",
            sizing::AUTO_PARTITIONS_FLOOR
        ),
        PartitionReason::Fixed => "spec.kafka.partitions".into(),
    }
}

fn forecast_within_bounds(forecast: u64, input: &SizingInput) -> u64 {
    forecast.clamp(u64::from(input.min_replicas), u64::from(input.max_replicas))
}

#[cfg(test)]
mod tests;
