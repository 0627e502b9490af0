//! Per-pod, per-event status fan-out. One task reads the shared counters once
//! per tick and publishes them on a watch channel that every WebSocket client
//! of this pod listens to; customers still waiting for their number are
//! resolved in one batched lookup per tick. Redis work per pod per tick is
//! therefore O(1) round trips, whatever the number of clients.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{oneshot, watch};
use twinkle_domain::{EventId, QueueCounters, QueueId};

use crate::ports::QueueStore;

/// How often each pod refreshes the counters.
pub const TICK: Duration = Duration::from_millis(250);

type Waiters = HashMap<QueueId, Vec<oneshot::Sender<u64>>>;

/// Handle to one event's hub.
#[derive(Clone)]
pub struct Hub {
    counters: watch::Receiver<QueueCounters>,
    waiters: Arc<Mutex<Waiters>>,
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
        let waiters: Arc<Mutex<Waiters>> = Arc::default();
        let hub = Self {
            counters: rx,
            waiters: waiters.clone(),
        };
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = interval.tick() => refresh(&event, store.as_ref(), &tx, &waiters).await,
                }
            }
        });
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
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.entry(id).or_default().push(tx);
        }
        rx
    }
}

async fn refresh(
    event: &EventId,
    store: &dyn QueueStore,
    tx: &watch::Sender<QueueCounters>,
    waiters: &Mutex<Waiters>,
) {
    match store.counters(event).await {
        Ok(c) => {
            tx.send_replace(c);
        }
        Err(err) => tracing::warn!(%err, %event, "hub: reading counters failed"),
    }
    let ids: Vec<QueueId> = match waiters.lock() {
        Ok(mut w) => {
            w.retain(|_, senders| {
                senders.retain(|s| !s.is_closed());
                !senders.is_empty()
            });
            w.keys().cloned().collect()
        }
        Err(_) => return,
    };
    if ids.is_empty() {
        return;
    }
    match store.sequences(event, &ids).await {
        Ok(seqs) => {
            let Ok(mut w) = waiters.lock() else { return };
            for (id, seq) in ids.iter().zip(seqs) {
                if let Some(seq) = seq {
                    for sender in w.remove(id).unwrap_or_default() {
                        let _ = sender.send(seq);
                    }
                }
            }
        }
        Err(err) => tracing::warn!(%err, %event, "hub: resolving sequences failed"),
    }
}
