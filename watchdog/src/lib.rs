//! DR watchdog runtime (SPEC §4): drives the `twinkle-dr` state machine with
//! real probes and writes Route53 weights under a lease. Being built (issue #7).
#![forbid(unsafe_code)]
