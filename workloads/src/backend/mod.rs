//! Adapters behind the ports: `memory` (embedded, for the local stack) and
//! `redis_store` + `kafka` (production). Both sets pass the same behavioural
//! suite (`workloads/tests/queue_store.rs`).

pub mod kafka;
pub mod memory;
pub mod redis_store;
