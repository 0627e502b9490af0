//! The assigner's consumer loop (the decider has its own, transactional
//! one: `decider.rs`): read a batch,
//! apply it until its effect is durable (retrying the *same* batch with
//! backoff — reading on would skip it), then commit the read position.
//! Stopping mid-retry leaves the batch uncommitted, so it is redelivered;
//! applying is idempotent, so redelivery is harmless.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Result,
    ports::{Record, Source},
};

/// What a consumer does with a batch. Must be idempotent per record.
#[async_trait]
pub trait Apply<R>: Send + Sync {
    async fn apply(&self, batch: &[R]) -> Result<()>;
}

/// How long one read waits for records.
const READ_WAIT: Duration = Duration::from_millis(200);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Reads, applies and commits one batch (no retry); returns its size.
pub async fn step<R: Record>(
    source: &mut dyn Source<R>,
    apply: &dyn Apply<R>,
    max: usize,
    wait: Duration,
) -> Result<usize> {
    let batch = source.next_batch(max, wait).await?;
    if !batch.is_empty() {
        apply.apply(&batch).await?;
    }
    source.commit().await?;
    Ok(batch.len())
}

/// Runs until `stop` resolves.
pub async fn run<R: Record>(
    name: &'static str,
    mut source: Box<dyn Source<R>>,
    apply: impl Apply<R>,
    max: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let batch = tokio::select! {
            () = &mut stop => return,
            batch = source.next_batch(max, READ_WAIT) => batch,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(consumer = name, %err, ?backoff, "reading failed; retrying");
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        while !batch.is_empty() {
            let applied = tokio::select! {
                () = &mut stop => return,
                applied = apply.apply(&batch) => applied,
            };
            match applied {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    break;
                }
                Err(err) => {
                    tracing::warn!(consumer = name, %err, ?backoff, records = batch.len(), "applying a batch failed; retrying the same batch");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        // A failed commit (e.g. the partitions moved to another member in a
        // rebalance) is not retried: the effect is durable, and whoever reads
        // the batch again gets the same, idempotent result.
        if let Err(err) = source.commit().await {
            tracing::warn!(consumer = name, %err, "committing the read position failed");
        }
    }
}
