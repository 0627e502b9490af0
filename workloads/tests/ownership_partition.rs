//! The partition drill (SPEC §4, §7): Seoul's decider keeps running but can
//! no longer reach the ownership record; ownership moves to Singapore; Seoul
//! stops deciding before Singapore starts — asserted on the decision times
//! in both regions' outcome logs.
//!
//! Two "regions" on the shared servers: each its own topics (prefix), its
//! own Redis database and consumer group, and its own `twinkle
//! booking-consumer` process paired through `--sell-region`. Seoul reads
//! Route53 (moto) through a path the test cuts; the move is an operator's
//! `dr failover` through the watchdog library, which writes the weights and
//! the ownership record in one batch.
//! Its own test binary: it runs real processes against the shared servers.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use jiff::Timestamp;
use twinkle_domain::EventConfig;
use twinkle_e2e::route53::{Cuttable, create_zone};
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::kafka::{self, KafkaLog, Topics},
    ports::{BookingOutcome, BookingRequest, Log},
};

/// One lease of ownership: how long Seoul may go on deciding after its last
/// successful read, and how long Singapore waits after seeing the move.
const LEASE_MS: u64 = 4_000;

struct Region {
    name: &'static str,
    topics: Topics,
    outcomes: KafkaLog<BookingOutcome>,
    decider: tokio::process::Child,
}

/// Where one region's decider reads and writes.
struct Placement<'a> {
    region: &'a str,
    topics_prefix: &'a str,
    redis_db: u8,
    /// The Route53 endpoint this region reaches moto through.
    route53: &'a str,
}

fn spawn_decider(
    stack: &Stack,
    dir: &std::path::Path,
    at: &Placement<'_>,
    zone: &str,
    owner_record: &str,
) -> tokio::process::Child {
    let Placement {
        region,
        topics_prefix,
        redis_db,
        route53,
    } = *at;
    support::role_command(
        "booking-consumer",
        dir,
        &stack.kafka_bootstrap,
        &format!("{}/{redis_db}", stack.redis_url),
        &unique(region),
    )
    .args(["--topic-prefix", topics_prefix])
    .args(["--sell-region", region, "--owner-zone-id", zone])
    .args(["--owner-record", owner_record])
    .args(["--owner-lease-ms", &LEASE_MS.to_string()])
    .args(["--owner-poll-ms", "200"])
    .env("TWINKLE_ROUTE53_ENDPOINT", route53)
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .spawn()
    .unwrap()
}

fn request(event: &EventConfig, region: &str, i: usize) -> BookingRequest {
    BookingRequest {
        event: event.id.clone(),
        request_id: format!("{region}-r{i}").parse().unwrap(),
        queue_id: format!("{region}-c{i}").parse().unwrap(),
        slot: event.slots[0].id.clone(),
        requested_at: Timestamp::now(),
    }
}

async fn decisions(region: &Region) -> Vec<BookingOutcome> {
    region.outcomes.replay(&|_, _| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_off_region_stops_deciding_before_the_new_owner_starts() {
    let stack = Stack::require();
    let zone = create_zone(&stack, "partition").await;
    let owner_record = format!("_twinkle-dr-owner.{}", zone.record);
    let seoul_path = Cuttable::start(&stack.route53_endpoint).await;

    let mut event = support::event(100, 100);
    event.slots.truncate(1);
    event.slots[0].capacity = 100_000;
    let dir = std::env::temp_dir().join(unique("partition"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), [7u8; 32]).unwrap();

    let producer = kafka::producer(&stack.kafka_bootstrap).unwrap();
    let mut regions = Vec::new();
    for (name, db, endpoint) in [
        ("primary", 1, seoul_path.endpoint.clone()),
        ("dr", 2, stack.route53_endpoint.clone()),
    ] {
        let prefix = unique(&format!("{name}.{}", event.id));
        let topics = Topics::with_prefix(&prefix);
        kafka::create_topics(&stack.kafka_bootstrap, &topics, 2)
            .await
            .unwrap();
        let placement = Placement {
            region: name,
            topics_prefix: &prefix,
            redis_db: db,
            route53: &endpoint,
        };
        let decider = spawn_decider(&stack, &dir, &placement, &zone.id, &owner_record);
        regions.push(Region {
            name,
            outcomes: KafkaLog::new(
                producer.clone(),
                &stack.kafka_bootstrap,
                topics.outcomes.clone(),
            ),
            topics,
            decider,
        });
    }

    // Requests keep arriving in both regions (customers whom DNS still
    // sends to Seoul, and early arrivals in Singapore).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let feeders: Vec<_> = regions
        .iter()
        .map(|r| {
            let log = KafkaLog::<BookingRequest>::new(
                producer.clone(),
                &stack.kafka_bootstrap,
                r.topics.bookings.clone(),
            );
            let (event, name, stop) = (event.clone(), r.name, stop_rx.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !*stop.borrow() {
                    log.append(&request(&event, name, i)).await.unwrap();
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                i
            })
        })
        .collect();

    // Seoul sells (no record yet: the primary at epoch 0); Singapore not.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while decisions(&regions[0]).await.len() < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Seoul never decided"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        decisions(&regions[1]).await.is_empty(),
        "Singapore decided while Seoul owned the sale"
    );

    // Seoul is cut off from Route53; then the operator fails over, which
    // moves weights and ownership in one batch.
    seoul_path.cut();
    let cut_at = Timestamp::now();
    let outcome = support::dr::fail_over(&stack, &zone).await;
    let moved_at = Timestamp::now();
    assert_eq!(outcome.ownership.region, twinkle_dr::Region::Dr);
    assert_eq!(outcome.ownership.epoch, 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while decisions(&regions[1]).await.len() < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Singapore never took over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_tx.send(true).unwrap();
    for feeder in feeders {
        feeder.await.unwrap();
    }

    let seoul = decisions(&regions[0]).await;
    let singapore = decisions(&regions[1]).await;
    let seoul_last = seoul.iter().map(|o| o.decided_at).max().unwrap();
    let singapore_first = singapore.iter().map(|o| o.decided_at).min().unwrap();
    eprintln!(
        "Seoul: {} decisions, last {} after the cut; Singapore: {} decisions, first {} after the move ({} after Seoul's last)",
        seoul.len(),
        seoul_last.duration_since(cut_at),
        singapore.len(),
        singapore_first.duration_since(moved_at),
        singapore_first.duration_since(seoul_last),
    );
    assert!(
        seoul_last < singapore_first,
        "Seoul decided at {seoul_last}, after Singapore's first decision at {singapore_first}"
    );
    assert!(
        seoul_last.duration_since(cut_at)
            < jiff::SignedDuration::from_millis(i64::try_from(LEASE_MS).unwrap()),
        "Seoul went on deciding for more than one lease after it was cut off"
    );
    for mut region in regions {
        region.decider.kill().await.ok();
    }
}
