//! Snapshots for `dr status` and the operator: serialisable, camelCase.

use std::collections::VecDeque;

use serde::Serialize;
use twinkle_dr::{Ownership, PerTarget, RouteState, Transition, Weights};

use crate::lease::LeaseRecord;
use crate::probe::ProbeRound;

/// The lease as one watchdog sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    /// The TXT record's name.
    pub name: String,
    /// This watchdog holds it (and may write weights).
    pub held: bool,
    /// The record's content as last read or written.
    pub record: Option<LeaseRecord>,
}

/// One accepted weight write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    pub weights: Weights,
    pub state: RouteState,
    pub change_id: Option<String>,
    pub at_unix_ms: u64,
    /// From the step that decided the new weights to Route53 accepting the
    /// batch (retries included).
    pub decided_to_written_ms: u64,
    /// How long the `ChangeResourceRecordSets` call took (retries included).
    pub call_ms: u64,
    /// When known: how long until the change was INSYNC.
    pub insync_ms: Option<u64>,
}

/// What a running [`crate::Watchdog`] knows: [`crate::Watchdog::status`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchdogStatus {
    pub holder_id: String,
    pub running: bool,
    /// The state machine (state, weights it wants, health, alarms); `None`
    /// until start-up has read Route53.
    pub machine: Option<twinkle_dr::Status>,
    /// The weights in Route53 as last read or written by this watchdog.
    pub route53_weights: Option<Weights>,
    pub lease: LeaseStatus,
    /// Which region sells, as last read or written; `None` until read.
    pub ownership: Option<Ownership>,
    /// Recent probe rounds, oldest first.
    pub probes: VecDeque<ProbeRound>,
    /// Recent transitions (including a standby's own), oldest first.
    pub transitions: VecDeque<Transition>,
    pub last_write: Option<WriteRecord>,
    /// Weight batches this watchdog wrote.
    pub writes: u64,
    pub last_error: Option<String>,
    /// The last Route53 call of the loop failed (after its retries): the
    /// error. Cleared by the next call that gets an answer (lease check,
    /// renewal, read-back or weight write), so it says "Route53 is
    /// unreachable now" where `last_error` keeps history.
    pub route53_error: Option<String>,
}

/// What `dr status` shows without a running watchdog: Route53's records,
/// the lease, and one probe round.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub record_name: String,
    pub route53_weights: Option<Weights>,
    /// Each record's weight; `None` where the record does not exist.
    pub per_target: PerTarget<Option<u8>>,
    /// The routing state Route53 and the lease record say we are in.
    pub state: Option<RouteState>,
    pub lease: LeaseStatus,
    /// Which region sells (the ownership record; absent = primary, epoch 0).
    pub ownership: Ownership,
    pub probes: ProbeRound,
    /// Set identifiers of weighted records under the name that are not ours.
    pub foreign_records: Vec<String>,
}

/// What a one-shot operator command did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualOutcome {
    pub state: RouteState,
    pub weights: Weights,
    /// Which region sells after the command.
    pub ownership: Ownership,
    /// Transitions made (the command's, and any automatic ones the probes
    /// taken before a failback caused).
    pub transitions: Vec<Transition>,
    /// The lease holder the command preempted, if any.
    pub previous_holder: Option<String>,
    /// `None` when nothing needed writing.
    pub change_id: Option<String>,
    pub insync_ms: Option<u64>,
}
