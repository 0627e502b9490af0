//! Replicas per workload and partitions per topic from the forecast.
//!
//! replicas = ceil(expectedPeakRps × (1 + headroom) / perPodRps), clamped to
//! [minReplicas, maxReplicas]; consumers are also clamped to the partition
//! count, because a consumer group member beyond the partition count gets
//! no partition and sits idle. The APIs only produce to Kafka, so the
//! partition count does not limit them: clamping them would under-provision
//! the enter endpoint for nothing. `auto` partitions are chosen so that they
//! never clamp: max(consumer replicas, [`AUTO_PARTITIONS_FLOOR`]).

use serde::Serialize;

use super::capacity::DEFAULT_PER_POD_RPS;
use crate::{Error, Result};

/// Fewest partitions `auto` gives a topic: room for the consumers to grow
/// (partitions can be added later but never removed) without planning
/// hundreds for a small event.
pub const AUTO_PARTITIONS_FLOOR: u32 = 6;

/// The four workloads the operator deploys per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    QueueApi,
    BookingApi,
    QueueConsumer,
    BookingConsumer,
}

impl Workload {
    pub const ALL: [Self; 4] = [
        Self::QueueApi,
        Self::BookingApi,
        Self::QueueConsumer,
        Self::BookingConsumer,
    ];

    /// Name suffix of the workload's Deployment (`<event>-queue-api`).
    pub fn name(self) -> &'static str {
        match self {
            Self::QueueApi => "queue-api",
            Self::BookingApi => "booking-api",
            Self::QueueConsumer => "queue-consumer",
            Self::BookingConsumer => "booking-consumer",
        }
    }

    /// Consumers read partitions; the APIs only write to topics.
    pub fn is_consumer(self) -> bool {
        matches!(self, Self::QueueConsumer | Self::BookingConsumer)
    }
}

/// Partitions asked for by the TicketEvent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionRequest {
    Auto,
    Fixed(u32),
}

/// The numbers sizing works from, already validated by the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizingInput {
    pub expected_peak_rps: u64,
    /// `None`: [`DEFAULT_PER_POD_RPS`].
    pub per_pod_rps: Option<u64>,
    /// 30 means 30 % above the forecast.
    pub headroom_percent: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub partitions: PartitionRequest,
}

/// Where the per-pod capacity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PerPodSource {
    /// [`DEFAULT_PER_POD_RPS`].
    Default,
    /// The TicketEvent's `perPodRps`.
    Override,
}

/// Why a workload gets the replicas it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplicaReason {
    /// The forecast, within bounds.
    Forecast,
    /// The forecast needs fewer than minReplicas.
    RaisedToMin,
    /// The forecast needs more than maxReplicas.
    ClampedByMax,
    /// A consumer beyond the partition count would sit idle.
    ClampedByPartitions,
}

/// Replicas of one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSizing {
    pub workload: Workload,
    /// Replicas from PreScaled until Closed.
    pub replicas: u32,
    /// Replicas outside the sale window (minReplicas, clamped the same way).
    pub baseline: u32,
    pub reason: ReplicaReason,
}

/// Why topics get the partitions they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PartitionReason {
    /// `auto`: one per consumer replica at the peak.
    AutoFromReplicas,
    /// `auto`: the floor, more than the consumers need.
    AutoFloor,
    /// The TicketEvent's number.
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionSizing {
    pub count: u32,
    pub reason: PartitionReason,
}

/// The sizing of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sizing {
    pub per_pod_rps: u64,
    pub per_pod_source: PerPodSource,
    /// ceil(expectedPeakRps × (100 + headroom%) / (100 × perPodRps)): the
    /// pods the forecast needs before any bound applies.
    pub forecast: u64,
    pub partitions: PartitionSizing,
    /// One entry per [`Workload::ALL`], in that order.
    pub workloads: Vec<WorkloadSizing>,
}

impl Sizing {
    pub fn workload(&self, workload: Workload) -> Option<&WorkloadSizing> {
        self.workloads.iter().find(|w| w.workload == workload)
    }
}

