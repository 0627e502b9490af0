//! A single writer's fenced session on Kafka (the decider's, the queue
//! keeper's): a transactional producer whose `transactional.id` names the
//! writer's group and input topic, so opening a session bumps the producer
//! epoch, aborts whatever a previous session left open and makes the broker
//! refuse that session's later writes (a paused zombie, a pod cut off from
//! Redis that lost its lease without knowing it). The records written and
//! the consumed offsets of the input topic are committed in one transaction
//! (`read_committed` readers see both or neither), so a crash at any point
//! either handled a batch completely or not at all.
//!
//! ```text
//!  bookings ──(all partitions, assigned)──▶ decider ──txn{outcomes, offsets}──▶ outcomes
//!  queue    ──(all partitions, assigned)──▶ keeper  ──txn{steps, offsets}────▶ queue journal
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
    ports::{BookingOutcome, BookingRequest, FencedLog, LogEnd, Progress, Record, Source},
};

/// Longest a session's transaction may stay open: a writer killed
/// mid-commit holds back `read_committed` readers of its output topic at
/// most this long (a new session aborts it at once when it opens).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each blocking transaction call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A fenced log on Kafka: the `input` topic read whole under the writer's
/// group, records appended to the `output` topic.
pub struct KafkaFencedLog<In, Out> {
    bootstrap: String,
    group: String,
    transactional_id: String,
    input: String,
    output: String,
    session: Option<Session<In>>,
    _out: std::marker::PhantomData<fn(Out)>,
}

/// The decider's: bookings in, outcomes out.
pub type KafkaDecisionLog = KafkaFencedLog<BookingRequest, BookingOutcome>;

struct Session<In> {
    producer: FutureProducer,
    source: KafkaSource<In>,
}

impl<In, Out> std::fmt::Debug for KafkaFencedLog<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaFencedLog")
            .field("transactional_id", &self.transactional_id)
            .field("open", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl<In, Out> KafkaFencedLog<In, Out> {
    /// `group` is the writer's consumer group (its committed offsets are
    /// where a session resumes); the transactional id names the group and
    /// the event's input topic, so every writer of one event fences every
    /// other, and writers of other events (which may share the group name)
    /// none.
    pub fn new(bootstrap: &str, group: &str, input: &str, output: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            group: group.to_owned(),
            transactional_id: format!("{group}.{input}.txn"),
            input: input.to_owned(),
            output: output.to_owned(),
            session: None,
            _out: std::marker::PhantomData,
        }
    }

    fn session(&mut self) -> Result<&mut Session<In>> {
        self.session
            .as_mut()
            .ok_or_else(|| Error::Backend(format!("the fenced log of {} is not open", self.input)))
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
impl<In: Record, Out: Record> FencedLog<In, Out> for KafkaFencedLog<In, Out> {
    async fn open(&mut self, progress: Progress<'_>) -> Result<Vec<Out>> {
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
        // session can add to what we are about to replay. Retried while
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
            .notify(|err, after| tracing::info!(%err, ?after, "fencing earlier sessions: retrying"))
            .await?;
        let (bootstrap, group, topic) = (
            self.bootstrap.clone(),
            self.group.clone(),
            self.input.clone(),
        );
        let source = blocking(move || KafkaSource::whole_topic(&bootstrap, &group, &topic)).await?;

        let history = replay_topic(&self.bootstrap, &self.output, progress).await?;
        self.session = Some(Session { producer, source });
        Ok(history)
    }

    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<In>> {
        self.session()?.source.next_batch(max, wait).await
    }

    async fn end(&mut self) -> Result<LogEnd> {
        let topic = self.input.clone();
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
                "the topic {topic} grew from {assigned} to {partitions} partitions; reopening"
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

    async fn commit(&mut self, outcomes: &[Out]) -> Result<()> {
        let topic = self.output.clone();
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
                // A step with no input (an admission tick) moves no offset.
                if positions.count() > 0 {
                    committing
                        .send_offsets_to_transaction(&positions, &group, CALL_TIMEOUT)
                        .map_err(|e| transaction_error(&committing, e))?;
                }
                committing
                    .commit_transaction(CALL_TIMEOUT)
                    .map_err(|e| transaction_error(&committing, e))
            })
            .await
        }
        .await;
        if result.is_err() {
            // Whatever happened, this session is over: its consumer has read
            // past what was committed. Abort (best effort: a fenced producer
            // cannot), and the writer opens a new session from the log.
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
