//! The admission loop. Every pod runs one per event, but only the holder of
//! the event's lease advances the serving counter, so admission is exactly
//! `admissionPerSecond` however many pods there are, and survives the holder
//! dying (the lease expires and another pod takes over).

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use twinkle_domain::{EventConfig, OpeningMode, queue::AdmissionBucket};

use crate::{Result, ports::QueueStore};

/// How often the loop runs.
pub const TICK: Duration = Duration::from_millis(100);
/// Lease time-to-live: a dead holder is replaced within this.
pub const LEASE_TTL: Duration = Duration::from_secs(2);
/// Grace after `opensAt` before the opening draw, so entries produced just
/// before opening have reached the store.
pub const DRAW_GRACE: Duration = Duration::from_secs(1);

/// State of one pod's admission loop for one event.
pub struct Admission {
    event: Arc<EventConfig>,
    store: Arc<dyn QueueStore>,
    holder: String,
    bucket: AdmissionBucket,
    last: Option<tokio::time::Instant>,
    /// Exponentially weighted admissions per second.
    rate: f64,
    leading: bool,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("event", &self.event.id)
            .field("holder", &self.holder)
            .field("leading", &self.leading)
            .finish_non_exhaustive()
    }
}

impl Admission {
    pub fn new(event: Arc<EventConfig>, store: Arc<dyn QueueStore>, holder: String) -> Self {
        Self {
            event,
            store,
            holder,
            bucket: AdmissionBucket::default(),
            last: None,
            rate: 0.0,
            leading: false,
        }
    }

    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// One tick; returns how many were admitted.
    pub async fn tick(&mut self, now: Timestamp) -> Result<u64> {
        let event = &self.event;
        let leading = self.store.lead(&event.id, &self.holder, LEASE_TTL).await?;
        if leading != self.leading {
            tracing::info!(event = %event.id, holder = %self.holder, leading, "admission lease changed");
            self.leading = leading;
            self.bucket = AdmissionBucket::default();
            self.last = None;
        }
        if !leading || now < event.opens_at {
            return Ok(0);
        }
        if event.queue.opening_mode == OpeningMode::ShuffleAtOpen
            && !self.store.drawn(&event.id).await?
        {
            let draw_at = event
                .opens_at
                .checked_add(DRAW_GRACE)
                .unwrap_or(event.opens_at);
            if now < draw_at {
                return Ok(0);
            }
            let seed: u64 = rand::random();
            let placed = self.store.draw(&event.id, seed).await?;
            tracing::info!(event = %event.id, ?placed, "opening draw done");
        }
        let instant = tokio::time::Instant::now();
        let elapsed = self.last.map_or(TICK, |last| instant - last);
        self.last = Some(instant);
        let budget = self
            .bucket
            .available(elapsed, event.queue.admission_per_second);
        let outcome = self
            .store
            .admit(
                &event.id,
                now,
                budget,
                u64::from(event.queue.max_active_sessions),
                event.queue.session_ttl,
                event.queue.heartbeat_timeout,
            )
            .await?;
        self.bucket.spend(outcome.admitted);
        // EWMA over ~2 s of ticks.
        #[allow(clippy::cast_precision_loss)]
        let instant_rate = outcome.admitted as f64 / elapsed.as_secs_f64().max(1e-3);
        self.rate = 0.95 * self.rate + 0.05 * instant_rate;
        self.store.publish_rate(&event.id, self.rate).await?;
        Ok(outcome.admitted)
    }

    /// Runs ticks until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        crate::ticker::every(TICK, stop, async move || {
            if let Err(err) = self.tick(Timestamp::now()).await {
                tracing::warn!(%err, "admission tick failed");
            }
        })
        .await;
    }
}
