//! The decider's fenced session on Kafka: a transactional producer whose
//! `transactional.id` names the event's decider, so opening a session bumps
//! the producer epoch, aborts whatever a previous decider left open and
//! makes the broker refuse that decider's later writes (a paused zombie, a
//! pod cut off from Redis that lost its lease without knowing it). Decisions and the consumed offsets of the
//! bookings topic are committed in one transaction (`read_committed`
//! readers see both or neither), so a crash at any point either decided a
//! batch completely or not at all.
//!
//! ```text
//!  bookings ──(all partitions, assigned)──▶ decider ──txn{outcomes, offsets}──▶ outcomes
//! ```

use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use rdkafka::{
    ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, FutureRecord, Producer},
};

use super::kafka::{KafkaSource, replay_topic};
use crate::{
    Error, Result,
    ports::{BookingOutcome, BookingRequest, DecisionLog, LogEnd, Progress, Record, Source},
};

/// Longest a decider's transaction may stay open: a decider killed
/// mid-commit holds back `read_committed` readers of the outcomes topic at
/// most this long (a new decider aborts it at once when it opens).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each blocking transaction call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// An event's decision log on Kafka: the bookings topic read under the
/// decider group, decisions appended to the outcomes topic.
pub struct KafkaDecisionLog {
    bootstrap: String,
    group: String,
    transactional_id: String,
    bookings: String,
    outcomes: String,
    session: Option<Session>,
}

struct Session {
    producer: FutureProducer,
    source: KafkaSource<BookingRequest>,
}

impl std::fmt::Debug for KafkaDecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDecisionLog")
            .field("transactional_id", &self.transactional_id)
            .field("open", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl KafkaDecisionLog {
    /// `group` is the decider's consumer group (its committed offsets are
    /// where a session resumes); the transactional id names the group and
    /// the event's bookings topic, so every decider of one event fences
    /// every other, and deciders of other events (which may share the
    /// group name) none.
    pub fn new(bootstrap: &str, group: &str, bookings: &str, outcomes: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            group: group.to_owned(),
            transactional_id: format!("{group}.{bookings}.txn"),
            bookings: bookings.to_owned(),
            outcomes: outcomes.to_owned(),
            session: None,
        }
    }

    fn session(&mut self) -> Result<&mut Session> {
        self.session
            .as_mut()
            .ok_or_else(|| Error::Backend("the decision log is not open".into()))
    }
}

fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// A fencing error is [`Error::Fenced`], whichever call saw it: a fenced
/// producer fails its queued messages with "purged", and only its fatal
/// error names the cause.
fn transaction_error(producer: &FutureProducer, err: KafkaError) -> Error {
    let fatal = producer.client().fatal_error().map(|(code, _)| code);
    if err.rdkafka_error_code().is_some_and(is_fencing) || fatal.is_some_and(is_fencing) {
        Error::Fenced
    } else {
        Error::Kafka(err)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(e.to_string()))?
}

#[async_trait]
impl DecisionLog for KafkaDecisionLog {
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<BookingOutcome>> {
        self.session = None;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("transactional.id", &self.transactional_id)
            .set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            )
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("compression.type", "lz4")
            .set(
                "message.timeout.ms",
                (TRANSACTION_TIMEOUT.as_millis() - 1000).to_string(),
            )
            .create()?;
        // Fence first, read after: once the epoch is ours, no earlier
        // decider can add to what we are about to replay. Retried while
        // the coordinator is not ready (a broker's first transaction, a
        // coordinator moving); anything else ends the attempt.
        let fence = || {
            let fencing = producer.clone();
            blocking(move || {
                fencing
                    .init_transactions(CALL_TIMEOUT)
                    .map_err(|e| transaction_error(&fencing, e))
            })
        };
        fence
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(15),
            )
            .when(|err| matches!(err, Error::Kafka(KafkaError::Transaction(e)) if e.is_retriable()))
            .notify(|err, after| tracing::info!(%err, ?after, "fencing earlier deciders: retrying"))
            .await?;
        let (bootstrap, group, topic) = (
            self.bootstrap.clone(),
            self.group.clone(),
            self.bookings.clone(),
        );
        let source = blocking(move || KafkaSource::whole_topic(&bootstrap, &group, &topic)).await?;

        let history = replay_topic(&self.bootstrap, &self.outcomes, progress).await?;
        self.session = Some(Session { producer, source });
        Ok(history)
    }

    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<BookingRequest>> {
        self.session()?.source.next_batch(max, wait).await
    }

    async fn end(&mut self) -> Result<LogEnd> {
        let topic = self.bookings.clone();
        let source = &self.session()?.source;
        let assigned = source.assigned();
        let end = blocking(source.end_reader(&topic)).await?;
        let partitions = end.len();
        if partitions > assigned {
            // The operator grew the topic: producers already write to the
            // new partitions, which this session does not read. A new
            // session assigns them all.
            self.session = None;
            return Err(Error::Backend(format!(
                "the bookings topic {topic} grew from {assigned} to {partitions} partitions; reopening"
            )));
        }
        Ok(LogEnd(end))
    }

    fn reached(&self, end: &LogEnd) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.source.reached(&end.0))
    }

    fn close(&mut self) {
        // Dropping librdkafka clients blocks (flush, close): not on the
        // runtime's threads.
        if let Some(session) = self.session.take() {
            tokio::task::spawn_blocking(move || drop(session));
        }
    }

    async fn commit(&mut self, outcomes: &[BookingOutcome]) -> Result<()> {
        let topic = self.outcomes.clone();
        let session = self.session()?;
        let (positions, group) = session.source.take_positions()?;
        if positions.count() == 0 && outcomes.is_empty() {
            return Ok(());
        }
        let producer = session.producer.clone();
        let result = async {
            producer
                .begin_transaction()
                .map_err(|e| transaction_error(&producer, e))?;
            let payloads = outcomes
                .iter()
                .map(serde_json::to_vec)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            // Polled (hence enqueued) in order: per-customer order holds.
            futures::future::try_join_all(outcomes.iter().zip(&payloads).map(|(o, payload)| {
                producer.send(
                    FutureRecord::to(&topic).key(o.key()).payload(payload),
                    CALL_TIMEOUT,
                )
            }))
            .await
            .map_err(|(err, _)| transaction_error(&producer, err))?;
            let committing = producer.clone();
            blocking(move || {
                committing
                    .send_offsets_to_transaction(&positions, &group, CALL_TIMEOUT)
                    .and_then(|()| committing.commit_transaction(CALL_TIMEOUT))
                    .map_err(|e| transaction_error(&committing, e))
            })
            .await
        }
        .await;
        if result.is_err() {
            // Whatever happened, this session is over: its consumer has read
            // past what was committed. Abort (best effort: a fenced producer
            // cannot), and the decider opens a new session from the log.
            let aborting = producer.clone();
            let _ = blocking(move || {
                aborting
                    .abort_transaction(CALL_TIMEOUT)
                    .map_err(|e| transaction_error(&aborting, e))
            })
            .await;
            self.session = None;
        }
        result
    }
}
