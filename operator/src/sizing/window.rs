//! The sale window: when the forecast replicas must be running.
//!
//! ```text
//!   Idle    | PreScaled             | Open                 | Closed
//! ----------+-----------------------+----------------------+---------->
//!  opensAt - preScaleLead        opensAt               closesAt
//! ```
//!
//! Each boundary belongs to the later state (at exactly opensAt the event is
//! Open). The controller requeues for [`WindowState::next_change`], so
//! scaling happens on time without polling.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
/// The vocabulary is the domain's (the CRD status reports it too); the
/// computation from the clock stays here with the rest of the sizing.
pub use twinkle_domain::Window;

/// The window at an instant, and when it next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowState {
    pub window: Window,
    /// When the forecast replicas go up (opensAt - preScaleLead).
    pub pre_scale_at: Timestamp,
    /// The next boundary after `now`; `None` once Closed.
    pub next_change: Option<Timestamp>,
}

/// The window at `now` for an event selling from `opens_at` to `closes_at`
/// and scaled up `pre_scale_lead` before. A lead reaching before the
/// earliest representable instant saturates there.
pub fn window_at(
    now: Timestamp,
    opens_at: Timestamp,
    closes_at: Timestamp,
    pre_scale_lead: Duration,
) -> WindowState {
    let lead = SignedDuration::try_from(pre_scale_lead).unwrap_or(SignedDuration::MAX);
    let pre_scale_at = opens_at.checked_sub(lead).unwrap_or(Timestamp::MIN);
    let (window, next_change) = if now < pre_scale_at {
        (Window::Idle, Some(pre_scale_at))
    } else if now < opens_at {
        (Window::PreScaled, Some(opens_at))
    } else if now < closes_at {
        (Window::Open, Some(closes_at))
    } else {
        (Window::Closed, None)
    };
    WindowState {
        window,
        pre_scale_at,
        next_change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const OPENS: &str = "2026-12-01T01:00:00Z";
    const CLOSES: &str = "2026-12-01T09:00:00Z";
    const LEAD: Duration = Duration::from_secs(15 * 60);

    fn at(now: &str) -> WindowState {
        window_at(ts(now), ts(OPENS), ts(CLOSES), LEAD)
    }

    #[test]
    fn walks_through_the_sale() {
        let idle = at("2026-11-30T12:00:00Z");
        assert_eq!(idle.window, Window::Idle);
        assert_eq!(idle.pre_scale_at, ts("2026-12-01T00:45:00Z"));
        assert_eq!(idle.next_change, Some(ts("2026-12-01T00:45:00Z")));
        assert!(!idle.window.is_scaled());

        let pre = at("2026-12-01T00:50:00Z");
        assert_eq!(pre.window, Window::PreScaled);
        assert_eq!(pre.next_change, Some(ts(OPENS)));
        assert!(pre.window.is_scaled());

        let open = at("2026-12-01T03:00:00Z");
        assert_eq!(open.window, Window::Open);
        assert_eq!(open.next_change, Some(ts(CLOSES)));
        assert!(open.window.is_scaled());

        let closed = at("2026-12-02T00:00:00Z");
        assert_eq!(closed.window, Window::Closed);
        assert_eq!(closed.next_change, None);
        assert!(!closed.window.is_scaled());
    }

    #[test]
    fn boundaries_belong_to_the_later_state() {
        assert_eq!(at("2026-12-01T00:44:59.999Z").window, Window::Idle);
        assert_eq!(at("2026-12-01T00:45:00Z").window, Window::PreScaled);
        assert_eq!(at(OPENS).window, Window::Open);
        assert_eq!(at(CLOSES).window, Window::Closed);
    }

    #[test]
    fn offsets_are_instants() {
        // 10:00 in Seoul is 01:00 UTC.
        let seoul = ts("2026-12-01T10:00:00+09:00");
        assert_eq!(seoul, ts(OPENS));
        let s = window_at(ts("2026-12-01T09:50:00+09:00"), seoul, ts(CLOSES), LEAD);
        assert_eq!(s.window, Window::PreScaled);
    }

    #[test]
    fn zero_lead_goes_straight_from_idle_to_open() {
        let s = window_at(
            ts("2026-12-01T00:59:59Z"),
            ts(OPENS),
            ts(CLOSES),
            Duration::ZERO,
        );
        assert_eq!(s.window, Window::Idle);
        assert_eq!(s.next_change, Some(ts(OPENS)));
        let s = window_at(ts(OPENS), ts(OPENS), ts(CLOSES), Duration::ZERO);
        assert_eq!(s.window, Window::Open);
    }

    #[test]
    fn absurd_lead_saturates() {
        let s = window_at(ts(OPENS), ts(OPENS), ts(CLOSES), Duration::MAX);
        assert_eq!(s.pre_scale_at, Timestamp::MIN);
        assert_eq!(s.window, Window::Open);
        let s = window_at(
            ts("2000-01-01T00:00:00Z"),
            ts(OPENS),
            ts(CLOSES),
            Duration::MAX,
        );
        assert_eq!(s.window, Window::PreScaled);
    }
}
