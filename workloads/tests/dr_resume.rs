//! Resume in DR (SPEC §4, §7), on two real Kafka clusters with MirrorMaker
//! 2 between them: Seoul's decider sells from Seoul's Kafka; the event's
//! topics replicate into Singapore's; Seoul's decider is killed with
//! kill -9 in the middle of a burst and ownership moves. Singapore's
//! decider replays the replicated outcomes, holds back its reserve, decides
//! what Seoul left undecided, and answers Seoul's customers' retries with
//! the decisions Seoul made. Over both regions' outcome logs: no request
//! decided two ways, no slot over capacity, and the seats confirmed in
//! Seoul but not replicated at the kill stay within the reserve.
//! Its own test binary: it runs real processes against the shared servers.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use twinkle_domain::Decision;
use twinkle_e2e::route53::create_zone;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::kafka::{self, KafkaLog, Topics},
    ports::{BookingOutcome, BookingRequest, Log},
};

const CAPACITY: u32 = 150;
const RESERVE: u32 = 20;

/// Every decision in one cluster's outcomes log, first per request.
async fn decisions(log: &KafkaLog<BookingOutcome>) -> Vec<BookingOutcome> {
    log.replay(&|_, _| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn singapore_resumes_from_the_replicated_log_with_its_reserve() {
    let stack = Stack::require();
    let _restore = support::dr::RestoreOnPanic(stack.ctl.clone());
    let zone = create_zone(&stack, "resume").await;

    let mut event = support::event(100, 100);
    // MirrorMaker replicates the topics of `dr-*` events.
    event.id = unique("dr").parse().unwrap();
    event.slots.truncate(1);
    event.slots[0].capacity = CAPACITY;
    event.dr_reserve_per_slot = Some(RESERVE);
    let dir = std::env::temp_dir().join(unique("resume"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), [7u8; 32]).unwrap();

    // Singapore's topics exist before a failover (Terraform and the
    // standby operator create them), with Seoul's partition counts.
    let topics = Topics::for_event(&event.id);
    // Singapore's first: MirrorMaker would create them on finding Seoul's.
    for bootstrap in [&stack.kafka_dr_bootstrap, &stack.kafka_bootstrap] {
        kafka::create_topics(bootstrap, &topics, 2).await.unwrap();
    }
    let pair = support::dr::Pair {
        stack: &stack,
        zone: &zone,
        dir: &dir,
        group: support::group(event.id.as_str()),
    };
    let decider = |region: &str, bootstrap: &str, db: u8| {
        let redis = format!("{}/{db}", stack.redis_url);
        pair.spawn("booking-consumer", region, bootstrap, &redis)
    };
    let mut seoul = decider("primary", &stack.kafka_bootstrap, 5);
    let mut singapore = decider("dr", &stack.kafka_dr_bootstrap, 6);

    let seoul_producer = kafka::producer(&stack.kafka_bootstrap).unwrap();
    let sg_producer = kafka::producer(&stack.kafka_dr_bootstrap).unwrap();
    let seoul_requests = KafkaLog::<BookingRequest>::new(
        seoul_producer.clone(),
        &stack.kafka_bootstrap,
        topics.bookings.clone(),
    );
    let sg_requests = KafkaLog::<BookingRequest>::new(
        sg_producer.clone(),
        &stack.kafka_dr_bootstrap,
        topics.bookings.clone(),
    );
    let seoul_outcomes = KafkaLog::<BookingOutcome>::new(
        seoul_producer,
        &stack.kafka_bootstrap,
        topics.outcomes.clone(),
    );
    let sg_outcomes = KafkaLog::<BookingOutcome>::new(
        sg_producer,
        &stack.kafka_dr_bootstrap,
        topics.outcomes.clone(),
    );

    // 1. Seoul sells 60 seats; they replicate.
    for i in 0..60 {
        seoul_requests
            .append(&support::dr::request(&event, i))
            .await
            .unwrap();
    }
    support::dr::wait_for(
        "Seoul decided its first 60",
        Duration::from_secs(60),
        async || decisions(&seoul_outcomes).await.len() >= 60,
    )
    .await;
    let replicated_from = tokio::time::Instant::now();
    support::dr::wait_for(
        "Seoul's outcomes replicated",
        Duration::from_secs(60),
        async || decisions(&sg_outcomes).await.len() >= 60,
    )
    .await;
    eprintln!(
        "60 outcomes visible in Singapore {} ms after Seoul had them",
        replicated_from.elapsed().as_millis()
    );
    assert!(
        decisions(&sg_outcomes).await.len() == 60,
        "Singapore decided nothing of its own while Seoul owned the sale"
    );

    // 2. A burst, and Seoul dies mid-way: its decider and its broker are
    //    killed with SIGKILL. What Seoul confirmed but MirrorMaker had not
    //    copied yet is at risk.
    for i in 60..90 {
        seoul_requests
            .append(&support::dr::request(&event, i))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    seoul.start_kill().unwrap();
    stack.ctl("kill9", "kafka").await.unwrap();
    seoul.wait().await.unwrap();
    let killed_at = Timestamp::now();
    let replicated_at_kill = decisions(&sg_outcomes).await;

    // 3. The operator fails over: weights and ownership move together.
    let outcome = support::dr::fail_over(&stack, &zone).await;
    assert_eq!(outcome.ownership.region, twinkle_dr::Region::Dr);

    // 4. Customers retry in Singapore (same request ids) and new ones come.
    for i in 50..260 {
        sg_requests
            .append(&support::dr::request(&event, i))
            .await
            .unwrap();
    }
    support::dr::wait_for(
        "Singapore decided every request",
        Duration::from_secs(90),
        async || {
            let ids: HashSet<String> = decisions(&sg_outcomes)
                .await
                .iter()
                .map(|o| o.request_id.to_string())
                .collect();
            (0..260).all(|i| ids.contains(&format!("r{i}")))
        },
    )
    .await;
    let in_singapore = decisions(&sg_outcomes).await;
    singapore.kill().await.ok();

    // 5. Seoul's broker comes back (for the rest of the suite too); its
    //    log holds what never crossed.
    stack.ctl("start", "kafka").await.unwrap();
    // Until the restarted broker leads its partitions again, reads fail.
    let mut in_seoul = None;
    for _ in 0..100 {
        match seoul_outcomes.replay(&|_, _| {}).await {
            Ok(read) => {
                in_seoul = Some(read);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    let in_seoul = in_seoul.expect("Seoul's outcomes readable within 30 s of its restart");

    let crossed: HashSet<&str> = replicated_at_kill
        .iter()
        .map(|o| o.request_id.as_str())
        .collect();
    let at_risk = in_seoul
        .iter()
        .filter(|o| o.decision == Decision::Confirmed && !crossed.contains(o.request_id.as_str()))
        .count();
    // A seat is sold if either region confirmed the request: a customer
    // holding Seoul's confirmation keeps it.
    let mut sold: HashSet<&str> = HashSet::new();
    let mut decided: BTreeMap<&str, Decision> = BTreeMap::new();
    let mut conflicts = 0;
    for o in in_seoul.iter().chain(&in_singapore) {
        if o.decision == Decision::Confirmed {
            sold.insert(o.request_id.as_str());
        }
        let first = *decided.entry(o.request_id.as_str()).or_insert(o.decision);
        if first != o.decision {
            conflicts += 1;
        }
    }
    let singapore_first = in_singapore
        .iter()
        .filter(|o| o.decided_at > killed_at)
        .map(|o| o.decided_at)
        .min()
        .unwrap();
    let oversold = sold.len().saturating_sub(CAPACITY as usize);
    eprintln!(
        "Seoul decided {}, {} had crossed at the kill; Singapore's log holds {}; seats at risk \
         {at_risk} against a reserve of {RESERVE}; requests decided two ways {conflicts}; \
         {} seats sold of {CAPACITY}, oversold {oversold}; first decision in Singapore {} after the kill",
        in_seoul.len(),
        replicated_at_kill.len(),
        in_singapore.len(),
        sold.len(),
        singapore_first.duration_since(killed_at),
    );
    assert!(
        at_risk <= RESERVE as usize,
        "more at risk than the reserve covers"
    );
    assert_eq!(oversold, 0, "a seat sold twice");
    assert!(
        conflicts <= at_risk,
        "only a decision that never crossed can be decided again"
    );
    // Singapore sells every seat outside its reserve, and none inside.
    let confirmed_in_singapore_log = in_singapore
        .iter()
        .filter(|o| o.decision == Decision::Confirmed)
        .count();
    assert_eq!(
        confirmed_in_singapore_log,
        (CAPACITY - RESERVE) as usize,
        "Singapore's log: Seoul's replicated sales plus its own fill capacity minus the reserve"
    );
}
