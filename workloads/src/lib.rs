//! Twinkle Ticket workloads: the virtual waiting room (queue API, queue
//! keeper), booking (API, decider, rebuild) and the customer pages.
//!
//! Layout: `ports` are the traits the logic needs; `backend` holds the
//! embedded and Kafka/Redis adapters; `keeper` and `decider` are the
//! single writers of the queue journal and the outcomes log (each under a
//! `lease`, each fenced by its log); `web` is the HTTP surface.
#![forbid(unsafe_code)]

pub mod backend;
pub mod decider;
pub mod keeper;
pub mod lease;
pub mod metrics;
pub mod ownership;
pub mod ports;
pub mod proc_stats;
pub mod rebuild;
pub mod replication;
pub mod runtime;
pub mod shutdown;
pub mod ticker;
pub mod web;

/// Errors of the workloads crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Domain(#[from] twinkle_domain::Error),
    #[error("backend: {0}")]
    Backend(String),
    /// A newer decider opened a session on the same event: this one's
    /// decisions are refused and it must stop.
    #[error("fenced: a newer decider owns this event's outcomes log")]
    Fenced,
    /// A hand-made restore would race the decider that restores by itself.
    #[error(
        "decider {0} is running and restores the projection by itself; stop the booking consumers to rebuild by hand"
    )]
    DeciderRunning(String),
    /// The ownership record cannot be read or is not one.
    #[error("ownership: {0}")]
    Ownership(String),
    /// This region owns the sale again (at `epoch`) after another did: the
    /// writer (decider, queue keeper) starts a new session, replaying what
    /// that region wrote.
    #[error("ownership moved here at epoch {epoch}: replaying the log before writing")]
    OwnershipMoved { epoch: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
