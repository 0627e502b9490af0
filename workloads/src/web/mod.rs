//! The HTTP surface: `app(state)` builds the router (tested with `oneshot`),
//! `AppState` holds the events served, the ports and the shared helpers.

mod booking;
pub mod error;
pub mod extract;
pub mod hub;
mod ops;
mod pages;
pub mod projection;
mod queue;
pub mod slot_hub;
mod slots_ws;
mod waiters;
mod ws;

use std::{collections::HashMap, net::IpAddr, num::NonZeroU32, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;
use twinkle_domain::{EventConfig, EventId, tokens::TokenKeys};

use crate::{
    metrics::Metrics,
    ports::{BookingRequest, BookingStore, Log, QueueEntry, QueueStore},
};
pub use hub::Hub;
pub use slot_hub::SlotHub;

/// Knobs of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark the ticket cookie `Secure` (true in production behind TLS; the
    /// local stack serves plain HTTP on localhost).
    pub cookie_secure: bool,
    /// Enter requests per second per client IP, and the burst allowed.
    pub enter_per_second: NonZeroU32,
    pub enter_burst: NonZeroU32,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted load
    /// balancer: otherwise clients could pick their own rate-limit key).
    pub trust_forwarded_for: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            cookie_secure: true,
            enter_per_second: NonZeroU32::MIN.saturating_add(4),
            enter_burst: NonZeroU32::MIN.saturating_add(9),
            trust_forwarded_for: false,
        }
    }
}

/// One event served by this process.
#[derive(Debug, Clone)]
pub struct EventRuntime {
    pub config: Arc<EventConfig>,
    /// Queue counters fan-out.
    pub hub: Hub,
    /// Seats and booking outcomes fan-out.
    pub slots: SlotHub,
}

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    events: HashMap<EventId, EventRuntime>,
    keys: TokenKeys,
    log: Arc<dyn Log<QueueEntry>>,
    store: Arc<dyn QueueStore>,
    booking_log: Arc<dyn Log<BookingRequest>>,
    bookings: Arc<dyn BookingStore>,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    metrics: Arc<Metrics>,
    config: WebConfig,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("events", &self.0.events.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The logs and stores the HTTP layer talks to.
#[derive(Clone)]
pub struct Backends {
    pub queue_log: Arc<dyn Log<QueueEntry>>,
    pub queue_store: Arc<dyn QueueStore>,
    pub booking_log: Arc<dyn Log<BookingRequest>>,
    pub bookings: Arc<dyn BookingStore>,
}

impl AppState {
    /// `shutdown` flips to true when the process is draining: WebSockets are
    /// then closed with "service restart" so clients reconnect elsewhere.
    pub fn new(
        events: Vec<EventRuntime>,
        keys: TokenKeys,
        backends: Backends,
        metrics: Arc<Metrics>,
        config: WebConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let quota = Quota::per_second(config.enter_per_second).allow_burst(config.enter_burst);
        let limiter = RateLimiter::keyed(quota);
        Self(Arc::new(Inner {
            events: events
                .into_iter()
                .map(|e| (e.config.id.clone(), e))
                .collect(),
            keys,
            log: backends.queue_log,
            store: backends.queue_store,
            booking_log: backends.booking_log,
            bookings: backends.bookings,
            limiter,
            metrics,
            config,
            shutdown,
        }))
    }

    fn event(&self, id: &str) -> Result<&EventRuntime, error::AppError> {
        id.parse::<EventId>()
            .ok()
            .and_then(|id| self.0.events.get(&id))
            .ok_or_else(|| error::AppError::unknown_event(id))
    }

    /// Forgets idle rate-limit keys (call periodically; keeps memory bounded).
    pub fn prune_rate_limits(&self) {
        self.0.limiter.retain_recent();
    }
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/events/{event}", get(pages::event))
        .route("/assets/{file}", get(pages::asset))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/api/events/{event}", get(queue::event_info))
        .route("/api/events/{event}/queue", post(queue::enter))
        .route("/api/events/{event}/queue/status", get(queue::status))
        .route(
            "/api/events/{event}/session/heartbeat",
            post(queue::heartbeat),
        )
        .route(
            "/api/events/{event}/session",
            axum::routing::delete(queue::leave),
        )
        .route("/ws/events/{event}/queue", get(ws::queue_socket))
        .route("/api/events/{event}/slots", get(booking::slots))
        .route("/api/events/{event}/bookings", post(booking::book))
        .route(
            "/api/events/{event}/bookings/{request_id}",
            get(booking::booking_status),
        )
        .route("/ws/events/{event}/slots", get(slots_ws::slots_socket))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}
