//! The production log: one Kafka topic per event (`twinkle.<event>.queue` by
//! default), keyed by queue id. The producer is idempotent with `acks=all`,
//! and batches (linger a few ms, lz4) for throughput; the API answers only
//! after the broker acknowledged the entry.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord, Producer},
};

use crate::{
    Error, Result,
    ports::{QueueEntry, QueueLog, QueueSource},
};

/// The default queue topic of an event.
pub fn queue_topic(event: &twinkle_domain::EventId) -> String {
    format!("twinkle.{event}.queue")
}

/// Producer side: appends entries to the event's queue topic.
#[derive(Clone)]
pub struct KafkaLog {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .finish()
    }
}

impl KafkaLog {
    pub fn new(bootstrap: &str, topic: String) -> Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("compression.type", "lz4")
            // Fail a request within seconds rather than hanging the customer.
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(Self {
            producer,
            topic,
            timeout: Duration::from_secs(10),
        })
    }
}

#[async_trait]
impl QueueLog for KafkaLog {
    async fn append(&self, entry: &QueueEntry) -> Result<()> {
        let payload = serde_json::to_vec(entry)?;
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(entry.queue_id.as_str())
                    .payload(&payload),
                self.timeout,
            )
            .await
            .map_err(|(err, _)| Error::Kafka(err))?;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map_err(Error::Kafka)
                .and_then(|m| match m.topics().first().and_then(|t| t.error()) {
                    None => Ok(()),
                    Some(e) => Err(Error::Backend(format!("topic {topic}: {e:?}"))),
                })
        })
        .await
        .map_err(|e| Error::Backend(e.to_string()))?
    }
}

/// Consumer side: a consumer-group member reading the queue topic; offsets
/// are committed only by [`QueueSource::commit`], after the store applied
/// the batch, so a crash redelivers instead of losing.
pub struct KafkaSource {
    consumer: StreamConsumer,
    /// Next offset to commit per partition, for what was returned so far.
    positions: HashMap<(String, i32), i64>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").finish_non_exhaustive()
    }
}

impl KafkaSource {
    pub fn new(bootstrap: &str, group: &str, topic: &str) -> Result<Self> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            // A crashed member's partitions stall until its session times
            // out (librdkafka default 45 s): keep that short for a queue.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "2000")
            .create()?;
        consumer.subscribe(&[topic])?;
        Ok(Self {
            consumer,
            positions: HashMap::new(),
        })
    }
}

#[async_trait]
impl QueueSource for KafkaSource {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<QueueEntry>> {
        let mut batch = Vec::new();
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(batch),
            Ok(msg) => msg?.detach(),
        };
        let mut pending = vec![first];
        // Drain what is already buffered, without waiting for more.
        while pending.len() < max {
            match tokio::time::timeout(Duration::from_millis(2), self.consumer.recv()).await {
                Ok(msg) => pending.push(msg?.detach()),
                Err(_) => break,
            }
        }
        for msg in pending {
            self.positions
                .insert((msg.topic().to_owned(), msg.partition()), msg.offset() + 1);
            match msg.payload().map(serde_json::from_slice::<QueueEntry>) {
                Some(Ok(entry)) => batch.push(entry),
                other => tracing::error!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    error = ?other.and_then(Result::err),
                    "skipping undecodable queue entry (only our API writes this topic)"
                ),
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self) -> Result<()> {
        if self.positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in self.positions.drain() {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        self.consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    }
}
