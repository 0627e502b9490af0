//! Per-pod, per-event seat fan-out. One task reads every slot's counters in
//! one store round trip per tick and publishes them on a watch channel that
//! all of this pod's slot WebSockets (and `GET /slots`) read; booking
//! outcomes awaited by this pod's sockets are resolved in one batched lookup
//! per tick. Store work per pod per tick is O(1) round trips, whatever the
//! number of clients.

use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use twinkle_domain::{BookingStatus, EventConfig, RequestId, SlotAvailability, booking};

use super::{hub::TICK, projection::ProjectionView, waiters::Waiters};
use crate::ticker::every;
use crate::{
    metrics::Metrics,
    ports::{BookingStore, StoredBooking},
};

/// The latest seats, `None` until the first read.
pub type Seats = Option<Arc<Vec<SlotAvailability>>>;

/// Handle to one event's slot hub.
#[derive(Clone)]
pub struct SlotHub {
    seats: watch::Receiver<Seats>,
    waiters: Waiters<RequestId, StoredBooking>,
    projection: ProjectionView,
}

impl std::fmt::Debug for SlotHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotHub").finish_non_exhaustive()
    }
}

impl SlotHub {
    /// Starts the refresh task; it ends when `stop` resolves.
    pub fn spawn(
        event: Arc<EventConfig>,
        store: Arc<dyn BookingStore>,
        metrics: Arc<Metrics>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = watch::channel(None);
        let waiters = Waiters::default();
        let projection = ProjectionView::default();
        let hub = Self {
            seats: rx,
            waiters: waiters.clone(),
            projection: projection.clone(),
        };
        tokio::spawn(every(TICK, stop, async move || {
            refresh(&event, store.as_ref(), &metrics, &projection, &tx).await;
            resolve(&event, store.as_ref(), &waiters).await;
        }));
        hub
    }

    /// The latest seats (no I/O); `None` before the first read.
    pub fn seats(&self) -> Seats {
        self.seats.borrow().clone()
    }

    /// A receiver that changes whenever any slot's seats change.
    pub fn subscribe(&self) -> watch::Receiver<Seats> {
        self.seats.clone()
    }

    /// This pod's view of the booking projection (shared by its readers).
    pub fn projection(&self) -> &ProjectionView {
        &self.projection
    }

    /// Resolves once the booking `id` has a final outcome.
    pub fn await_final(&self, id: RequestId) -> oneshot::Receiver<StoredBooking> {
        self.waiters.wait(id)
    }
}

async fn refresh(
    event: &EventConfig,
    store: &dyn BookingStore,
    metrics: &Metrics,
    projection: &ProjectionView,
    tx: &watch::Sender<Seats>,
) {
    match store.slot_counts(&event.id).await {
        // A projection behind the log would show sold seats as free: keep
        // the last seats shown until the decider has restored it.
        Ok(read) if !projection.is_whole(read.watermark) => {
            tracing::debug!(event = %event.id, watermark = ?read.watermark, "slot hub: projection behind; seats held");
        }
        Ok(read) => {
            let counts = read.value;
            metrics.observe_slots(&event.id, &counts);
            let seats = booking::availability(&event.slots, &counts);
            // Wake the sockets only when something changed.
            tx.send_if_modified(|current| {
                if current.as_deref() == Some(&seats) {
                    false
                } else {
                    *current = Some(Arc::new(seats));
                    true
                }
            });
        }
        Err(err) => tracing::warn!(%err, event = %event.id, "slot hub: reading seats failed"),
    }
}

async fn resolve(
    event: &EventConfig,
    store: &dyn BookingStore,
    waiters: &Waiters<RequestId, StoredBooking>,
) {
    let ids = waiters.pending();
    if ids.is_empty() {
        return;
    }
    match store.bookings(&event.id, &ids).await {
        Ok(found) => {
            for (id, booking) in ids.iter().zip(found.value.found) {
                // Unknown ids stay pending: the request may not be
                // registered yet when the client starts watching.
                if let Some(b) = booking.filter(|b| b.booking.status != BookingStatus::Pending) {
                    waiters.resolve(id, b);
                }
            }
        }
        Err(err) => tracing::warn!(%err, event = %event.id, "slot hub: resolving bookings failed"),
    }
}
