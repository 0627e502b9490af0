//! Twinkle Ticket workloads.
//!
//! Today this crate holds the shell of the local all-in-one process: an axum
//! app with health endpoints and graceful shutdown. The queue (issue #3),
//! booking (issue #4) and customer pages (issue #5) grow inside it.
#![forbid(unsafe_code)]

pub mod shutdown;
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
