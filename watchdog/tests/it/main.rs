//! The watchdog against the real moto of the test stack and real local
//! HTTP targets: a failover drill, flapping, two watchdogs and a crash,
//! throttling, an operator command preempting a running watchdog, all
//! targets down, and what moto's own compare-and-set semantics are.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod drill;
mod flapping;
mod lease;
mod operator;
mod ownership;
mod probes;
mod support;
mod throttling;
mod two_watchdogs;
