//! Waiting-room arithmetic. Positions are derived from two shared counters
//! (the last sequence number assigned and the serving counter), so a status
//! update costs O(1) shared reads per pod per tick, not per client.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::EventConfig;

/// The shared counters of one event's queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueCounters {
    /// Highest sequence number handed out (sequence numbers start at 1).
    pub assigned: u64,
    /// Every sequence number up to and including this one is admitted.
    pub serving: u64,
    /// Admitted customers currently holding a session.
    pub active: u64,
    /// Measured admissions per second (recent average).
    pub admitted_per_second: f64,
}

impl QueueCounters {
    /// People assigned a number and not admitted yet.
    pub fn waiting(&self) -> u64 {
        self.assigned.saturating_sub(self.serving)
    }
}

/// What a customer sees while waiting (HTTP and WebSocket alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// 1-based place among those still waiting; `null` until the consumer has
    /// assigned a number (or, in shuffle mode, until the opening draw).
    pub position: Option<u64>,
    /// People in front (`position - 1`).
    pub ahead: Option<u64>,
    /// Estimated seconds until admission.
    pub eta_seconds: Option<u64>,
    pub admitted: bool,
    /// The signed admission token, once admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Admitted earlier, but the session has ended (booked, left, expired or
    /// abandoned): the place is used up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_ended: bool,
}

/// Below this measured admission rate (per second) the ETA uses the
/// configured rate instead: admission has not started or has stalled.
pub const MEASURED_RATE_FLOOR: f64 = 0.1;

/// Computes a customer's status from their sequence number and the counters.
///
/// The ETA uses the measured admission rate; before anyone has been admitted
/// (or when admission stalls) it falls back to the configured rate, and before
/// opening it adds the time left until `opensAt`.
pub fn status(
    sequence: Option<u64>,
    counters: &QueueCounters,
    event: &EventConfig,
    now: Timestamp,
) -> QueueStatus {
    let Some(seq) = sequence else {
        return QueueStatus {
            position: None,
            ahead: None,
            eta_seconds: None,
            admitted: false,
            token: None,
            session_ended: false,
        };
    };
    if seq <= counters.serving {
        return QueueStatus {
            position: Some(0),
            ahead: Some(0),
            eta_seconds: Some(0),
            admitted: true,
            token: None,
            session_ended: false,
        };
    }
    let position = seq - counters.serving;
    let configured = f64::from(event.queue.admission_per_second);
    let rate = if counters.admitted_per_second >= MEASURED_RATE_FLOOR {
        counters.admitted_per_second.min(configured)
    } else {
        configured
    };
    let until_open = event.opens_at.duration_since(now).as_secs().max(0);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let wait = (position as f64 / rate).ceil() as u64;
    QueueStatus {
        position: Some(position),
        ahead: Some(position - 1),
        eta_seconds: Some(wait + until_open.unsigned_abs()),
        admitted: false,
        token: None,
        session_ended: false,
    }
}

/// Why entering the queue is refused right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnterRefusal {
    #[error("the queue opens at {opens_at} (entering from {pre_queue_from})")]
    NotOpenYet {
        opens_at: Timestamp,
        pre_queue_from: Timestamp,
    },
    #[error("the sale closed at {closed_at}")]
    Closed { closed_at: Timestamp },
}

/// When an entry arrives relative to opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryWindow {
    /// Within the pre-queue window before `opensAt`.
    PreQueue,
    Open,
}

/// Whether a customer may enter at `now`.
pub fn entry_window(event: &EventConfig, now: Timestamp) -> Result<EntryWindow, EnterRefusal> {
    let pre_queue_from = event
        .opens_at
        .checked_sub(event.queue.pre_queue_window)
        .unwrap_or(Timestamp::MIN);
    if now >= event.closes_at {
        Err(EnterRefusal::Closed {
            closed_at: event.closes_at,
        })
    } else if now < pre_queue_from {
        Err(EnterRefusal::NotOpenYet {
            opens_at: event.opens_at,
            pre_queue_from,
        })
    } else if now < event.opens_at {
        Ok(EntryWindow::PreQueue)
    } else {
        Ok(EntryWindow::Open)
    }
}

/// The admission loop's token bucket: how many to admit this tick.
///
/// Tokens accrue at `admissionPerSecond` (burst capped at one second's worth,
/// so a paused loop does not release a flood), and are spent only up to the
/// free session capacity and the number of people waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AdmissionBucket {
    tokens: f64,
}

impl AdmissionBucket {
    /// Accrues tokens for `elapsed` and returns how many whole admissions
    /// are available; the store caps them by free capacity and waiting
    /// people, and [`AdmissionBucket::spend`] takes off what was used.
    pub fn available(&mut self, elapsed: Duration, per_second: u32) -> u64 {
        let rate = f64::from(per_second);
        self.tokens = (self.tokens + rate * elapsed.as_secs_f64()).min(rate.max(1.0));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = self.tokens.floor() as u64;
        whole
    }

    pub fn spend(&mut self, admitted: u64) {
        #[allow(clippy::cast_precision_loss)]
        {
            self.tokens = (self.tokens - admitted as f64).max(0.0);
        }
    }

