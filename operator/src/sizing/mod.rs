//! Sizing: from a traffic forecast to replicas and partitions, and from the
//! clock to the sale window. Pure arithmetic on plain numbers and instants,
//! no Kubernetes types, so every rule is unit-tested with exact numbers.

pub mod capacity;
mod replicas;
mod window;

pub use capacity::DEFAULT_PER_POD_RPS;
pub use replicas::{
    AUTO_PARTITIONS_FLOOR, PartitionReason, PartitionRequest, PartitionSizing, PerPodSource,
    ReplicaReason, Sizing, SizingInput, Workload, WorkloadSizing, size,
};
pub use window::{Window, WindowState, window_at};
