//! The booking consumer: reads booking requests in log order, decides them in
//! the store (one atomic script per batch), appends every decision to the
//! outcomes log (acked by all replicas), ends the sessions of customers who
//! can book no more, and only then commits the read position. A crash at
//! any point redelivers the batch; deciding is idempotent per request, so a
//! redelivered request gets its recorded decision again (and its outcome is
//! re-published with the same decision, which the rebuild tolerates).

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use twinkle_domain::EventConfig;

use crate::{
    Result,
    consume::{self, Apply},
    metrics::{DecisionLabels, Metrics},
    ports::{BookingOutcome, BookingRequest, BookingStore, Log, QueueStore, Source},
};

/// Largest batch decided in one script call.
pub const MAX_BATCH: usize = 500;

/// What the decider talks to.
#[derive(Clone)]
pub struct Decider {
    pub event: Arc<EventConfig>,
    pub bookings: Arc<dyn BookingStore>,
    pub sessions: Arc<dyn QueueStore>,
    pub outcomes: Arc<dyn Log<BookingOutcome>>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decider")
            .field("event", &self.event.id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Apply<BookingRequest> for Decider {
    async fn apply(&self, batch: &[BookingRequest]) -> Result<()> {
        let event = &self.event;
        let (mine, foreign): (Vec<&BookingRequest>, Vec<_>) =
            batch.iter().partition(|r| r.event == event.id);
        for r in &foreign {
            // Only our API writes this topic, one event per topic.
            tracing::error!(event = %r.event, request = %r.request_id, "skipping a request for another event");
        }
        if mine.is_empty() {
            return Ok(());
        }
        let mine: Vec<BookingRequest> = mine.into_iter().cloned().collect();
        let decided = self
            .bookings
            .decide(&event.id, event.per_customer_limit, &mine)
            .await?;
        let now = Timestamp::now();
        let outcomes: Vec<BookingOutcome> = mine
            .iter()
            .zip(&decided)
            .map(|(r, d)| BookingOutcome {
                event: r.event.clone(),
                request_id: r.request_id.clone(),
                queue_id: r.queue_id.clone(),
                slot: r.slot.clone(),
                decision: d.decision,
                decided_at: now,
            })
            .collect();
        self.outcomes.append_all(&outcomes).await?;
        // Customers who can book no more leave, freeing their place for the
        // next in the queue (idempotent: redone on redelivery).
        for (r, d) in mine.iter().zip(&decided) {
            if d.customer_confirmed >= event.per_customer_limit {
                self.sessions.end_session(&event.id, &r.queue_id).await?;
            }
        }
        for d in decided.iter().filter(|d| d.fresh) {
            self.metrics
                .booking_decisions
                .get_or_create(&DecisionLabels {
                    event: event.id.to_string(),
                    decision: d.decision.as_str().to_owned(),
                })
                .inc();
        }
        Ok(())
    }
}

impl Decider {
    /// Runs until `stop` resolves.
    pub async fn run(
        self,
        source: Box<dyn Source<BookingRequest>>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        consume::run("decider", source, self, MAX_BATCH, stop).await;
    }
}
