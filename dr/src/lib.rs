//! Disaster-recovery failover state machine (SPEC §4). Pure: no I/O, no clock.
#![forbid(unsafe_code)]
