//! The production logs: three Kafka topics per event (queue, bookings,
//! outcomes), keyed by customer. Producers are idempotent with `acks=all`
//! and batch (linger a few ms, lz4) for throughput; callers get an answer
//! only after the broker acknowledged. Consumers commit offsets only when
//! told to, after the effect of a batch is durable.

use std::{
    collections::{HashMap, HashSet},
    marker::PhantomData,
    time::Duration,
};

use async_trait::async_trait;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord, Producer},
};
use twinkle_domain::EventId;

use crate::{
    Error, Result,
    ports::{Log, Progress, Record, Source},
};

/// An event's topic names: `<prefix>.queue|bookings|outcomes|journal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub queue: String,
    pub bookings: String,
    pub outcomes: String,
    /// The queue keeper's journal: one partition (its order is the order
    /// of places), kept forever.
    pub journal: String,
}

impl Topics {
    /// The operator passes its namespaced prefix `<namespace>.<name>`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            queue: format!("{prefix}.queue"),
            bookings: format!("{prefix}.bookings"),
            outcomes: format!("{prefix}.outcomes"),
            journal: format!("{prefix}.journal"),
        }
    }

    /// Outside a cluster: `twinkle.<event>.*`.
    pub fn for_event(event: &EventId) -> Self {
        Self::with_prefix(&format!("twinkle.{event}"))
    }
}

/// Creates an event's topics with a replication factor of 1 (the journal
/// with one partition): for the benchmarks and tests on a single local
/// broker. In a cluster the operator creates (and sizes) them.
pub async fn create_topics(bootstrap: &str, topics: &Topics, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic<'_>> = [&topics.queue, &topics.bookings, &topics.outcomes]
        .into_iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .chain([NewTopic::new(
            &topics.journal,
            1,
            TopicReplication::Fixed(1),
        )])
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &opts).await? {
        result.map_err(|(topic, err)| Error::Backend(format!("creating topic {topic}: {err}")))?;
    }
    Ok(())
}

/// One idempotent producer per process, shared by every log it writes.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        // Fail a request within seconds rather than hanging the customer.
        .set("message.timeout.ms", "10000")
        .create()?)
}

/// Producer side of one topic.
pub struct KafkaLog<R> {
    producer: FutureProducer,
    bootstrap: String,
    topic: String,
    timeout: Duration,
    records: PhantomData<fn(R)>,
}

