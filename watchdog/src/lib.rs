//! DR watchdog runtime (SPEC §4): drives the `twinkle-dr` state machine with
//! real probes and writes Route53 weights under a lease.
//!
//! The pure machine decides; this crate is the I/O shell around it:
//!
//! * [`config`]: `dr.yaml` — the hosted zone, the three weighted records, the
//!   probe cadence, the machine's tuning, the lease and the webhooks.
//! * [`probe`]: HTTP GET of each target's health URL (2xx = healthy), plus
//!   optionally Route53's own health-check status as a second signal.
//! * [`route53`]: reads the weighted records back and writes all three in one
//!   change batch, retrying throttling with jittered backoff.
//! * [`lease`]: a TXT record replaced by DELETE-old + CREATE-new, which is a
//!   compare-and-set because Route53 applies a batch atomically or not at
//!   all. Every weight batch carries that compare-and-set, so weights are
//!   written only by the current lease holder — two watchdogs never fight.
//! * the watch loop, [`Watchdog`] (`run`, `status`, `command`), and the
//!   one-shot functions the operator CLI calls ([`read_status`],
//!   [`manual_command`]).
//! * [`owner`]: which region sells, a TXT record written in the same batch
//!   as the weights, so the two move together.
//! * [`webhook`], [`metrics`]: how transitions are announced.
#![forbid(unsafe_code)]

mod command;
pub mod config;
pub mod lease;
pub mod metrics;
pub mod owner;
pub mod probe;
pub mod route53;
mod status;
mod watch;
pub mod webhook;

pub use command::{manual_command, read_status};
pub use config::{LeaseConfig, ProbeConfig, Route53Config, TargetConfig, WatchdogConfig};
pub use lease::{LeaseRecord, LeaseView};
pub use metrics::Metrics;
pub use probe::{ProbeResult, ProbeRound};
pub use route53::Clients;
pub use status::{LeaseStatus, ManualOutcome, StatusReport, WatchdogStatus, WriteRecord};
pub use watch::Watchdog;

/// Errors of the watchdog runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read DR config {path}: {source}")]
    ConfigRead {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse DR config {path}: {source}")]
    ConfigParse {
        path: String,
        source: yaml_serde::Error,
    },
    /// A setting that parses but cannot work; says which and why.
    #[error("invalid DR config: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    #[error(transparent)]
    Machine(#[from] twinkle_dr::Error),
    /// A Route53 call failed (after retries, when `retryable`).
    #[error("Route53 {operation} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Route53 {
        operation: &'static str,
        code: Option<String>,
        message: String,
        /// HTTP status of the answer, when there was one.
        status: Option<u16>,
        /// Throttling, PriorRequestNotComplete, 5xx, or no answer at all.
        retryable: bool,
    },
    /// A record under the configured name that the watchdog does not own in
    /// the way it expects: it refuses to touch it.
    #[error("refusing to touch Route53 record {name} {record_type} {set_identifier:?}: {reason}")]
    ForeignRecord {
        name: String,
        record_type: String,
        set_identifier: Option<String>,
        reason: String,
    },
    /// The lease record holds something that is not a twinkle lease: another
    /// tool owns that name, so the watchdog will not delete it.
    #[error(
        "lease record {name} holds {value:?}, which is not a twinkle DR lease; refusing to touch it"
    )]
    ForeignLease { name: String, value: String },
    #[error(
        "ownership record {name} holds {value:?}, which is not a twinkle ownership record; refusing to touch it"
    )]
    ForeignOwnerRecord { name: String, value: String },
    /// Another watchdog (or an operator command) holds the lease.
    #[error("not the lease holder: {}", holder.as_deref().map_or("the lease changed under us".to_owned(), |h| format!("held by {h}")))]
    NotLeaseHolder { holder: Option<String> },
    #[error("Route53 change {change_id} not INSYNC after {waited_ms} ms")]
    InsyncTimeout { change_id: String, waited_ms: u64 },
    #[error("cannot build HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The watch loop is not running (not started, stopped or crashed)
    /// and cannot take commands.
    #[error("the watchdog loop is not running")]
    Stopped,
    #[error("this watchdog is already running (or has run); create a new one")]
    AlreadyRunning,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Worth retrying with backoff: throttling, a prior change still being
    /// applied, a server error or a call that got no answer.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Route53 {
                retryable: true,
                ..
            }
        )
    }

    /// A failure of Route53 or of what it holds (unreachable, throttled
    /// beyond the retries, refusing a batch, records or a lease that are not
    /// ours), as opposed to a local one.
    pub fn is_route53_side(&self) -> bool {
        matches!(
            self,
            Error::Route53 { .. }
                | Error::InsyncTimeout { .. }
                | Error::ForeignRecord { .. }
                | Error::ForeignLease { .. }
                | Error::ForeignOwnerRecord { .. }
        )
    }

    /// Route53 refused the batch as a whole (InvalidChangeBatch; moto says
    /// InvalidInput for a DELETE it cannot match): for a lease batch this is
    /// the compare-and-set failing.
    pub(crate) fn is_batch_rejected(&self) -> bool {
        matches!(self, Error::Route53 { code: Some(code), .. }
            if code == "InvalidChangeBatch" || code == "InvalidInput")
    }
}
