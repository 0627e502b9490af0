//! Prometheus metrics of the controller and the small HTTP server that
//! serves them with `/healthz` and `/readyz`.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// The controller's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub failures: Family<ReasonLabel, Counter>,
    pub duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("twinkle_operator");
        let reconciles = Counter::default();
        let failures = Family::<ReasonLabel, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register("reconciles", "TicketEvent reconciles", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Failed reconciles by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            duration.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
        }
    }
}

impl Metrics {
    /// Counts a reconcile and times it until the guard drops, so early
    /// returns and errors are measured too.
    pub fn start(&self) -> Timer<'_> {
        self.reconciles.inc();
        Timer {
            metrics: self,
            started: Instant::now(),
        }
    }

    pub fn failed(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Observes the reconcile duration when dropped.
#[derive(Debug)]
pub struct Timer<'a> {
    metrics: &'a Metrics,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move { m.render() }),
        )
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/readyz", get(|| async { (StatusCode::OK, "ok") }))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_times_and_labels_failures() {
        let metrics = Metrics::default();
        {
            let _timer = metrics.start();
        }
        metrics.failed("KafkaUnavailable");
        let text = metrics.render();
        assert!(
            text.contains("twinkle_operator_reconciles_total 1"),
            "{text}"
        );
        assert!(
            text.contains("twinkle_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "twinkle_operator_reconcile_failures_total{reason=\"KafkaUnavailable\"} 1"
            ),
            "{text}"
        );
    }
}