/// Sizes an event. Integer arithmetic throughout (headroom is a whole
/// percentage), so 50 000 RPS at 30 % over 2 500 is exactly 26, not 27.
pub fn size(input: &SizingInput) -> Result<Sizing> {
    let invalid = |msg: String| Err(Error::InvalidSpec(msg));
    if input.min_replicas == 0 {
        return invalid("minReplicas must be at least 1".into());
    }
    if input.min_replicas > input.max_replicas {
        return invalid(format!(
            "minReplicas ({}) must not exceed maxReplicas ({})",
            input.min_replicas, input.max_replicas
        ));
    }
    if input.partitions == PartitionRequest::Fixed(0) {
        return invalid("partitions must be at least 1".into());
    }
    let (per_pod_rps, per_pod_source) = match input.per_pod_rps {
        Some(0) => return invalid("perPodRps must be at least 1".into()),
        Some(rps) => (rps, PerPodSource::Override),
        None => (DEFAULT_PER_POD_RPS, PerPodSource::Default),
    };

    let numerator =
        u128::from(input.expected_peak_rps) * (100 + u128::from(input.headroom_percent));
    let forecast_wide = numerator.div_ceil(100 * u128::from(per_pod_rps));
    let forecast = u64::try_from(forecast_wide).unwrap_or(u64::MAX);

    let (bounded, bound_reason) = if forecast < u64::from(input.min_replicas) {
        (input.min_replicas, ReplicaReason::RaisedToMin)
    } else if forecast > u64::from(input.max_replicas) {
        (input.max_replicas, ReplicaReason::ClampedByMax)
    } else {
        // forecast ≤ max_replicas, a u32.
        (
            u32::try_from(forecast).unwrap_or(input.max_replicas),
            ReplicaReason::Forecast,
        )
    };

    let partitions = match input.partitions {
        PartitionRequest::Fixed(count) => PartitionSizing {
            count,
            reason: PartitionReason::Fixed,
        },
        PartitionRequest::Auto if bounded > AUTO_PARTITIONS_FLOOR => PartitionSizing {
            count: bounded,
            reason: PartitionReason::AutoFromReplicas,
        },
        PartitionRequest::Auto => PartitionSizing {
            count: AUTO_PARTITIONS_FLOOR,
            reason: PartitionReason::AutoFloor,
        },
    };

    let workloads = Workload::ALL
        .into_iter()
        .map(|workload| {
            let clamp = |replicas: u32| {
                if workload.is_consumer() {
                    replicas.min(partitions.count)
                } else {
                    replicas
                }
            };
            let replicas = clamp(bounded);
            let reason = if replicas < bounded {
                ReplicaReason::ClampedByPartitions
            } else {
                bound_reason
            };
            WorkloadSizing {
                workload,
                replicas,
                baseline: clamp(input.min_replicas),
                reason,
            }
        })
        .collect();

    Ok(Sizing {
        per_pod_rps,
        per_pod_source,
        forecast,
        partitions,
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event with an explicit per-pod rate of 2 500, so the arithmetic
    /// tests do not move when the measured default does.
    fn input(expected_peak_rps: u64) -> SizingInput {
        SizingInput {
            expected_peak_rps,
            per_pod_rps: Some(2500),
            headroom_percent: 30,
            min_replicas: 2,
            max_replicas: 40,
            partitions: PartitionRequest::Auto,
        }
    }

    fn replicas(sizing: &Sizing) -> Vec<(u32, ReplicaReason)> {
        sizing
            .workloads
            .iter()
            .map(|w| (w.replicas, w.reason))
            .collect()
    }

    #[test]
    fn fifty_thousand_rps_with_the_measured_default() {
        // 50 000 × 1.3 / 4 970 = 13.08 → 14 pods of one core each.
        assert_eq!(DEFAULT_PER_POD_RPS, 4970);
        let s = size(&SizingInput {
            per_pod_rps: None,
            ..input(50_000)
        })
        .unwrap();
        assert_eq!(s.per_pod_rps, DEFAULT_PER_POD_RPS);
        assert_eq!(s.per_pod_source, PerPodSource::Default);
        assert_eq!(s.forecast, 14);
        assert_eq!(replicas(&s), vec![(14, ReplicaReason::Forecast); 4]);
    }

    #[test]
    fn fifty_thousand_rps_with_thirty_percent_headroom() {
        // 50 000 × 1.3 / 2 500 = 26 exactly: no float rounding up to 27.
        let s = size(&input(50_000)).unwrap();
        assert_eq!(s.per_pod_rps, 2500);
        assert_eq!(s.per_pod_source, PerPodSource::Override);
        assert_eq!(s.forecast, 26);
        assert_eq!(
            s.partitions,
            PartitionSizing {
                count: 26,
                reason: PartitionReason::AutoFromReplicas
            }
        );
        assert_eq!(replicas(&s), vec![(26, ReplicaReason::Forecast); 4]);
        assert!(s.workloads.iter().all(|w| w.baseline == 2));
    }

    #[test]
    fn rounds_up_a_partial_pod() {
        // 50 001 × 1.3 = 65 001.3 → 26.00052 pods → 27.
        assert_eq!(size(&input(50_001)).unwrap().forecast, 27);
    }

    #[test]
    fn zero_headroom_is_the_bare_forecast() {
        let s = size(&SizingInput {
            headroom_percent: 0,
            ..input(50_000)
        })
        .unwrap();
        assert_eq!(s.forecast, 20);
        assert_eq!(replicas(&s), vec![(20, ReplicaReason::Forecast); 4]);
        assert_eq!(s.partitions.count, 20);
    }

    #[test]
    fn small_event_is_raised_to_min_and_gets_the_partition_floor() {
        let s = size(&input(1_000)).unwrap();
        // 1 000 × 1.3 / 2 500 = 0.52 → 1, below minReplicas 2.
        assert_eq!(s.forecast, 1);
        assert_eq!(replicas(&s), vec![(2, ReplicaReason::RaisedToMin); 4]);
        assert_eq!(
            s.partitions,
            PartitionSizing {
                count: 6,
                reason: PartitionReason::AutoFloor
            }
        );
    }

    #[test]
    fn huge_rps_is_clamped_by_max() {
        let s = size(&input(10_000_000)).unwrap();
        // 10 000 000 × 1.3 / 2 500 = 5 200 pods wanted, 40 allowed.
        assert_eq!(s.forecast, 5200);
        assert_eq!(replicas(&s), vec![(40, ReplicaReason::ClampedByMax); 4]);
        assert_eq!(s.partitions.count, 40);
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        let s = size(&SizingInput {
            expected_peak_rps: u64::MAX,
            headroom_percent: u32::MAX,
            per_pod_rps: Some(1),
            max_replicas: u32::MAX,
            ..input(0)
        })
        .unwrap();
        assert_eq!(s.forecast, u64::MAX);
        assert_eq!(s.workloads[0].replicas, u32::MAX);
    }

    #[test]
    fn per_pod_override_replaces_the_default() {
        let s = size(&SizingInput {
            per_pod_rps: Some(500),
            max_replicas: 200,
            ..input(50_000)
        })
        .unwrap();
        // The original design's 500 RPS per pod: 50 000 × 1.3 / 500 = 130.
        assert_eq!(s.per_pod_rps, 500);
        assert_eq!(s.per_pod_source, PerPodSource::Override);
        assert_eq!(s.forecast, 130);
        assert_eq!(replicas(&s), vec![(130, ReplicaReason::Forecast); 4]);
    }

    #[test]
    fn fixed_partitions_clamp_consumers_only() {
        let s = size(&SizingInput {
            partitions: PartitionRequest::Fixed(12),
            ..input(50_000)
        })
        .unwrap();
        assert_eq!(
            s.partitions,
            PartitionSizing {
                count: 12,
                reason: PartitionReason::Fixed
            }
        );
        assert_eq!(
            replicas(&s),
            vec![
                (26, ReplicaReason::Forecast),
                (26, ReplicaReason::Forecast),
                (12, ReplicaReason::ClampedByPartitions),
                (12, ReplicaReason::ClampedByPartitions),
            ]
        );
        let consumer = s.workload(Workload::QueueConsumer).unwrap();
        assert_eq!(consumer.baseline, 2);
    }

    #[test]
    fn fixed_partitions_above_the_need_do_not_clamp() {
        let s = size(&SizingInput {
            partitions: PartitionRequest::Fixed(64),
            ..input(50_000)
        })
        .unwrap();
        assert_eq!(s.partitions.count, 64);
        assert_eq!(replicas(&s), vec![(26, ReplicaReason::Forecast); 4]);
    }

    #[test]
    fn partitions_below_min_replicas_clamp_the_baseline_too() {
        let s = size(&SizingInput {
            min_replicas: 4,
            partitions: PartitionRequest::Fixed(3),
            ..input(1_000)
        })
        .unwrap();
        let consumer = s.workload(Workload::BookingConsumer).unwrap();
        assert_eq!((consumer.replicas, consumer.baseline), (3, 3));
        assert_eq!(consumer.reason, ReplicaReason::ClampedByPartitions);
        let api = s.workload(Workload::BookingApi).unwrap();
        assert_eq!((api.replicas, api.baseline), (4, 4));
        assert_eq!(api.reason, ReplicaReason::RaisedToMin);
    }

    #[test]
    fn refuses_inconsistent_bounds() {
        let err = |i: SizingInput| size(&i).unwrap_err().to_string();
        assert!(
            err(SizingInput {
                min_replicas: 5,
                max_replicas: 4,
                ..input(1)
            })
            .contains("must not exceed maxReplicas")
        );
        assert!(
            err(SizingInput {
                per_pod_rps: Some(0),
                ..input(1)
            })
            .contains("perPodRps")
        );
        assert!(
            err(SizingInput {
                partitions: PartitionRequest::Fixed(0),
                ..input(1)
            })
            .contains("partitions")
        );
        assert!(
            err(SizingInput {
                min_replicas: 0,
                ..input(1)
            })
            .contains("minReplicas")
        );
    }
}
