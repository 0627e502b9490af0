//! Twinkle Ticket operator: the `TicketEvent` custom resource, the sizing
//! rules that turn a forecast into replicas and partitions, and the offline
//! `plan` that shows what the controller would create.
//!
//! The controller itself (reconciler, topics, workloads, DNS, finalizer) is
//! not here yet (issue #6); everything in this crate so far is pure or reads
//! files, so it is testable without a cluster.
#![forbid(unsafe_code)]

pub mod crd;
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
    #[error("invalid duration {value:?}: {why}")]
    Duration { value: String, why: &'static str },
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
