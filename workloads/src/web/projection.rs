//! How far this pod has seen a projection (bookings, or the queue) come, so
//! a projection that lost writes is never served as truth. Every projection read carries
//! its watermark (decisions reflected); a read with none (emptied store) or
//! with less than this pod saw before (a failover to a lagging replica) is
//! *behind*: the decider is restoring it, and the answer it would give
//! ("unknown booking", seats that were sold) is not trusted. A decision
//! found in the projection is always true (the decider projects only what
//! is committed in the outcomes log), so only absence is in doubt.
//!
//! What this cannot see: a pod that starts after a rollback and before the
//! decider's repair (which comes within its 0.5 s check) has no earlier
//! watermark to compare with, and takes the rolled-back one as whole.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::http::StatusCode;

use super::error::AppError;

/// The highest watermark this pod has read for one event.
#[derive(Debug, Default, Clone)]
pub struct ProjectionView {
    /// Highest watermark seen + 1 (0: none yet).
    highest: Arc<AtomicU64>,
}

impl ProjectionView {
    /// Whether a read at `watermark` reflects everything this pod has seen
    /// (and remembers it if it is the highest yet).
    pub fn is_whole(&self, watermark: Option<u64>) -> bool {
        let Some(w) = watermark else {
            return false;
        };
        let seen = self.highest.fetch_max(w + 1, Ordering::Relaxed);
        w + 1 >= seen
    }

    /// `Ok` if whole, else the "retry in a moment" answer.
    pub fn require_whole(&self, watermark: Option<u64>) -> Result<(), AppError> {
        if self.is_whole(watermark) {
            Ok(())
        } else {
            Err(behind())
        }
    }
}

/// 503 while the decider restores the projection (a second or so).
pub fn behind() -> AppError {
    AppError {
        retry_after_secs: Some(1),
        ..AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "projection_behind",
            "bookings are being restored from the log; retry in a moment (nothing is lost)",
        )
    }
}

/// 503 while the queue keeper restores the queue projection.
pub fn queue_behind() -> AppError {
    AppError {
        retry_after_secs: Some(1),
        ..AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "projection_behind",
            "places are being restored from the queue journal; retry in a moment (your place is kept)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_behind_what_was_seen_is_not_whole() {
        let view = ProjectionView::default();
        assert!(!view.is_whole(None), "an emptied projection");
        assert!(view.is_whole(Some(0)), "a fresh sale");
        assert!(view.is_whole(Some(7)));
        assert!(view.is_whole(Some(7)), "the same again");
        assert!(!view.is_whole(Some(5)), "rolled back");
        assert!(view.require_whole(Some(5)).is_err());
        assert!(view.is_whole(Some(9)), "restored past it");
        assert!(!view.is_whole(Some(8)));
    }
}
