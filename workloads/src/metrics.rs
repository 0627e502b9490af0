//! Prometheus metrics of the workloads (prometheus-client, text format).

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnterLabels {
    pub event: String,
    /// `entered`, `reentered`, `refused`, `rate_limited`, `failed`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub event: String,
    /// `confirmed`, `sold_out`, `already_booked`.
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BookLabels {
    pub event: String,
    /// `accepted`, `repeat`, `refused`, `failed`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabels {
    pub event: String,
    pub slot: String,
}

type HistogramFamily = Family<EventLabel, Histogram, fn() -> Histogram>;

fn produce_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

/// All metrics of one process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub enter: Family<EnterLabels, Counter>,
    pub produce_seconds: HistogramFamily,
    pub waiting: Family<EventLabel, Gauge>,
    pub active_sessions: Family<EventLabel, Gauge>,
    pub admitted_per_second: Family<EventLabel, Gauge<f64, AtomicU64>>,
    pub ws_clients: Family<EventLabel, Gauge>,
    pub book_requests: Family<BookLabels, Counter>,
    pub booking_decisions: Family<DecisionLabels, Counter>,
    pub slot_remaining: Family<SlotLabels, Gauge>,
    pub inventory_consistent: Family<EventLabel, Gauge>,
    pub projection_lag: Family<EventLabel, Gauge>,
    pub projection_repairs: Family<EventLabel, Counter>,
    pub log_invariants_hold: Family<EventLabel, Gauge>,
    pub log_decisions: Family<EventLabel, Gauge>,
    pub decider_sessions_ended: Family<EventLabel, Counter>,
    pub projection_trusted: Family<EventLabel, Gauge>,
    pub queue_projection_lag: Family<EventLabel, Gauge>,
    pub queue_projection_repairs: Family<EventLabel, Counter>,
    pub queue_journal_steps: Family<EventLabel, Gauge>,
    pub queue_keeper_sessions_ended: Family<EventLabel, Counter>,
    pub decider_owner: Family<EventLabel, Gauge>,
    pub queue_keeper_owner: Family<EventLabel, Gauge>,
    pub replication_lag_seconds: Family<EventLabel, Gauge<f64, AtomicU64>>,
    pub decider_reserve: Family<EventLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("twinkle");
        let enter = Family::<EnterLabels, Counter>::default();
        registry.register("queue_enter", "Enter requests by result", enter.clone());
        let produce_seconds: HistogramFamily = Family::new_with_constructor(produce_histogram);
        registry.register(
            "queue_produce_seconds",
            "Time to append a queue entry to the log (acked)",
            produce_seconds.clone(),
        );
        let waiting = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_waiting",
            "People with a number, not yet admitted",
            waiting.clone(),
        );
        let active_sessions = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_active_sessions",
            "Admitted sessions alive",
            active_sessions.clone(),
        );
        let admitted_per_second = Family::<EventLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "queue_admitted_per_second",
            "Measured admission rate",
            admitted_per_second.clone(),
        );
        let ws_clients = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_ws_clients",
            "Open queue WebSockets on this pod",
            ws_clients.clone(),
        );
        let book_requests = Family::<BookLabels, Counter>::default();
        registry.register(
            "booking_requests",
            "Booking requests by result",
            book_requests.clone(),
        );
        let booking_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "booking_decisions",
            "Booking decisions made by this process (redeliveries not counted)",
            booking_decisions.clone(),
        );
        let slot_remaining = Family::<SlotLabels, Gauge>::default();
        registry.register(
            "booking_slot_remaining",
            "Seats left per slot",
            slot_remaining.clone(),
        );
        let inventory_consistent = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_inventory_consistent",
            "1 when every slot of the Redis projection satisfies confirmed == capacity - remaining <= capacity, else 0 (the projection's own consistency; see booking_log_invariants_hold for the truth)",
            inventory_consistent.clone(),
        );
        let projection_lag = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_projection_lag",
            "Decisions in the outcomes log the Redis projection does not reflect (decider's view; 0 once repaired)",
            projection_lag.clone(),
        );
        let projection_repairs = Family::<EventLabel, Counter>::default();
        registry.register(
            "booking_projection_repairs",
            "Times the decider restored a projection found behind the outcomes log (lost, rolled back or emptied)",
            projection_repairs.clone(),
        );
        let log_invariants_hold = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_log_invariants_hold",
            "1 while the outcomes log itself holds no oversold slot and no customer above the limit (computed from the log, not Redis)",
            log_invariants_hold.clone(),
        );
        let log_decisions = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_log_decisions",
            "Distinct requests decided in the outcomes log (the projection's target watermark)",
            log_decisions.clone(),
        );
        let decider_sessions_ended = Family::<EventLabel, Counter>::default();
        registry.register(
            "booking_decider_sessions_ended",
            "Decider sessions that ended (fenced, lease lost, commit failed) and were started again from the log",
            decider_sessions_ended.clone(),
        );
        let projection_trusted = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_projection_trusted",
            "1 while the projection reflects the whole outcomes log and every request accepted before its last restore was read (lookups of unknown ids answer 404, not 503), else 0",
            projection_trusted.clone(),
        );
        let decider_owner = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_decider_owner",
            "1 while this decider's region is proven to own the event's sale (always 1 outside a DR pair), else 0: requests wait in the log",
            decider_owner.clone(),
        );
        let queue_keeper_owner = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_keeper_owner",
            "1 while this queue keeper's region is proven to own the event's sale (always 1 outside a DR pair), else 0: entries wait in the queue topic",
            queue_keeper_owner.clone(),
        );
        let replication_lag_seconds = Family::<EventLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "replication_lag_seconds",
            "In the DR region (with --replicate-from): age of the oldest committed record of the event's topics in the primary's Kafka that this region's Kafka does not hold yet; 0 when caught up",
            replication_lag_seconds.clone(),
        );
        let decider_reserve = Family::<EventLabel, Gauge>::default();
        registry.register(
            "booking_decider_reserve",
            "Seats per slot the decider's session leaves unsold: 0 in the primary region, the DR reserve in force in the DR region",
            decider_reserve.clone(),
        );
        let queue_projection_lag = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_projection_lag",
            "Queue journal steps the Redis projection does not reflect (keeper's view; 0 once repaired)",
            queue_projection_lag.clone(),
        );
        let queue_projection_repairs = Family::<EventLabel, Counter>::default();
        registry.register(
            "queue_projection_repairs",
            "Times the queue keeper restored a projection found behind the queue journal (lost, rolled back or emptied)",
            queue_projection_repairs.clone(),
        );
        let queue_journal_steps = Family::<EventLabel, Gauge>::default();
        registry.register(
            "queue_journal_steps",
            "Steps in the queue journal (places, draw, admissions): the projection's target watermark",
            queue_journal_steps.clone(),
        );
        let queue_keeper_sessions_ended = Family::<EventLabel, Counter>::default();
        registry.register(
            "queue_keeper_sessions_ended",
            "Queue keeper sessions that ended (fenced, lease lost, commit failed) and were started again from the journal",
            queue_keeper_sessions_ended.clone(),
        );
        Self {
            registry,
            queue_projection_lag,
            queue_projection_repairs,
            queue_journal_steps,
            queue_keeper_sessions_ended,
            decider_reserve,
            projection_trusted,
            decider_owner,
            queue_keeper_owner,
            replication_lag_seconds,
            projection_lag,
            projection_repairs,
            log_invariants_hold,
            log_decisions,
            decider_sessions_ended,
            book_requests,
            booking_decisions,
            slot_remaining,
            inventory_consistent,
            enter,
            produce_seconds,
            waiting,
            active_sessions,
            admitted_per_second,
            ws_clients,
        }
    }
}

