//! The sale window: where an event stands relative to its opening.
//!
//! A domain concept shared by the operator (which computes it from the clock
//! and scales on it) and the `TicketEvent` status (which reports it), so it
//! lives here rather than in either of them. Computing it is the operator's
//! sizing's job; this is only the vocabulary.

use serde::{Deserialize, Serialize};

/// Where an event stands in its sale window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Window {
    /// Before the pre-scale lead: baseline replicas.
    Idle,
    /// Within preScaleLead of opensAt: forecast replicas, not open yet.
    PreScaled,
    /// Between opensAt and closesAt: forecast replicas, selling.
    Open,
    /// After closesAt: back to baseline replicas.
    Closed,
}

impl Window {
    /// Whether the forecast replicas (rather than the baseline) apply.
    pub fn is_scaled(self) -> bool {
        matches!(self, Self::PreScaled | Self::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pre_scaled_and_open_are_scaled() {
        assert!(!Window::Idle.is_scaled());
        assert!(Window::PreScaled.is_scaled());
        assert!(Window::Open.is_scaled());
        assert!(!Window::Closed.is_scaled());
        assert_eq!(
            serde_json::to_string(&Window::PreScaled).unwrap(),
            "\"PreScaled\""
        );
    }
}
