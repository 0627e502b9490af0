//! Disaster-recovery failover state machine (SPEC §4). Pure: no I/O, no clock.
//!
//! Probe results, Route53 health-check readings, operator commands and a
//! caller-supplied time go in; the state, Route53 weights for the three
//! targets (Seoul EKS primary, Singapore DR EKS, Singapore DR ECS),
//! transitions and alarms come out. Keeping it pure is what lets a minute of
//! flapping or a whole failover drill be tested exactly and in microseconds;
//! the operator wires it to HTTP probes, Route53 and a lease.
//!
//! The rules, in order of precedence:
//! 1. An operator override pins traffic on its target.
//! 2. Traffic never stays on a target that is down (after
//!    `probe.failuresToDown` consecutive failures) while another target is up;
//!    this escape ignores the dwell. If nothing is up, the weights are kept
//!    and [`Alarm::NoHealthyTarget`] is raised.
//! 3. Anything else (ramping onto DR EKS, automatic failback) waits for the
//!    minimum dwell in the current state and for its own healthy-for time.
#![forbid(unsafe_code)]

mod config;
mod decide;
mod health;
mod machine;
mod ownership;
mod target;
mod time;
mod transition;
mod weights;

#[cfg(test)]
mod tests;

pub use config::{Config, FailbackPolicy, Hysteresis, SignalPolicy};
pub use health::{
    Health, Observation, Observations, SignalHealth, TargetHealth, TargetObservation, combine,
};
pub use machine::FailoverMachine;
pub use ownership::{OwnerGate, Ownership, OwnershipTiming, Region, Verdict};
pub use target::{PerTarget, Target};
pub use time::Millis;
pub use transition::{Alarm, Command, Status, Step, Transition, TransitionReason};
pub use weights::{RouteState, Weights};

/// Errors of the DR crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hysteresis threshold of zero would flip health with no evidence.
    #[error("invalid DR config: {field} must be at least 1")]
    ZeroThreshold { field: &'static str },
    /// A zero dwell would let weights change on every step.
    #[error("invalid DR config: {field} must be greater than 0 ms")]
    ZeroDuration { field: &'static str },
    /// The caller's clock is not monotonic; dwell times would be wrong.
    #[error("time went backwards: step at {now} is before the previous step at {previous}")]
    TimeWentBackwards { previous: Millis, now: Millis },
    /// `FailbackToPrimary` while the primary is not known to be up.
    #[error(
        "failback refused: the primary is {primary}, not up; \
         command failoverTo primary to force it"
    )]
    FailbackRefused { primary: Health },
    /// An ownership lease no longer than twice its margin proves nothing.
    #[error("invalid ownership timing: lease {lease} must be more than twice the margin {margin}")]
    OwnershipLeaseTooShort { lease: Millis, margin: Millis },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