impl Metrics {
    pub fn label(event: &twinkle_domain::EventId) -> EventLabel {
        EventLabel {
            event: event.to_string(),
        }
    }

    /// Updates the gauges that mirror the shared counters.
    pub fn observe_counters(
        &self,
        event: &twinkle_domain::EventId,
        c: &twinkle_domain::QueueCounters,
    ) {
        let l = Self::label(event);
        self.waiting
            .get_or_create(&l)
            .set(i64::try_from(c.waiting()).unwrap_or(i64::MAX));
        self.active_sessions
            .get_or_create(&l)
            .set(i64::try_from(c.active).unwrap_or(i64::MAX));
        self.admitted_per_second
            .get_or_create(&l)
            .set(c.admitted_per_second);
    }

    /// Updates the inventory gauges from one read of the slot counters.
    pub fn observe_slots(
        &self,
        event: &twinkle_domain::EventId,
        counts: &[twinkle_domain::SlotCount],
    ) {
        for c in counts {
            self.slot_remaining
                .get_or_create(&SlotLabels {
                    event: event.to_string(),
                    slot: c.slot.to_string(),
                })
                .set(i64::from(c.remaining));
        }
        let consistent = counts.iter().all(twinkle_domain::SlotCount::consistent);
        self.inventory_consistent
            .get_or_create(&Self::label(event))
            .set(i64::from(consistent));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = encode(&mut out, &self.registry) {
            tracing::error!(%err, "encoding metrics failed");
        }
        out
    }
}
