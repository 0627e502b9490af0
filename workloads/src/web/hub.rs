//! Per-pod, per-event status fan-out. One task reads the shared counters once
//! per tick and publishes them on a watch channel that every WebSocket client
//! of this pod listens to; customers still waiting for their number are
//! resolved in one batched lookup per tick. Redis work per pod per tick is
//! therefore O(1) round trips, whatever the number of clients.

use std::{sync::Arc, time::Duration};

use tokio::sync::{oneshot, watch};
use twinkle_domain::{EventId, QueueCounters, QueueId};

use crate::ports::QueueStore;

/// How often each pod refreshes the counters.
pub const TICK: Duration = Duration::from_millis(250);

use super::waiters::Waiters;
use crate::ticker::every;

/// Handle to one event's hub.
#[derive(Clone)]
pub struct Hub {
    counters: watch::Receiver<QueueCounters>,
    waiters: Waiters<QueueId, u64>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("counters", &*self.counters.borrow())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the hub's refresh task; it ends when `stop` resolves.
    pub fn spawn(
        event: EventId,
        store: Arc<dyn QueueStore>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = watch::channel(QueueCounters::default());
        let waiters = Waiters::default();
        let hub = Self {
            counters: rx,
            waiters: waiters.clone(),
        };
        tokio::spawn(every(TICK, stop, async move || {
            refresh(&event, store.as_ref(), &tx, &waiters).await;
        }));
        hub
    }

    /// The latest counters (no I/O).
    pub fn counters(&self) -> QueueCounters {
        *self.counters.borrow()
    }

    /// A receiver that changes whenever the counters are refreshed.
    pub fn subscribe(&self) -> watch::Receiver<QueueCounters> {
        self.counters.clone()
    }

    /// Resolves once `id` has a sequence number (checked in the next ticks).
    pub fn await_sequence(&self, id: QueueId) -> oneshot::Receiver<u64> {
        self.waiters.wait(id)
    }
}

async fn refresh(
    event: &EventId,
    store: &dyn QueueStore,
    tx: &watch::Sender<QueueCounters>,
    waiters: &Waiters<QueueId, u64>,
) {
    match store.counters(event).await {
        Ok(c) => {
            tx.send_replace(c);
        }
        Err(err) => tracing::warn!(%err, %event, "hub: reading counters failed"),
    }
    let ids = waiters.pending();
    if ids.is_empty() {
        return;
    }
    match store.sequences(event, &ids).await {
        Ok(seqs) => {
            for (id, seq) in ids.iter().zip(seqs) {
                if let Some(seq) = seq {
                    waiters.resolve(id, seq);
                }
            }
        }
        Err(err) => tracing::warn!(%err, %event, "hub: resolving sequences failed"),
    }
}
