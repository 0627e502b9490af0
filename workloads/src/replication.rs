//! The DR region's view of replication: how far its copies of the event's
//! topics trail the primary's (see [`crate::backend::kafka_lag`]), measured
//! every [`LAG_PERIOD`] into `twinkle_replication_lag_seconds`. The reserve
//! a DR decider holds back is sized for a lag budget; this is the number to
//! hold that budget against.

use std::{
    sync::{Arc, Mutex, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use prometheus_client::metrics::gauge::Gauge;

use crate::backend::{kafka::Topics, kafka_lag::LagProbe};

/// How often the lag is measured (four reads per partition each time).
pub const LAG_PERIOD: Duration = Duration::from_secs(5);

/// Measures the lag of `topics` in `target` behind `source` every
/// [`LAG_PERIOD`] until `stop` resolves. A failed measurement (the primary
/// unreachable: what a DR region sees in a disaster) is logged once per
/// streak and leaves the gauge as it was.
pub async fn report_lag(
    source: String,
    target: String,
    topics: Topics,
    gauge: Gauge<f64, AtomicU64>,
    stop: impl Future<Output = ()>,
) {
    let names = vec![
        topics.queue,
        topics.bookings,
        topics.outcomes,
        topics.journal,
    ];
    let probe: Arc<Mutex<Option<LagProbe>>> = Arc::default();
    let mut failing = false;
    tokio::pin!(stop);
    let mut interval = tokio::time::interval(LAG_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = interval.tick() => {}
        }
        let (probe, source, target, names) =
            (probe.clone(), source.clone(), target.clone(), names.clone());
        let measured = tokio::task::spawn_blocking(move || {
            let mut probe = probe.lock().unwrap_or_else(PoisonError::into_inner);
            if probe.is_none() {
                *probe = Some(LagProbe::new(&source, &target, names)?);
            }
            let now = jiff::Timestamp::now().as_millisecond();
            probe
                .as_ref()
                .map_or(Ok(Duration::ZERO), |p| p.measure(now))
        })
        .await;
        match measured {
            Ok(Ok(lag)) => {
                if failing {
                    tracing::info!(lag_ms = lag.as_millis(), "replication lag measured again");
                    failing = false;
                }
                gauge.set(lag.as_secs_f64());
            }
            Ok(Err(err)) if !failing => {
                tracing::warn!(%err, "measuring the replication lag failed");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(err) => tracing::error!(%err, "the replication lag probe panicked"),
        }
    }
}
