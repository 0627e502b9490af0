//! The decider lease, kept for a whole session: renewed on a task of its
//! own, so a long replay or restore never lets it lapse (which would let a
//! standby take over and the two fence each other in turn, neither ever
//! deciding). The session ends as soon as the lease is seen held by
//! another; the store being unreachable is no reason to stop deciding —
//! the outcomes log's fencing, not the lease, keeps two deciders apart.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use twinkle_domain::EventId;

use crate::ports::BookingStore;

/// A standby takes over at most this long after the holder died.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews (and a standby asks).
pub const LEASE_RENEW: Duration = Duration::from_secs(1);

/// Renews the lease until dropped.
#[derive(Debug)]
pub struct LeaseKeeper {
    held: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Waits until `holder` has the lease, then keeps it.
    pub async fn acquire(store: Arc<dyn BookingStore>, event: EventId, holder: String) -> Self {
        loop {
            match store.lead_decider(&event, &holder, LEASE_TTL).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => tracing::warn!(%event, %err, "taking the decider lease failed"),
            }
            tokio::time::sleep(LEASE_RENEW / 2).await;
        }
        let (tx, held) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_RENEW).await;
                match store.lead_decider(&event, &holder, LEASE_TTL).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let _ = tx.send(false);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(%event, %err, "renewing the decider lease failed; deciding on");
                    }
                }
            }
        });
        Self { held, task }
    }

    /// Resolves once another holder has the lease.
    pub async fn lost(&mut self) {
        let _ = self.held.wait_for(|held| !*held).await;
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
