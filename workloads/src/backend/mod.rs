//! Adapters behind the ports: `memory` (embedded, for the local stack) and
//! `redis_store` + `kafka` (production). Both sets pass the same behavioural
//! suites (`workloads/tests/queue_store.rs`, `workloads/tests/booking_store.rs`).

pub mod kafka;
pub mod kafka_fenced;
pub mod kafka_lag;
pub mod memory;
mod memory_booking;
pub mod memory_fenced;
mod redis_booking;
pub mod redis_store;
