//! The assigner: reads the queue log in order and gives each entry its
//! sequence number in the store; the log position is committed only after
//! the store applied the batch (see [`crate::consume`]). Assignment is
//! idempotent, so redelivery creates neither duplicates nor gaps.

use std::sync::Arc;

use async_trait::async_trait;
use twinkle_domain::OpeningMode;

use crate::{
    Result,
    consume::{self, Apply},
    ports::{QueueEntry, QueueStore, Source},
};

/// Largest batch handed to the store in one script call.
pub const MAX_BATCH: usize = 500;

/// Assigns sequence numbers to batches of queue entries.
pub struct Assigner {
    pub store: Arc<dyn QueueStore>,
    pub mode: OpeningMode,
}

#[async_trait]
impl Apply<QueueEntry> for Assigner {
    async fn apply(&self, batch: &[QueueEntry]) -> Result<()> {
        self.store.assign(batch, self.mode).await?;
        Ok(())
    }
}

/// Runs until `stop` resolves.
pub async fn run(
    source: Box<dyn Source<QueueEntry>>,
    store: Arc<dyn QueueStore>,
    mode: OpeningMode,
    stop: impl std::future::Future<Output = ()>,
) {
    consume::run(
        "assigner",
        source,
        Assigner { store, mode },
        MAX_BATCH,
        stop,
    )
    .await;
}