impl<R> Clone for KafkaLog<R> {
    fn clone(&self) -> Self {
        Self {
            producer: self.producer.clone(),
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            timeout: self.timeout,
            records: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for KafkaLog<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .finish()
    }
}

impl<R> KafkaLog<R> {
    /// A log on `topic` through a shared [`producer`].
    pub fn new(producer: FutureProducer, bootstrap: &str, topic: String) -> Self {
        Self {
            producer,
            bootstrap: bootstrap.to_owned(),
            topic,
            timeout: Duration::from_secs(10),
            records: PhantomData,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[async_trait]
impl<R: Record> Log<R> for KafkaLog<R> {
    async fn append(&self, record: &R) -> Result<()> {
        let payload = serde_json::to_vec(record)?;
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(record.key())
                    .payload(&payload),
                self.timeout,
            )
            .await
            .map_err(|(err, _)| Error::Kafka(err))?;
        Ok(())
    }

    async fn append_all(&self, records: &[R]) -> Result<()> {
        // Futures are polled (hence enqueued) in order, so per-key order holds;
        // the idempotent producer keeps it across its own retries.
        futures::future::try_join_all(records.iter().map(|r| self.append(r))).await?;
        Ok(())
    }

    async fn replay(&self, progress: Progress<'_>) -> Result<Vec<R>> {
        replay_topic(&self.bootstrap, &self.topic, progress).await
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

/// [`read_to_end`] on a worker thread, relaying its progress.
pub async fn replay_topic<R: Record>(
    bootstrap: &str,
    topic: &str,
    progress: Progress<'_>,
) -> Result<Vec<R>> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::task::spawn_blocking(move || read_to_end::<R>(&bootstrap, &topic, &tx));
    while let Some((read, total)) = rx.recv().await {
        progress(read, total);
    }
    reader.await.map_err(|e| Error::Backend(e.to_string()))?
}

/// Reads a whole topic, every partition from its start to its end as a
/// `read_committed` reader sees it (outside any consumer group; blocking).
/// The end is the partition-EOF event, not the high watermark: a
/// transactional topic ends in commit markers no reader is ever handed, so
/// waiting to read the record at `high - 1` would wait forever.
fn read_to_end<R: Record>(
    bootstrap: &str,
    topic: &str,
    progress: &tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> Result<Vec<R>> {
    let consumer: BaseConsumer<ReplayContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("twinkle-replay-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(ReplayContext)?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    // A replay is the truth a decider decides against: an unreadable or
    // empty answer must fail it, never pass for an empty log.
    let partitions: Vec<i32> = match metadata.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            t.partitions().iter().map(|p| p.id()).collect()
        }
        Some(t) => {
            return Err(Error::Backend(format!(
                "replaying {topic}: no partitions in its metadata ({:?})",
                t.error()
            )));
        }
        None => return Err(Error::Backend(format!("replaying {topic}: no metadata"))),
    };
    let mut unfinished: HashSet<i32> = HashSet::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0u64;
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        if low > 0 {
            // Retention deleted its start: replaying the rest would forget
            // what was deleted (for the outcomes log: seats already sold).
            return Err(Error::Backend(format!(
                "replaying {topic}: partition {p} starts at offset {low}, not 0 (records were deleted): the log is not whole"
            )));
        }
        if high > low {
            unfinished.insert(p);
            total += u64::try_from(high - low).unwrap_or(0);
            assignment.add_partition_offset(topic, p, Offset::Offset(low))?;
        }
    }
    consumer.assign(&assignment)?;
    let mut out = Vec::new();
    let mut read = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !unfinished.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(Error::Backend(format!(
                "replaying {topic}: {read} of about {total} records after 5 min"
            )));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                unfinished.remove(&p);
            }
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(msg)) => {
                read += 1;
                match msg.payload().map(serde_json::from_slice::<R>) {
                    Some(Ok(record)) => out.push(record),
                    other => {
                        return Err(Error::Backend(format!(
                            "replaying {topic}: unreadable record at partition {} offset {} ({:?})",
                            msg.partition(),
                            msg.offset(),
                            other.and_then(std::result::Result::err)
                        )));
                    }
                }
                if read.is_multiple_of(1000) {
                    let _ = progress.send((read, total));
                }
            }
        }
    }
    let _ = progress.send((read, read));
    // Drop the assignment before the consumer (librdkafka hang, see FACTS).
    drop(assignment);
    Ok(out)
}

/// A replay reader's client context: partition EOF is how a replay ends,
/// not an error worth a log line (librdkafka reports it as one).
pub(super) struct ReplayContext;

impl rdkafka::ClientContext for ReplayContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};
        if !matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::error!(%error, reason, "librdkafka");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReplayContext {}

/// Consumer side: a consumer-group member reading one topic; offsets are
/// committed only by [`Source::commit`].
pub struct KafkaSource<R> {
    consumer: std::sync::Arc<StreamConsumer>,
    /// Next offset to commit per partition, for what was returned since the
    /// last commit.
    positions: HashMap<(String, i32), i64>,
    /// Next offset to read per partition of a [`Self::whole_topic`]
    /// reader, kept across commits.
    next: HashMap<i32, i64>,
    records: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for KafkaSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").finish_non_exhaustive()
    }
}

fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // A crashed member's partitions stall until its session times
        // out (librdkafka default 45 s): keep that short for a sale.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000");
    config
}

impl<R> KafkaSource<R> {
    /// A member of `group` sharing `topic`'s partitions with the others.
    pub fn new(bootstrap: &str, group: &str, topic: &str) -> Result<Self> {
        let consumer: StreamConsumer = consumer_config(bootstrap, group).create()?;
        consumer.subscribe(&[topic])?;
        Ok(Self {
            consumer: std::sync::Arc::new(consumer),
            positions: HashMap::new(),
            next: HashMap::new(),
            records: PhantomData,
        })
    }

