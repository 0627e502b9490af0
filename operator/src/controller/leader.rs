//! Leader election: only the holder of a `coordination.k8s.io` Lease runs
//! the controller, so two operator replicas never reconcile the same event
//! at once. `kube-lease-manager` keeps the Lease (server-side apply, clock
//! skew tolerance); this runs the controller while the lease is held and
//! stops it when it is lost.

use std::sync::Arc;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use super::Context;
use crate::{Error, Result};

/// Runs the controller whenever this process holds `lease` in
/// `lease_namespace`, until `stop` turns true.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    lease_namespace: &str,
    lease: &str,
    identity: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), lease)
        .with_namespace(lease_namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(|e| Error::Lease(format!("{lease}: {e}")))?;
    let (mut leading, task) = manager.watch().await;
    loop {
        // Wait to lead (or to be stopped).
        while !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { return Ok(()) },
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        tracing::info!(lease, identity, "leading: starting the controller");
        let (lost_tx, lost_rx) = watch::channel(false);
        let mut lost = lost_rx.clone();
        let controller = tokio::spawn(super::run(ctx.clone(), namespace.clone(), async move {
            let _ = lost.wait_for(|l| *l).await;
        }));
        let stopping = tokio::select! {
            _ = leading.wait_for(|l| !*l) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let _ = lost_tx.send(true);
        let _ = controller.await;
        if stopping {
            drop(leading);
            // Releases the lease for the next replica.
            if let Ok(Ok(manager)) = task.await {
                let _ = manager.release().await;
            }
            return Ok(());
        }
        tracing::warn!(lease, identity, "lost the lease: controller stopped");
    }
}
