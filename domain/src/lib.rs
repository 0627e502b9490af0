//! Twinkle Ticket domain: pure types and rules shared by the workloads and the
//! operator. No Kafka, Redis, kube or HTTP types live here; adapters at the
//! edges convert to and from these.
#![forbid(unsafe_code)]

pub mod booking;
pub mod event;
pub mod ledger;
pub mod places;
pub mod queue;
pub mod tokens;
pub mod window;

pub use booking::{Booking, BookingStatus, Decision, SlotAvailability, SlotCount};
pub use event::{EventConfig, EventId, OpeningMode, QueueConfig, QueueId, RequestId, Slot, SlotId};
pub use ledger::{Ledger, Verdict};
pub use places::{Places, QueueStep};
pub use queue::{EnterRefusal, QueueCounters, QueueStatus};
pub use window::Window;

/// Errors of the domain crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("invalid identifier {value:?}: {why}")]
    InvalidId { value: String, why: &'static str },
    #[error("token signing failed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
