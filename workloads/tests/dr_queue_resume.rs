//! Customers keep their place and admission across a failover (SPEC §4,
//! §7), on two real Kafka clusters with MirrorMaker 2 between them and a
//! Redis projection per region: customers enter in Seoul and are numbered
//! and admitted by Seoul's queue keeper; Seoul's keeper and broker are
//! killed with kill -9; ownership moves; Singapore's keeper replays the
//! replicated journal. The same customers, re-entering in Singapore with
//! Seoul's tickets, keep every number that crossed, those admitted keep
//! their session (Seoul's admission tokens work there), the rest are
//! numbered after them, and admission goes on. Then Seoul's broker returns,
//! its unreplicated tail crosses late, and Singapore's projection, emptied,
//! is restored from a journal that now holds both regions' steps.
//! Its own test binary: it kills the shared Kafka broker.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use twinkle_domain::{EventConfig, Places, QueueId};
use twinkle_e2e::route53::create_zone;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{
        kafka::{self, KafkaLog, Topics},
        redis_store::RedisStore,
    },
    ports::{JournalRecord, Log, QueueStore},
};

/// Numbered in Seoul before the kill, then a burst entering just before
/// it (numbered in Seoul or not, replicated or not).
const SEOUL_CUSTOMERS: usize = 300;
const BURST: usize = 100;
const SINGAPORE_CUSTOMERS: usize = 100;

/// The journal as one cluster holds it; `None` while unreadable.
async fn journal(log: &KafkaLog<JournalRecord>) -> Option<Vec<JournalRecord>> {
    log.replay(&|_, _| {}).await.ok()
}

/// Places replayed from a journal that one region wrote alone.
fn places(records: &[JournalRecord]) -> Places {
    Places::replay(records.iter().map(|r| &r.step)).unwrap()
}

/// Enters `n` more customers at `base` and waits until the region's keeper
/// has numbered all of `customers`; returns their queue ids.
async fn enter_numbered(
    base: &str,
    store: &RedisStore,
    event: &EventConfig,
    n: usize,
    customers: &mut Vec<(String, String)>,
) -> Vec<QueueId> {
    for _ in 0..n {
        customers.push(support::enter(base, event.id.as_str()).await);
    }
    let ids: Vec<QueueId> = customers
        .iter()
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    support::dr::wait_for(
        "every customer numbered",
        Duration::from_secs(60),
        async || all_numbered(store, event, &ids).await,
    )
    .await;
    ids
}

/// Whether every one of `ids` has a number in `store`'s projection.
async fn all_numbered(store: &RedisStore, event: &EventConfig, ids: &[QueueId]) -> bool {
    numbers(store, event, ids).await.iter().all(Option::is_some)
}

async fn numbers(store: &RedisStore, event: &EventConfig, ids: &[QueueId]) -> Vec<Option<u64>> {
    store.sequences(&event.id, ids).await.unwrap().value
}

