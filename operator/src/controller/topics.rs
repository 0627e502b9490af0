//! Kafka topics of an event through the Admin API: create, adopt, grow,
//! never shrink (Kafka cannot remove partitions; asking for fewer is
//! reported, not applied), keep retention in line with the spec.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::{
    ClientConfig,
    admin::{
        AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
        TopicReplication,
    },
    client::DefaultClientContext,
    types::RDKafkaErrorCode,
};

use crate::plan::TopicPlan;

/// How long one Admin call may take before Kafka counts as unavailable.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(8);

/// Why the topics are not (all) as planned.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The cluster did not answer; the reconcile requeues. The message
    /// leaves the bootstrap servers out: they may come from a Secret, and
    /// this text ends up in conditions, Events and logs.
    #[error("Kafka is unavailable: {why}")]
    Unavailable { why: String },
    /// Kafka answered with an error for a topic.
    #[error("topic {topic}: {why}")]
    Failed { topic: String, why: String },
}

/// What the reconcile did, for Events and the condition.
#[derive(Debug, Default)]
pub struct TopicOutcome {
    pub created: Vec<String>,
    pub grown: Vec<(String, i32, i32)>,
    /// Topics with more partitions than planned: `(topic, have, want)`.
    pub not_shrunk: Vec<(String, i32, i32)>,
}

type Admin = AdminClient<DefaultClientContext>;

/// One Admin client per bootstrap string, kept for the operator's life and
/// shared by every reconcile. A librdkafka client costs threads and broker
/// connections to build and blocks while it is destroyed, and a reconcile
/// runs on every change of an event or of what it owns (17–21 per event
/// when 100 arrive at once, BENCHMARKS.md). librdkafka reconnects by itself
/// when the cluster comes back.
#[derive(Default)]
pub struct Admins(Mutex<HashMap<String, Arc<Admin>>>);

impl std::fmt::Debug for Admins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys may come from Secrets: not printed.
        f.write_str("Admins")
    }
}

impl Admins {
    /// The map stays usable even if a thread panicked holding it: it is
    /// only a cache.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Admin>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, bootstrap: &str) -> Result<Arc<Admin>, TopicError> {
        let mut admins = self.lock();
        if let Some(admin) = admins.get(bootstrap) {
            return Ok(admin.clone());
        }
        let admin: Arc<Admin> = Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", bootstrap)
                .set("socket.timeout.ms", "8000")
                .create()
                .map_err(|e| TopicError::Unavailable { why: e.to_string() })?,
        );
        admins.insert(bootstrap.to_owned(), admin.clone());
        Ok(admin)
    }

    /// A cluster that does not answer loses its client, so a mistyped or
    /// retired bootstrap string does not keep a client (threads, retries)
    /// for the operator's life; the next reconcile builds a fresh one.
    fn forget_if_unavailable<T>(
        &self,
        bootstrap: &str,
        result: Result<T, TopicError>,
    ) -> Result<T, TopicError> {
        if matches!(result, Err(TopicError::Unavailable { .. })) {
            self.lock().remove(bootstrap);
        }
        result
    }

    /// [`ensure`] with this cache's client for `bootstrap`.
    pub async fn ensure(
        &self,
        bootstrap: &str,
        topics: &[TopicPlan],
    ) -> Result<TopicOutcome, TopicError> {
        let result = ensure(&*self.get(bootstrap)?, topics).await;
        self.forget_if_unavailable(bootstrap, result)
    }

    /// [`delete`] with this cache's client for `bootstrap`.
    pub async fn delete(&self, bootstrap: &str, names: &[String]) -> Result<(), TopicError> {
        let result = delete(&*self.get(bootstrap)?, names).await;
        self.forget_if_unavailable(bootstrap, result)
    }
}

/// Partitions of every existing topic. Metadata for all topics rather than
/// the event's: asking for one topic by name can auto-create it.
async fn partitions(admin: &Admin) -> Result<HashMap<String, i32>, TopicError> {
    let metadata =
        tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, KAFKA_TIMEOUT))
            .map_err(|e| TopicError::Unavailable { why: e.to_string() })?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| {
            (
                t.name().to_owned(),
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
            )
        })
        .collect())
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT))
}

fn check(results: Vec<Result<String, (String, RDKafkaErrorCode)>>) -> Result<(), TopicError> {
    for result in results {
        if let Err((topic, code)) = result
            && code != RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(TopicError::Failed {
                topic,
                why: code.to_string(),
            });
        }
    }
    Ok(())
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Brings the planned topics into existence with at least their planned
/// partitions and the planned retention.
async fn ensure(admin: &Admin, topics: &[TopicPlan]) -> Result<TopicOutcome, TopicError> {
    let existing = partitions(admin).await?;
    let unavailable =
        |e: rdkafka::error::KafkaError| TopicError::Unavailable { why: e.to_string() };
    let mut outcome = TopicOutcome::default();
    let retention: Vec<String> = topics
        .iter()
        .map(|t| {
            t.retention_ms
                .map_or_else(|| "-1".to_owned(), |ms| ms.to_string())
        })
        .collect();

    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .filter(|(t, _)| !existing.contains_key(&t.name))
        .map(|(t, ms)| {
            NewTopic::new(
                &t.name,
                count(t.partitions),
                TopicReplication::Fixed(count(t.replication_factor)),
            )
            .set("retention.ms", ms)
        })
        .collect();
    if !new.is_empty() {
        check(
            admin
                .create_topics(&new, &options())
                .await
                .map_err(unavailable)?,
        )?;
        outcome.created = new.iter().map(|t| t.name.to_owned()).collect();
    }

    let mut grow = Vec::new();
    let mut adopted = Vec::new();
    for (topic, ms) in topics.iter().zip(&retention) {
        let Some(&have) = existing.get(&topic.name) else {
            continue;
        };
        adopted
            .push(AlterConfig::new(ResourceSpecifier::Topic(&topic.name)).set("retention.ms", ms));
        let want = count(topic.partitions);
        if have < want {
            grow.push(NewPartitions::new(
                &topic.name,
                usize::try_from(want).unwrap_or(0),
            ));
            outcome.grown.push((topic.name.clone(), have, want));
        } else if have > want {
            outcome.not_shrunk.push((topic.name.clone(), have, want));
        }
    }
    if !grow.is_empty() {
        check(
            admin
                .create_partitions(&grow, &options())
                .await
                .map_err(unavailable)?,
        )?;
    }
    if !adopted.is_empty() {
        for result in admin
            .alter_configs(&adopted, &options())
            .await
            .map_err(unavailable)?
        {
            if let Err((resource, code)) = result {
                return Err(TopicError::Failed {
                    topic: format!("{resource:?}"),
                    why: code.to_string(),
                });
            }
        }
    }
    Ok(outcome)
}

/// Deletes the event's topics (deletionPolicy Delete); missing ones are fine.
async fn delete(admin: &Admin, names: &[String]) -> Result<(), TopicError> {
    let existing = partitions(admin).await?;
    let names: Vec<&str> = names
        .iter()
        .filter(|n| existing.contains_key(n.as_str()))
        .map(String::as_str)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let results = admin
        .delete_topics(&names, &options())
        .await
        .map_err(|e| TopicError::Unavailable { why: e.to_string() })?;
    for result in results {
        if let Err((topic, code)) = result
            && code != RDKafkaErrorCode::UnknownTopicOrPartition
        {
            return Err(TopicError::Failed {
                topic,
                why: code.to_string(),
            });
        }
    }
    Ok(())
}