    /// `available` then `spend`, capped locally (used where the caller
    /// already knows the counters).
    pub fn take(
        &mut self,
        elapsed: Duration,
        per_second: u32,
        counters: &QueueCounters,
        max_active: u32,
    ) -> u64 {
        let free = u64::from(max_active).saturating_sub(counters.active);
        let admit = self
            .available(elapsed, per_second)
            .min(free)
            .min(counters.waiting());
        self.spend(admit);
        admit
    }
}

/// When an admitted session ends unless renewed: the earlier of its absolute
/// lifetime (`session_ttl` after admission) and the heartbeat deadline
/// (`heartbeat_timeout` after the last heartbeat; admission counts as one).
pub fn session_deadline(
    admitted_at: Timestamp,
    last_heartbeat: Timestamp,
    session_ttl: Duration,
    heartbeat_timeout: Duration,
) -> Timestamp {
    let by_ttl = admitted_at
        .checked_add(session_ttl)
        .unwrap_or(Timestamp::MAX);
    let by_heartbeat = last_heartbeat
        .checked_add(heartbeat_timeout)
        .unwrap_or(Timestamp::MAX);
    by_ttl.min(by_heartbeat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    fn counters(assigned: u64, serving: u64, active: u64) -> QueueCounters {
        QueueCounters {
            assigned,
            serving,
            active,
            admitted_per_second: 0.0,
        }
    }

    #[test]
    fn position_ahead_and_eta_from_counters() {
        let event = sample();
        let now = event.opens_at;
        let s = status(Some(250), &counters(1000, 49, 0), &event, now);
        assert_eq!(s.position, Some(201));
        assert_eq!(s.ahead, Some(200));
        // 201 people at the configured 100/s → 3 s.
        assert_eq!(s.eta_seconds, Some(3));
        assert!(!s.admitted);
    }

    #[test]
    fn eta_prefers_the_measured_rate_and_adds_time_to_opening() {
        let event = sample();
        let mut c = counters(1000, 0, 0);
        c.admitted_per_second = 10.0;
        let s = status(Some(100), &c, &event, event.opens_at);
        assert_eq!(s.eta_seconds, Some(10));
        let before = event.opens_at.checked_sub(Duration::from_secs(60)).unwrap();
        let s = status(Some(100), &c, &event, before);
        assert_eq!(s.eta_seconds, Some(70));
    }

    #[test]
    fn admitted_and_unassigned() {
        let event = sample();
        let s = status(Some(5), &counters(10, 5, 1), &event, event.opens_at);
        assert!(s.admitted);
        assert_eq!(s.position, Some(0));
        let s = status(None, &counters(10, 5, 1), &event, event.opens_at);
        assert_eq!((s.position, s.admitted), (None, false));
    }

    #[test]
    fn entry_window_edges() {
        let event = sample();
        let at = |secs: i64| {
            event
                .opens_at
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .unwrap()
        };
        assert!(matches!(
            entry_window(&event, at(-601)),
            Err(EnterRefusal::NotOpenYet { .. })
        ));
        assert_eq!(entry_window(&event, at(-600)), Ok(EntryWindow::PreQueue));
        assert_eq!(entry_window(&event, at(0)), Ok(EntryWindow::Open));
        assert!(matches!(
            entry_window(&event, event.closes_at),
            Err(EnterRefusal::Closed { .. })
        ));
    }

    #[test]
    fn bucket_respects_rate_capacity_and_waiting() {
        let mut bucket = AdmissionBucket::default();
        let c = counters(10_000, 0, 0);
        // 100/s for 0.25 s → 25.
        assert_eq!(bucket.take(Duration::from_millis(250), 100, &c, 500), 25);
        // A long pause releases at most one second's worth.
        assert_eq!(bucket.take(Duration::from_secs(60), 100, &c, 500), 100);
        // Only 3 free session places.
        assert_eq!(
            bucket.take(Duration::from_secs(1), 100, &counters(10_000, 0, 497), 500),
            3
        );
        // Only 2 people waiting.
        assert_eq!(
            bucket.take(Duration::from_secs(1), 100, &counters(12, 10, 0), 500),
            2
        );
    }

    #[test]
    fn bucket_carries_fractions_so_slow_rates_still_admit() {
        let mut bucket = AdmissionBucket::default();
        let c = counters(100, 0, 0);
        let admitted: u64 = (0..10)
            .map(|_| bucket.take(Duration::from_millis(100), 3, &c, 10))
            .sum();
        assert_eq!(admitted, 3, "3/s over one second of 100 ms ticks");
    }

    #[test]
    fn session_deadline_is_the_earlier_limit() {
        let event = sample();
        let t0 = event.opens_at;
        assert_eq!(
            session_deadline(
                t0,
                t0,
                event.queue.session_ttl,
                event.queue.heartbeat_timeout
            ),
            t0.checked_add(Duration::from_secs(30)).unwrap()
        );
        let late = t0.checked_add(Duration::from_secs(290)).unwrap();
        assert_eq!(
            session_deadline(
                t0,
                late,
                event.queue.session_ttl,
                event.queue.heartbeat_timeout
            ),
            t0.checked_add(Duration::from_secs(300)).unwrap()
        );
    }
}
