//! Twinkle Ticket operator: the `TicketEvent` custom resource, the sizing
//! rules that turn a forecast into replicas and partitions, and the offline
//! `plan` that shows what the controller would create.
//!
//! The controller (topics, the four workloads, status, finalizer, and the
//! in-cluster DR watchdog of events with a `dr` section) is in
//! [`controller`]; sizing and plan are pure, so they are testable without a
//! cluster. `dr_cli` runs the same watchdog standalone (ECS).
#![forbid(unsafe_code)]

/// The TicketEvent types live in `twinkle-crd` (the workloads read them
/// too); re-exported so `crate::crd::...` paths stay as they were.
pub use twinkle_crd as crd;
pub mod controller;
pub mod dr_cli;
pub mod plan;
pub mod sizing;

use std::path::PathBuf;

/// Errors of the operator crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a TicketEvent manifest: {source}")]
    Manifest {
        path: PathBuf,
        source: yaml_serde::Error,
    },
    #[error("{path} is a {found}, expected {expected}")]
    WrongKind {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// The spec breaks a rule the API server would have refused it for; only
    /// reachable for manifests that never went through `kubectl apply`.
    #[error("invalid TicketEvent: {0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Crd(#[from] twinkle_crd::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Kafka failed in a way the reconcile cannot report as a condition.
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("leader election lease {0}")]
    Lease(String),
    #[error("cannot serialize {what}: {source}")]
    Yaml {
        what: &'static str,
        source: yaml_serde::Error,
    },
    #[error("cannot serialize {what}: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl Error {
    /// A short label for metrics (`reconcile_failures{reason=..}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube(_) => "KubeApi",
            Self::Kafka(_) => "Kafka",
            Self::Finalizer(_) => "Finalizer",
            Self::InvalidSpec(_) | Self::Crd(_) => "InvalidSpec",
            _ => "Other",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
