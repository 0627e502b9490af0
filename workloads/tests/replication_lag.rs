//! The replication lag (`twinkle_replication_lag_seconds`) against real
//! MirrorMaker 2 between two real Kafka clusters: zero once Singapore holds
//! everything Seoul committed; with MirrorMaker frozen, the age of the
//! record waiting in Seoul; zero again once MirrorMaker copies it.
//! Its own test binary: it pauses the shared MirrorMaker.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{
        kafka::{self, KafkaLog, Topics},
        kafka_lag::LagProbe,
    },
    ports::{BookingRequest, Log},
};

async fn lag(probe: &std::sync::Arc<LagProbe>) -> Duration {
    let probe = probe.clone();
    tokio::task::spawn_blocking(move || probe.measure(Timestamp::now().as_millisecond()))
        .await
        .unwrap()
        .unwrap()
}

async fn lag_reaches_zero(probe: &std::sync::Arc<LagProbe>, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if lag(probe).await.is_zero() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "Singapore caught up within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gauge in a process's `/metrics` text (`None`: not reported yet).
fn gauge(metrics: &str, event: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with("twinkle_replication_lag_seconds{") && l.contains(event))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lag_is_the_age_of_what_has_not_crossed() {
    let stack = Stack::require();
    let _restore = support::dr::RestoreOnPanic(stack.ctl.clone());
    let mut event = support::event(10, 10);
    // MirrorMaker replicates the topics of `dr-*` events.
    event.id = unique("dr").parse().unwrap();
    let topics = Topics::for_event(&event.id);
    for bootstrap in [&stack.kafka_dr_bootstrap, &stack.kafka_bootstrap] {
        kafka::create_topics(bootstrap, &topics, 2).await.unwrap();
    }
    let seoul = KafkaLog::<BookingRequest>::new(
        kafka::producer(&stack.kafka_bootstrap).unwrap(),
        &stack.kafka_bootstrap,
        topics.bookings.clone(),
    );
    let names = vec![
        topics.queue.clone(),
        topics.bookings.clone(),
        topics.outcomes.clone(),
        topics.journal.clone(),
    ];
    let probe = std::sync::Arc::new(
        LagProbe::new(&stack.kafka_bootstrap, &stack.kafka_dr_bootstrap, names).unwrap(),
    );
    // Nothing written: nothing to trail.
    assert_eq!(lag(&probe).await, Duration::ZERO);

    for i in 0..3 {
        seoul
            .append(&support::dr::request(&event, i))
            .await
            .unwrap();
    }
    let first = lag_reaches_zero(&probe, Duration::from_secs(60)).await;
    eprintln!(
        "3 records on a new topic crossed {} ms after they were written",
        first.as_millis()
    );

    // The DR region's process reports the same number.
    let (api, base) = support::dr::region_api(
        &event,
        &stack.kafka_dr_bootstrap,
        &format!("{}/9", stack.redis_url),
        Some(stack.kafka_bootstrap.clone()),
    )
    .await;

    // MirrorMaker frozen: a record waits in Seoul, and the lag is its age.
    stack.ctl("pause", "mirror").await.unwrap();
    let written = Instant::now();
    seoul
        .append(&support::dr::request(&event, 3))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let measured = lag(&probe).await;
    let age = written.elapsed();
    assert!(
        measured >= Duration::from_millis(1900) && measured <= age + Duration::from_millis(100),
        "lag {measured:?} is the waiting record's age ({age:?})"
    );
    let mut reported = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reported.is_none_or(|s| s < 1.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reported = gauge(&support::metrics(&base).await, event.id.as_str());
    }
    stack.ctl("resume", "mirror").await.unwrap();
    assert!(
        reported.is_some_and(|s| s >= 1.0),
        "the process reported the lag: {reported:?}"
    );

    // MirrorMaker thawed: it copies the record, the lag is zero again.
    let caught_up = lag_reaches_zero(&probe, Duration::from_secs(60)).await;
    eprintln!(
        "lag with MirrorMaker frozen: {} ms measured, {reported:?} s reported; zero again {} ms after it resumed",
        measured.as_millis(),
        caught_up.as_millis()
    );
    api.shutdown().await.unwrap();
}
