//! An event on sale: its slots, its sale window and its queue settings.
//!
//! This is the workloads' view of a `TicketEvent` (the operator converts the
//! custom resource into it and mounts it as JSON); identifiers are validated
//! here because they end up in topic names, Redis keys and URLs.

use std::{fmt, time::Duration};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn check_id(value: &str, max: usize, allowed: fn(char) -> bool, why: &'static str) -> Result<()> {
    if value.is_empty() || value.len() > max || !value.chars().all(allowed) {
        return Err(Error::InvalidId {
            value: value.to_owned(),
            why,
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr, $why:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                check_id(&value, $max, $allowed, $why)?;
                Ok(Self(value))
            }
        }
        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Self::try_from(value.to_owned())
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// An event id: a DNS label (it names Kafka topics and Kubernetes objects).
    EventId,
    63,
    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
    "1-63 characters of a-z, 0-9 and '-'"
);
string_id!(
    /// A slot id within an event.
    SlotId,
    32,
    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    "1-32 characters of A-Z, a-z, 0-9, '-' and '_'"
);
string_id!(
    /// A customer's place in the queue (minted by the API, carried in the
    /// signed ticket). Opaque to everyone else.
    QueueId,
    64,
    |c| c.is_ascii_alphanumeric() || c == '-',
    "1-64 characters of A-Z, a-z, 0-9 and '-'"
);

string_id!(
    /// A booking request (minted by the API, or derived from the client's
    /// idempotency key so retries name the same request).
    RequestId,
    64,
    |c| c.is_ascii_alphanumeric() || c == '-',
    "1-64 characters of A-Z, a-z, 0-9 and '-'"
);

/// A bookable time slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub id: SlotId,
    pub label: String,
    pub capacity: u32,
}

/// How the people who arrived before opening are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum OpeningMode {
    /// Strict arrival order, pre-queue included.
    #[default]
    Fifo,
    /// Everyone who entered in the pre-queue window is ordered randomly once
    /// at opening (so refreshing at 09:59:59.9 buys nothing); later arrivals
    /// queue behind them in arrival order.
    ShuffleAtOpen,
}

/// The waiting room's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    /// Customers admitted per second (the serving counter's speed).
    pub admission_per_second: u32,
    /// Cap on admitted customers holding a session at once.
    pub max_active_sessions: u32,
    /// How long an admitted session (and its admission token) lasts.
    #[serde(with = "secs")]
    pub session_ttl: Duration,
    /// A session without a heartbeat for this long is abandoned and its
    /// capacity reused.
    #[serde(with = "secs", default = "default_heartbeat_timeout")]
    pub heartbeat_timeout: Duration,
    #[serde(default)]
    pub opening_mode: OpeningMode,
    /// Entering is allowed this long before `opensAt` (the pre-queue).
    #[serde(with = "secs", default = "default_pre_queue_window")]
    pub pre_queue_window: Duration,
}

/// Heartbeat timeout when the event config leaves it out.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// Pre-queue window when the event config leaves it out.
pub const DEFAULT_PRE_QUEUE_WINDOW: Duration = Duration::from_secs(600);

fn default_heartbeat_timeout() -> Duration {
    DEFAULT_HEARTBEAT_TIMEOUT
}
fn default_pre_queue_window() -> Duration {
    DEFAULT_PRE_QUEUE_WINDOW
}

/// An event as the workloads serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfig {
    pub id: EventId,
    pub title: String,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    pub slots: Vec<Slot>,
    pub per_customer_limit: u32,
    pub queue: QueueConfig,
    /// Seats per slot the DR region holds back while it sells, for what the
    /// primary may have confirmed without its decisions having replicated
    /// (see `Ledger::hold_back`); `None`: derived at takeover from the
    /// primary's last decision rate ([`crate::ledger::derived_reserve`]).
    /// The primary sells every seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_reserve_per_slot: Option<u32>,
}

impl EventConfig {
    /// Checks the rules the API server also enforces on a `TicketEvent`, so
    /// a hand-written `--event` file gets the same answer.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::InvalidEvent(format!("{}: {msg}", self.id)));
        if self.closes_at <= self.opens_at {
            return fail("closesAt must be after opensAt".into());
        }
        if self.slots.is_empty() {
            return fail("at least one slot is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for slot in &self.slots {
            if slot.capacity == 0 {
                return fail(format!("slot {} has capacity 0", slot.id));
            }
            if !seen.insert(&slot.id) {
                return fail(format!("slot id {} is used twice", slot.id));
            }
        }
        if self.per_customer_limit == 0 {
            return fail("perCustomerLimit must be at least 1".into());
        }
        let q = &self.queue;
        if q.admission_per_second == 0 || q.max_active_sessions == 0 {
            return fail("admissionPerSecond and maxActiveSessions must be at least 1".into());
        }
        if q.session_ttl.is_zero() || q.heartbeat_timeout.is_zero() {
            return fail("sessionTtl and heartbeatTimeout must be positive".into());
        }
        Ok(())
    }

    pub fn slot(&self, id: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id.as_str() == id)
    }
}

/// Durations as whole seconds in JSON (`"sessionTtl": 300`).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> EventConfig {
        serde_json::from_value(serde_json::json!({
            "id": "popup-0101",
            "title": "Pop-up store",
            "opensAt": "2026-01-01T10:00:00Z",
            "closesAt": "2026-01-01T18:00:00Z",
            "slots": [
                {"id": "s1000", "label": "10:00", "capacity": 50},
                {"id": "s1100", "label": "11:00", "capacity": 5}
            ],
            "perCustomerLimit": 1,
            "queue": {"admissionPerSecond": 100, "maxActiveSessions": 500, "sessionTtl": 300}
        }))
        .unwrap()
    }

    #[test]
    fn parses_with_defaults_and_validates() {
        let event = sample();
        assert_eq!(event.queue.heartbeat_timeout, Duration::from_secs(30));
        assert_eq!(event.queue.opening_mode, OpeningMode::Fifo);
        event.validate().unwrap();
        assert_eq!(event.slot("s1100").unwrap().capacity, 5);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("Bad_Event".parse::<EventId>().is_err());
        assert!("".parse::<EventId>().is_err());
        assert!("x".repeat(64).parse::<EventId>().is_err());
        assert!("ok-123".parse::<EventId>().is_ok());
        assert!("a b".parse::<SlotId>().is_err());
        assert!(serde_json::from_str::<QueueId>("\"../etc\"").is_err());
    }

    #[test]
    fn rejects_inconsistent_events() {
        let mut e = sample();
        e.closes_at = e.opens_at;
        assert!(e.validate().is_err());
        let mut e = sample();
        e.slots[1].id = e.slots[0].id.clone();
        assert!(e.validate().unwrap_err().to_string().contains("used twice"));
        let mut e = sample();
        e.slots[0].capacity = 0;
        assert!(e.validate().is_err());
        let mut e = sample();
        e.queue.max_active_sessions = 0;
        assert!(e.validate().is_err());
    }
}
