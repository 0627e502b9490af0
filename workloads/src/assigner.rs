//! The assigner: reads the queue log in order and gives each entry its
//! sequence number in the store, committing the log position only after the
//! store applied the batch (a crash redelivers; assignment is idempotent, so
//! redelivery creates neither duplicates nor gaps).

use std::time::Duration;

use twinkle_domain::OpeningMode;

use crate::{
    Result,
    ports::{QueueSource, QueueStore},
};

/// Largest batch handed to the store in one script call.
pub const MAX_BATCH: usize = 500;

/// Processes one batch; returns how many entries it handled.
pub async fn step(
    source: &mut dyn QueueSource,
    store: &dyn QueueStore,
    mode: OpeningMode,
    wait: Duration,
) -> Result<usize> {
    let batch = source.next_batch(MAX_BATCH, wait).await?;
    if !batch.is_empty() {
        store.assign(&batch, mode).await?;
    }
    source.commit().await?;
    Ok(batch.len())
}

/// Runs until `stop` resolves. Store or log errors are retried with backoff
/// (the uncommitted batch is simply read again).
pub async fn run(
    mut source: Box<dyn QueueSource>,
    store: std::sync::Arc<dyn QueueStore>,
    mode: OpeningMode,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(50);
    loop {
        tokio::select! {
            () = &mut stop => break,
            result = step(source.as_mut(), store.as_ref(), mode, Duration::from_millis(200)) => match result {
                Ok(_) => backoff = Duration::from_millis(50),
                Err(err) => {
                    tracing::warn!(%err, ?backoff, "assigner step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