/// Re-enters with a ticket (as the page does on load): 200, same ticket.
async fn reenter(base: &str, event: &str, ticket: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = support::client()
            .post(format!("{base}/api/events/{event}/queue"))
            .bearer_auth(ticket)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => return,
            // Singapore's projection is being restored from the journal.
            503 if tokio::time::Instant::now() < deadline => {}
            other => panic!("re-entry: {other} {:?}", r.text().await),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn heartbeat(base: &str, event: &str, token: &str) -> u16 {
    support::client()
        .post(format!("{base}/api/events/{event}/session/heartbeat"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn customers_keep_their_place_and_admission_in_singapore() {
    let stack = Stack::require();
    let _restore = support::dr::RestoreOnPanic(stack.ctl.clone());
    let zone = create_zone(&stack, "queue-resume").await;
    let mut event = support::event(10, 10_000);
    // MirrorMaker replicates the topics of `dr-*` events.
    event.id = unique("dr").parse().unwrap();
    // Nobody sends heartbeats during the drill; nobody is abandoned.
    event.queue.heartbeat_timeout = Duration::from_secs(600);
    let name = event.id.as_str().to_owned();
    let dir = std::env::temp_dir().join(unique("queue-resume"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), support::SECRET).unwrap();
    let topics = Topics::for_event(&event.id);
    // Singapore's first, as Terraform and the standby operator create them.
    for bootstrap in [&stack.kafka_dr_bootstrap, &stack.kafka_bootstrap] {
        kafka::create_topics(bootstrap, &topics, 2).await.unwrap();
    }
    let (seoul_redis, sg_redis) = (
        format!("{}/7", stack.redis_url),
        format!("{}/8", stack.redis_url),
    );
    let pair = support::dr::Pair {
        stack: &stack,
        zone: &zone,
        dir: &dir,
        group: support::group(&name),
    };
    let keeper = |region: &str, bootstrap: &str, redis: &str| {
        pair.spawn("queue-consumer", region, bootstrap, redis)
    };
    let mut seoul_keeper = keeper("primary", &stack.kafka_bootstrap, &seoul_redis);
    let mut sg_keeper = keeper("dr", &stack.kafka_dr_bootstrap, &sg_redis);
    let journal_in = |bootstrap: &str| {
        KafkaLog::<JournalRecord>::new(
            kafka::producer(bootstrap).unwrap(),
            bootstrap,
            topics.journal.clone(),
        )
    };
    let (seoul_journal, sg_journal) = (
        journal_in(&stack.kafka_bootstrap),
        journal_in(&stack.kafka_dr_bootstrap),
    );
    let seoul_store = RedisStore::connect(&seoul_redis).await.unwrap();
    let sg_store = RedisStore::connect(&sg_redis).await.unwrap();

    // 1. Customers enter in Seoul and are numbered there; admission runs.
    let (seoul_api, seoul_base) =
        support::dr::region_api(&event, &stack.kafka_bootstrap, &seoul_redis, None).await;
    let mut customers = Vec::new();
    enter_numbered(
        &seoul_base,
        &seoul_store,
        &event,
        SEOUL_CUSTOMERS,
        &mut customers,
    )
    .await;
    // The first in line are admitted (10 per second: the rest wait) and
    // fetch their admission token from Seoul.
    let mut tokens = Vec::new();
    support::dr::wait_for(
        "Seoul admitted some customers",
        Duration::from_secs(60),
        async || {
            tokens.clear();
            for (_, ticket) in &customers[..40] {
                let s = support::status(&seoul_base, &name, ticket).await;
                if let Some(token) = s["token"].as_str() {
                    tokens.push((ticket.clone(), token.to_owned()));
                }
            }
            tokens.len() >= 20
        },
    )
    .await;
    assert!(
        journal(&sg_journal)
            .await
            .unwrap()
            .iter()
            .all(|r| r.epoch == 0),
        "Singapore journals nothing while Seoul owns the sale"
    );

    // 2. Replication lags (MirrorMaker frozen), a burst enters, and Seoul
    //    dies: its keeper and its broker are killed with SIGKILL while
    //    admission is moving and the burst is being numbered. Nothing of
    //    the burst crosses, nor the admissions meanwhile.
    support::dr::wait_for(
        "the first customers' numbers crossed",
        Duration::from_secs(60),
        async || {
            journal(&sg_journal)
                .await
                .is_some_and(|j| places(&j).assigned() >= SEOUL_CUSTOMERS as u64)
        },
    )
    .await;
    stack.ctl("pause", "mirror").await.unwrap();
    let ids = enter_numbered(&seoul_base, &seoul_store, &event, BURST, &mut customers).await;
    seoul_keeper.start_kill().unwrap();
    stack.ctl("kill9", "kafka").await.unwrap();
    seoul_keeper.wait().await.unwrap();
    let killed = tokio::time::Instant::now();
    // Its producer has nowhere to flush to: don't wait for it.
    let _ = tokio::time::timeout(Duration::from_secs(5), seoul_api.shutdown()).await;
    // Still frozen, MirrorMaker may hold a fetch Seoul answered before it
    // died: what it copies now would cross after this read. It is thawed
    // once Singapore has written, so that lands after Singapore's steps,
    // as a late tail does. This is what crossed.
    let crossed_steps = journal(&sg_journal).await.unwrap();
    let crossed = places(&crossed_steps);
    // What Seoul showed its customers (its Redis outlives the kill here).
    let in_seoul = numbers(&seoul_store, &event, &ids).await;
    let seoul_serving = seoul_store.counters(&event.id).await.unwrap().value.serving;
    // When Singapore's keeper admits again: polled from now on.
    let resumed = {
        let (store, event, serving) = (sg_store.clone(), event.id.clone(), crossed.serving());
        tokio::spawn(async move {
            loop {
                if store
                    .counters(&event)
                    .await
                    .is_ok_and(|c| c.value.serving > serving)
                {
                    return killed.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // 3. Weights and ownership move to Singapore.
    let outcome = support::dr::fail_over(&stack, &zone).await;
    assert_eq!(outcome.ownership.region, twinkle_dr::Region::Dr);
    support::dr::wait_for(
        "Singapore's keeper writes (admission goes on)",
        Duration::from_secs(60),
        async || {
            journal(&sg_journal)
                .await
                .is_some_and(|j| j.iter().any(|r| r.epoch > 0))
        },
    )
    .await;
    stack.ctl("resume", "mirror").await.unwrap();

    // 4. The same customers come back in Singapore with Seoul's tickets.
    let (sg_api, sg_base) =
        support::dr::region_api(&event, &stack.kafka_dr_bootstrap, &sg_redis, None).await;
    for (_, ticket) in &customers {
        reenter(&sg_base, &name, ticket).await;
    }
    let mut newcomers = Vec::new();
    for _ in 0..SINGAPORE_CUSTOMERS {
        newcomers.push(support::enter(&sg_base, &name).await);
    }
    let new_ids: Vec<QueueId> = newcomers
        .iter()
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    support::dr::wait_for(
        "Singapore numbered every customer",
        Duration::from_secs(90),
        async || {
            let all = [ids.clone(), new_ids.clone()].concat();
            numbers(&sg_store, &event, &all)
                .await
                .iter()
                .all(Option::is_some)
        },
    )
    .await;
    let in_singapore = numbers(&sg_store, &event, &ids).await;
    let new_numbers = numbers(&sg_store, &event, &new_ids).await;

    let mut kept = 0;
    let mut renumbered = 0;
    for ((id, seoul), singapore) in ids.iter().zip(&in_seoul).zip(&in_singapore) {
        let singapore = singapore.unwrap();
        match crossed.sequence(id) {
            Some(number) => {
                assert_eq!(
                    Some(number),
                    *seoul,
                    "the journal crossed as Seoul wrote it"
                );
                assert_eq!(Some(singapore), *seoul, "{id} kept the number Seoul gave");
                kept += 1;
            }
            None => {
                assert!(
                    singapore > crossed.assigned(),
                    "{id}, numbered after the last step that crossed (or not at all), is numbered after everyone who kept theirs"
                );
                renumbered += usize::from(seoul.is_some());
            }
        }
    }
    let mut everyone: Vec<u64> = in_singapore
        .iter()
        .chain(&new_numbers)
        .map(|n| n.unwrap())
        .collect();
    everyone.sort_unstable();
    everyone.dedup();
    assert_eq!(
        everyone.len(),
        SEOUL_CUSTOMERS + BURST + SINGAPORE_CUSTOMERS,
        "one number per customer"
    );
    assert!(
        new_numbers.iter().all(|n| n.unwrap() > crossed.assigned()),
        "newcomers queue behind Seoul's customers"
    );

    // Admission carries over: Seoul's tokens of customers whose admission
    // crossed hold a live session in Singapore.
    let mut sessions_kept = 0;
    for (ticket, token) in &tokens {
        let (id, _) = customers.iter().find(|(_, t)| t == ticket).unwrap();
        let number = crossed.sequence(&id.parse().unwrap());
        if number.is_some_and(|n| n <= crossed.serving()) {
            assert_eq!(
                heartbeat(&sg_base, &name, token).await,
                204,
                "{id}'s session lives on in Singapore"
            );
            sessions_kept += 1;
        }
    }
    // And Singapore admits on from where Seoul's journal left off.
    let resumed_after = tokio::time::timeout(Duration::from_secs(60), resumed)
        .await
        .expect("Singapore admits the rest of the line")
        .unwrap();
    let seoul_numbered = in_seoul.iter().flatten().count();
    eprintln!(
        "Seoul numbered {seoul_numbered} of {} and served {seoul_serving}; {} numbers and serving {} \
         had crossed at the kill; {kept} customers kept their number, {renumbered} numbered in Seoul \
         were numbered again after them; {sessions_kept} of {} admission tokens checked in Singapore; \
         Singapore admitted again {} ms after the kill",
        ids.len(),
        crossed.assigned(),
        crossed.serving(),
        tokens.len(),
        resumed_after.as_millis(),
    );
    assert_eq!(kept, SEOUL_CUSTOMERS, "every number that crossed was kept");
    assert_eq!(renumbered, BURST, "the burst never crossed: numbered again");
    assert!(sessions_kept > 0, "some admission crossed and was checked");

    // 5. Seoul's broker returns: MirrorMaker copies its unreplicated tail
    //    into Singapore's journal, after Singapore's own steps. Singapore's
    //    projection is emptied and restored from that journal: every number
    //    stays as customers were told in Singapore.
    stack.ctl("start", "kafka").await.unwrap();
    let mut seoul_wrote = None;
    support::dr::wait_for(
        "Seoul's journal readable again",
        Duration::from_secs(60),
        async || {
            seoul_wrote = journal(&seoul_journal).await;
            seoul_wrote.is_some()
        },
    )
    .await;
    let seoul_steps = seoul_wrote.unwrap().len();
    let late = seoul_steps - crossed_steps.len();
    eprintln!("{late} of Seoul's {seoul_steps} journal steps had not crossed at the kill");
    assert!(late > 0, "the burst's steps cross late, after Singapore's");
    support::dr::wait_for(
        "Seoul's whole journal crossed",
        Duration::from_secs(60),
        async || {
            let sg = journal(&sg_journal).await.unwrap();
            sg.iter().filter(|r| r.epoch == 0).count() >= seoul_steps
        },
    )
    .await;
    let before_flush = numbers(&sg_store, &event, &[ids.clone(), new_ids.clone()].concat()).await;
    let mut redis = redis::Client::open(sg_redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("FLUSHDB").query_async(&mut redis).await.unwrap();
    sg_keeper.start_kill().unwrap();
    sg_keeper.wait().await.unwrap();
    let mut sg_keeper = keeper("dr", &stack.kafka_dr_bootstrap, &sg_redis);
    support::dr::wait_for(
        "Singapore's projection restored from the merged journal",
        Duration::from_secs(60),
        async || {
            numbers(&sg_store, &event, &[ids.clone(), new_ids.clone()].concat()).await
                == before_flush
        },
    )
    .await;
    sg_keeper.start_kill().unwrap();
    sg_api.shutdown().await.ok();
}
