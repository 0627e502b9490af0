//! MirrorMaker 2 from the test stack replicates Seoul's Kafka into
//! Singapore's for real: the topics of `dr-*` events appear in Singapore
//! under the same names and partition counts, committed records cross in
//! partition order, records of an aborted transaction never do, and other
//! events' topics stay in Seoul. Prints the replication lag it measured.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Message, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord, Producer},
};
use twinkle_e2e::stack::{Stack, unique};

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

async fn create(bootstrap: &str, topic: &str, partitions: i32) {
    let created = admin(bootstrap)
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .expect("create_topics request");
    assert!(created[0].is_ok(), "topic creation failed: {created:?}");
}

/// Partition count of `topic` in the cluster, if it exists there.
fn partitions(bootstrap: &str, topic: &str) -> Option<usize> {
    let admin = admin(bootstrap);
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("metadata");
    let t = metadata.topics().first()?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
}

async fn send(producer: &FutureProducer, topic: &str, payload: &str) {
    producer
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(0)
                .payload(payload),
            TIMEOUT,
        )
        .await
        .map_err(|(err, _)| err)
        .expect("delivered");
}

/// Every committed value of partition 0, read from the start to its end
/// (the partition-EOF event, not a time: a fresh reader's first fetch can
/// take a while).
fn read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("mirror-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + TIMEOUT;
    let mut values = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            Some(Err(err)) => panic!("reading {topic}: {err}"),
            None => {}
        }
    }
    panic!("{topic}: no end of partition 0 within {TIMEOUT:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_records_of_dr_events_cross_to_singapore_and_aborted_ones_do_not() {
    let stack = Stack::require();
    let event = unique("dr");
    let topic = format!("twinkle.{event}.outcomes");
    let other = format!("twinkle.{}.outcomes", unique("ev"));
    create(&stack.kafka_bootstrap, &topic, 2).await;
    create(&stack.kafka_bootstrap, &other, 1).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("transactional.id", unique("mirror-smoke"))
        .create()
        .expect("producer");
    producer.init_transactions(TIMEOUT).expect("init");
    producer.begin_transaction().unwrap();
    for i in 0..3 {
        send(&producer, &topic, &format!("committed-{i}")).await;
    }
    producer.commit_transaction(TIMEOUT).expect("commit");
    producer.begin_transaction().unwrap();
    send(&producer, &topic, "aborted-0").await;
    send(&producer, &topic, "aborted-1").await;
    producer.abort_transaction(TIMEOUT).expect("abort");
    producer.begin_transaction().unwrap();
    send(&producer, &topic, "committed-3").await;
    send(&producer, &other, "not-a-dr-event").await;
    producer.commit_transaction(TIMEOUT).expect("commit");
    let committed_at = Instant::now();

    // MirrorMaker finds the new topic (refresh every second) and copies it.
    let expected: Vec<String> = (0..4).map(|i| format!("committed-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let lag = loop {
        if partitions(&stack.kafka_dr_bootstrap, &topic).is_some() {
            let seen = read_committed(&stack.kafka_dr_bootstrap, &topic);
            if seen.len() >= expected.len() {
                break committed_at.elapsed();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{topic} was not replicated into Singapore within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "replicated a new dr event's topic in {} ms",
        lag.as_millis()
    );

    assert_eq!(
        partitions(&stack.kafka_dr_bootstrap, &topic),
        Some(2),
        "same partition count in Singapore"
    );
    // Partition order: the aborted records sat between committed-2 and
    // committed-3 in Seoul, so having seen committed-3 they would have
    // been read by now if they had crossed.
    let seen = read_committed(&stack.kafka_dr_bootstrap, &topic);
    assert_eq!(seen, expected, "only committed records, in partition order");

    // One record more on a topic that now exists: the steady-state lag.
    let plain: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .expect("producer");
    let sent_at = Instant::now();
    send(&plain, &topic, "committed-4").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = read_committed(&stack.kafka_dr_bootstrap, &topic);
        if seen.last().map(String::as_str) == Some("committed-4") {
            break;
        }
        assert!(Instant::now() < deadline, "committed-4 never crossed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "replication lag of one record (with read polling): {} ms",
        sent_at.elapsed().as_millis()
    );

    assert_eq!(
        partitions(&stack.kafka_dr_bootstrap, &other),
        None,
        "a non-DR event's topics stay in Seoul"
    );
}
