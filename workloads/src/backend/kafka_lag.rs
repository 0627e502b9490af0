//! How far a replicated cluster trails its source. MirrorMaker 2 (and MSK
//! Replicator) keep topic names and each record's timestamp, not offsets,
//! so the lag is measured in time: the age of the oldest committed record
//! in the source that the target does not hold yet. Per partition: the
//! newest timestamp in the target, then in the source the first committed
//! record after it (found by time); none there means caught up.
//!
//! Records are compared at millisecond resolution: a source record stamped
//! in the same millisecond as the target's newest counts as replicated, so
//! the lag read may be up to that record's age too small. Aborted records
//! are never replicated and never counted (both readers are
//! `read_committed`).

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
};

use super::kafka::ReplayContext;
use crate::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Records read back from a partition's end to find its newest timestamp
/// (doubled until one is found: commit markers take offsets too).
const TAIL: i64 = 32;

/// Readers of both clusters for an event's replicated topics. Blocking:
/// call from `spawn_blocking`.
pub struct LagProbe {
    source: BaseConsumer<ReplayContext>,
    target: BaseConsumer<ReplayContext>,
    topics: Vec<String>,
}

impl std::fmt::Debug for LagProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagProbe")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

fn reader(bootstrap: &str) -> Result<BaseConsumer<ReplayContext>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("twinkle-lag-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(ReplayContext)?)
}

impl LagProbe {
    /// `source`: the primary's bootstrap; `target`: this region's.
    pub fn new(source: &str, target: &str, topics: Vec<String>) -> Result<Self> {
        Ok(Self {
            source: reader(source)?,
            target: reader(target)?,
            topics,
        })
    }

    /// The lag now (`now_ms`: Unix milliseconds): the oldest unreplicated
    /// record's age over every partition of every topic, zero when caught
    /// up. A topic the target lacks counts from its first source record.
    pub fn measure(&self, now_ms: i64) -> Result<Duration> {
        let mut oldest: Option<i64> = None;
        for topic in &self.topics {
            for partition in partitions(&self.source, topic)? {
                let newest = newest_timestamp(&self.target, topic, partition)?;
                let pending = first_after(&self.source, topic, partition, newest)?;
                oldest = match (oldest, pending) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let age = oldest.map_or(0, |ts| now_ms.saturating_sub(ts).max(0));
        Ok(Duration::from_millis(u64::try_from(age).unwrap_or(0)))
    }
}

fn partitions(consumer: &BaseConsumer<ReplayContext>, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    match metadata.topics().first() {
        Some(t) if t.error().is_none() => Ok(t.partitions().iter().map(|p| p.id()).collect()),
        Some(t) => Err(Error::Backend(format!(
            "replication lag: no metadata for {topic} ({:?})",
            t.error()
        ))),
        None => Err(Error::Backend(format!(
            "replication lag: no metadata for {topic}"
        ))),
    }
}

/// The newest committed record's timestamp in a partition (`None`: none;
/// an absent topic holds none).
fn newest_timestamp(
    consumer: &BaseConsumer<ReplayContext>,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>> {
    let (low, high) = match consumer.fetch_watermarks(topic, partition, TIMEOUT) {
        Ok(marks) => marks,
        Err(KafkaError::MetadataFetch(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let mut tail = TAIL;
    loop {
        let from = high.saturating_sub(tail).max(low);
        if from >= high {
            return Ok(None);
        }
        let newest = read(consumer, topic, partition, from, |_| false)?
            .into_iter()
            .max();
        if newest.is_some() || from == low {
            return Ok(newest);
        }
        tail = tail.saturating_mul(2);
    }
}

/// The timestamp of the first committed record stamped after `after`
/// (`None`: from the start), if there is one.
fn first_after(
    consumer: &BaseConsumer<ReplayContext>,
    topic: &str,
    partition: i32,
    after: Option<i64>,
) -> Result<Option<i64>> {
    let from = match after {
        None => Offset::Beginning,
        Some(ts) => {
            let mut by_time = TopicPartitionList::new();
            by_time.add_partition_offset(topic, partition, Offset::Offset(ts.saturating_add(1)))?;
            let found = consumer.offsets_for_times(by_time, TIMEOUT)?;
            match found.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(at)) => Offset::Offset(at),
                // No record stamped later: caught up.
                _ => return Ok(None),
            }
        }
    };
    let (low, _) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
    let start = match from {
        Offset::Offset(at) => at,
        _ => low,
    };
    Ok(read(consumer, topic, partition, start, |_| true)?
        .first()
        .copied())
}

/// Timestamps of the committed records from `from` to the partition's end,
/// stopping after the first one for which `enough` says so.
fn read(
    consumer: &BaseConsumer<ReplayContext>,
    topic: &str,
    partition: i32,
    from: i64,
    enough: impl Fn(i64) -> bool,
) -> Result<Vec<i64>> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut stamps = Vec::new();
    let result = loop {
        if Instant::now() > deadline {
            break Err(Error::Backend(format!(
                "replication lag: reading {topic}/{partition} from {from} took over {TIMEOUT:?}"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => break Ok(()),
            Some(Err(err)) => break Err(err.into()),
            Some(Ok(msg)) => {
                if let Some(ts) = msg.timestamp().to_millis() {
                    stamps.push(ts);
                    if enough(ts) {
                        break Ok(());
                    }
                }
            }
        }
    };
    let _ = consumer.unassign();
    drop(assignment);
    result.map(|()| stamps)
}
