//! Kill -9 the queue keeper process (a real `twinkle queue-consumer` on real
//! Kafka + Redis) while it works through a stream of entries, restart it, and
//! prove every entry got exactly one sequence number, without gaps, in topic
//! order within each partition, and that the journal (read by its own
//! consumer) gives every entry the number Redis shows.

// A failed unwrap is a failed test here; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::HashMap, time::Duration};

use futures::{StreamExt, stream};
use jiff::Timestamp;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use twinkle_domain::QueueId;
use twinkle_e2e::stack::{Stack, unique};
use twinkle_workloads::{
    backend::{kafka::KafkaLog, redis_store::RedisStore},
    ports::{Log, QueueEntry, QueueStore},
};

const ENTRIES: usize = 20_000;
const PARTITIONS: i32 = 3;

fn spawn_consumer(stack: &Stack, dir: &std::path::Path, group: &str) -> tokio::process::Child {
    support::spawn_role(
        "queue-consumer",
        dir,
        &stack.kafka_bootstrap,
        &stack.redis_url,
        group,
    )
}

/// (partition, offset, queue id) of every record in the topic.
fn read_topic(stack: &Stack, topic: &str) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    drop(tpl);
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while records.len() < ENTRIES && std::time::Instant::now() < deadline {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(500)) {
            let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
            records.push((msg.partition(), msg.offset(), key));
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_neither_duplicates_nor_skips() {
    let stack = Stack::require();
    let event = support::event(1, 1);
    support::create_topics(&stack, &event, PARTITIONS).await;
    let dir = std::env::temp_dir().join(unique("crash"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), support::SECRET).unwrap();
    let topic = twinkle_workloads::backend::kafka::Topics::for_event(&event.id).queue;
    let store = RedisStore::connect(&stack.redis_url).await.unwrap();
    let group = unique("assigner");

    let mut consumer = spawn_consumer(&stack, &dir, &group);
    // Produce while the consumer consumes.
    let producer = twinkle_workloads::backend::kafka::producer(&stack.kafka_bootstrap).unwrap();
    let log = KafkaLog::<QueueEntry>::new(producer, &stack.kafka_bootstrap, topic.clone());
    let ids: Vec<QueueId> = (0..ENTRIES)
        .map(|i| format!("c{i:05}").parse().unwrap())
        .collect();
    let producer = {
        let ids = ids.clone();
        let event_id = event.id.clone();
        tokio::spawn(async move {
            stream::iter(ids)
                .for_each_concurrent(256, |queue_id| {
                    let log = log.clone();
                    let event = event_id.clone();
                    async move {
                        let entry = QueueEntry {
                            event,
                            queue_id,
                            entered_at: Timestamp::now(),
                            pre_queue: false,
                        };
                        log.append(&entry).await.unwrap();
                    }
                })
                .await;
        })
    };

    // Kill -9 once it is well into the stream.
    let mut killed_at = 0;
    for _ in 0..600 {
        killed_at = store.counters(&event.id).await.unwrap().value.assigned;
        if killed_at >= 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    consumer.start_kill().unwrap(); // SIGKILL: no clean-up, no final commit
    consumer.wait().await.unwrap();
    assert!(
        killed_at > 0 && (killed_at as usize) < ENTRIES,
        "killed mid-stream (assigned {killed_at} of {ENTRIES})"
    );
    producer.await.unwrap();

    // A fresh process of the same group picks up from the committed offsets.
    let mut consumer = spawn_consumer(&stack, &dir, &group);
    let mut assigned = 0;
    for _ in 0..600 {
        assigned = store.counters(&event.id).await.unwrap().value.assigned;
        if assigned as usize >= ENTRIES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let any redelivered tail settle, then check nothing moved.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let final_assigned = store.counters(&event.id).await.unwrap().value.assigned;
    consumer.start_kill().unwrap();
    consumer.wait().await.unwrap();
    assert_eq!(
        assigned as usize, ENTRIES,
        "every entry assigned after restart"
    );
    assert_eq!(
        final_assigned as usize, ENTRIES,
        "redelivery created no extra numbers"
    );

    let mut seq_of: HashMap<String, u64> = HashMap::new();
    for chunk in ids.chunks(1000) {
        let seqs = store.sequences(&event.id, chunk).await.unwrap().value;
        for (id, seq) in chunk.iter().zip(seqs) {
            seq_of.insert(id.to_string(), seq.expect("every entry has a number"));
        }
    }
    let mut all: Vec<u64> = seq_of.values().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=ENTRIES as u64).collect::<Vec<_>>(),
        "no duplicates, no gaps"
    );

    // The journal, replayed as a new keeper would, gives the same places.
    let journal = twinkle_workloads::backend::kafka::Topics::for_event(&event.id).journal;
    let steps: Vec<twinkle_domain::QueueStep> = twinkle_workloads::backend::kafka::replay_topic::<
        twinkle_workloads::ports::JournalRecord,
    >(&stack.kafka_bootstrap, &journal, &|_, _| {})
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.step)
    .collect();
    let places = twinkle_domain::Places::replay(&steps).unwrap();
    assert_eq!(places.assigned() as usize, ENTRIES);
    for (id, seq) in &seq_of {
        assert_eq!(
            places.sequence(&id.parse().unwrap()),
            Some(*seq),
            "{id}: journal and Redis agree"
        );
    }

    // Topic order is kept within each partition.
    let mut records = read_topic(&stack, &topic);
    assert_eq!(records.len(), ENTRIES);
    records.sort_unstable();
    for partition in 0..PARTITIONS {
        let seqs: Vec<u64> = records
            .iter()
            .filter(|(p, _, _)| *p == partition)
            .map(|(_, _, id)| seq_of[id])
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: sequence numbers follow offsets"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The operator grows the queue topic for a bigger forecast while the
/// keeper runs: entries on the new partitions get their numbers too (the
/// keeper's session notices the growth and a new one reads them all).
#[tokio::test(flavor = "multi_thread")]
async fn entries_on_grown_partitions_are_placed() {
    use rdkafka::{
        admin::{AdminClient, AdminOptions, NewPartitions},
        producer::{FutureProducer, FutureRecord},
    };
    let stack = Stack::require();
    let event = support::event(1, 1);
    support::create_topics(&stack, &event, 1).await;
    let dir = std::env::temp_dir().join(unique("grow"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), serde_json::to_vec(&event).unwrap()).unwrap();
    std::fs::write(dir.join("secret"), support::SECRET).unwrap();
    let topic = twinkle_workloads::backend::kafka::Topics::for_event(&event.id).queue;
    let store = RedisStore::connect(&stack.redis_url).await.unwrap();
    let mut keeper = spawn_consumer(&stack, &dir, &support::group(event.id.as_str()));
    // A producer per phase: one made after the growth knows the new
    // partitions at once.
    let producer = || -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_bootstrap)
            .create()
            .unwrap()
    };
    let send = |producer: FutureProducer, partition: i32, id: &str| {
        let entry = QueueEntry {
            event: event.id.clone(),
            queue_id: id.parse().unwrap(),
            entered_at: Timestamp::now(),
            pre_queue: false,
        };
        let (topic, key) = (topic.clone(), id.to_owned());
        async move {
            let payload = serde_json::to_vec(&entry).unwrap();
            let record = FutureRecord::to(&topic)
                .partition(partition)
                .key(&key)
                .payload(&payload);
            producer
                .send(record, Duration::from_secs(10))
                .await
                .unwrap();
        }
    };
    // The keeper is up and reading the one partition.
    send(producer(), 0, "g0").await;
    let first: QueueId = "g0".parse().unwrap();
    let up = support::eventually(Duration::from_secs(30), || async {
        store
            .sequences(&event.id, std::slice::from_ref(&first))
            .await
            .unwrap()
            .value[0]
            .is_some()
    })
    .await;
    assert!(up, "the keeper placed the first entry");

    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let grown = admin
        .create_partitions(&[NewPartitions::new(&topic, 3)], &AdminOptions::new())
        .await
        .unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
    // Straight onto the new partitions (as producers will, once their
    // metadata is refreshed).
    let ids: Vec<QueueId> = ["g1", "g2"].iter().map(|s| s.parse().unwrap()).collect();
    let after = producer();
    send(after.clone(), 1, "g1").await;
    send(after, 2, "g2").await;
    let placed = support::eventually(Duration::from_secs(30), || async {
        let seqs = store.sequences(&event.id, &ids).await.unwrap().value;
        seqs.iter().all(Option::is_some)
    })
    .await;
    keeper.start_kill().unwrap();
    assert!(placed, "entries on partitions 1 and 2 were placed");
    std::fs::remove_dir_all(dir).ok();
}