    /// Reads every partition of `topic` itself (no group membership, so no
    /// rebalance ever moves one away), from `group`'s committed offsets;
    /// its positions are committed through a producer's transaction
    /// ([`Self::take_positions`]), never by [`Source::commit`]. Blocking.
    pub(crate) fn whole_topic(bootstrap: &str, group: &str, topic: &str) -> Result<Self> {
        let consumer: StreamConsumer = consumer_config(bootstrap, group).create()?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        let mut wanted = TopicPartitionList::new();
        for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
            wanted.add_partition(topic, p.id());
        }
        if wanted.count() == 0 {
            return Err(Error::Backend(format!("topic {topic} has no partitions")));
        }
        let committed = consumer.committed_offsets(wanted, timeout)?;
        let mut start = TopicPartitionList::new();
        let mut next = HashMap::new();
        for e in committed.elements() {
            // A partition whose committed offset could not be read must not
            // silently start from the beginning (or anywhere else).
            e.error()?;
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                // Nothing committed yet: from the start of the partition
                // (its low watermark: retention may have deleted records).
                _ => consumer.fetch_watermarks(topic, e.partition(), timeout)?.0,
            };
            next.insert(e.partition(), offset);
            start.add_partition_offset(topic, e.partition(), Offset::Offset(offset))?;
        }
        drop(committed);
        consumer.assign(&start)?;
        drop(start);
        Ok(Self {
            consumer: std::sync::Arc::new(consumer),
            positions: HashMap::new(),
            next,
            records: PhantomData,
        })
    }

    /// The positions after everything returned since the last call, to
    /// commit in a transaction, and the group they are committed for.
    pub(crate) fn take_positions(
        &mut self,
    ) -> Result<(TopicPartitionList, rdkafka::consumer::ConsumerGroupMetadata)> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in self.positions.drain() {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| Error::Backend("the consumer has no group metadata".into()))?;
        Ok((tpl, group))
    }

    /// A read, to run on a worker thread (it blocks), of where `topic`
    /// ends now: the high watermark per partition (index = partition).
    pub(crate) fn end_reader(
        &self,
        topic: &str,
    ) -> impl FnOnce() -> Result<Vec<i64>> + Send + 'static {
        let (consumer, topic) = (self.consumer.clone(), topic.to_owned());
        move || {
            let timeout = Duration::from_secs(5);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let mut partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions())
                .map(|p| p.id())
                .collect();
            partitions.sort_unstable();
            partitions
                .into_iter()
                .map(|p| Ok(consumer.fetch_watermarks(&topic, p, timeout)?.1))
                .collect()
        }
    }

    /// Whether this [`Self::whole_topic`] reader has returned everything
    /// before `end` (high watermarks per partition, as [`Self::end_reader`]).
    pub(crate) fn reached(&self, end: &[i64]) -> bool {
        // An end that does not name every partition read proves nothing.
        end.len() == self.next.len()
            && end.iter().enumerate().all(|(p, high)| {
                let p = i32::try_from(p).unwrap_or(i32::MAX);
                self.next.get(&p).is_some_and(|next| next >= high)
            })
    }

    /// Partitions this reader was assigned.
    pub(crate) fn assigned(&self) -> usize {
        self.next.len()
    }
}

#[async_trait]
impl<R: Record> Source<R> for KafkaSource<R> {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<R>> {
        let mut batch = Vec::new();
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(batch),
            Ok(msg) => msg?.detach(),
        };
        let mut pending = vec![first];
        // Drain what is already buffered, without waiting for more.
        while pending.len() < max {
            match tokio::time::timeout(Duration::from_millis(2), self.consumer.recv()).await {
                Ok(Ok(msg)) => pending.push(msg.detach()),
                // Keep what was read (returning the error would drop it
                // while the consumer's position has moved past it).
                Ok(Err(err)) => {
                    tracing::warn!(%err, "consumer error while draining a batch");
                    break;
                }
                Err(_) => break,
            }
        }
        for msg in pending {
            self.positions
                .insert((msg.topic().to_owned(), msg.partition()), msg.offset() + 1);
            if let Some(next) = self.next.get_mut(&msg.partition()) {
                *next = msg.offset() + 1;
            }
            match msg.payload().map(serde_json::from_slice::<R>) {
                Some(Ok(record)) => batch.push(record),
                other => tracing::error!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    error = ?other.and_then(Result::err),
                    "skipping an undecodable record (only our services write this topic)"
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
