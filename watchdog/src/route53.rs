//! The Route53 side: reading the three weighted records back, writing them
//! in one change batch, waiting for INSYNC, and retrying what Route53 asks
//! to be retried.
//!
//! Ownership: the watchdog writes exactly three record sets — the configured
//! name and type with the three configured `SetIdentifier`s — plus the lease
//! TXT record, and only ever UPSERTs the weighted ones (it never deletes
//! them). Other records under the same name are reported and left alone.
//! Every weight batch also carries the lease compare-and-set
//! ([`crate::lease`]), so it can only succeed while the lease record holds
//! exactly this watchdog's value: the lease record is the ownership marker
//! that says a twinkle watchdog manages this name, and who.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::config::retry::RetryConfig as SdkRetryConfig;
use aws_sdk_route53::config::timeout::TimeoutConfig;
use aws_sdk_route53::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use backon::{ExponentialBuilder, Retryable};
use prometheus_client::metrics::counter::Counter;
use twinkle_dr::{PerTarget, Target, Weights};

use crate::config::{RecordType, RetryConfig, WatchdogConfig, fqdn};
use crate::{Error, Result};

/// The network clients the watchdog uses. Built once; cheap to clone.
#[derive(Debug, Clone)]
pub struct Clients {
    pub route53: Client,
    /// Probes: short timeout, no redirects, no pooling.
    pub probe: reqwest::Client,
    /// Webhooks: their own timeout.
    pub webhook: reqwest::Client,
}

impl Clients {
    /// Production: credentials from the default chain (ECS task role, IRSA,
    /// environment).
    pub async fn load(config: &WatchdogConfig) -> Result<Clients> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.route53.region.clone()))
            .load()
            .await;
        Clients::from_sdk_config(&sdk, config)
    }

    /// From a given SDK config (tests pass static credentials). The SDK's own
    /// retries are switched off: [`retrying`] is the one retry layer, so
    /// attempts never multiply and every retry is counted and logged.
    pub fn from_sdk_config(sdk: &SdkConfig, config: &WatchdogConfig) -> Result<Clients> {
        let mut builder = aws_sdk_route53::config::Builder::from(sdk)
            .retry_config(SdkRetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(endpoint) = &config.route53.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        let webhook = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.webhooks.timeout_ms))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Clients {
            route53: Client::from_conf(builder.build()),
            probe: crate::probe::http_client(config.probe.timeout())?,
            webhook,
        })
    }
}

/// Maps an SDK error to [`Error::Route53`], deciding whether it is worth
/// retrying: throttling, `PriorRequestNotComplete` (Route53 is still applying
/// our previous change), any 5xx, and calls that got no usable answer.
pub(crate) fn sdk_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().map(str::to_owned);
            let retryable = status >= 500
                || matches!(
                    code.as_deref(),
                    Some(
                        "Throttling"
                            | "ThrottlingException"
                            | "PriorRequestNotComplete"
                            | "RequestLimitExceeded"
                            | "ServiceUnavailable"
                    )
                );
            Error::Route53 {
                operation,
                message: context
                    .err()
                    .message()
                    .map_or_else(|| format!("HTTP {status}"), str::to_owned),
                code,
                status: Some(status),
                retryable,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Route53 {
                operation,
                code: None,
                message: DisplayErrorContext(&error).to_string(),
                status: None,
                retryable: true,
            }
        }
        _ => Error::Route53 {
            operation,
            code: None,
            message: DisplayErrorContext(&error).to_string(),
            status: None,
            retryable: false,
        },
    }
}

/// Runs `call` with jittered exponential backoff while it fails with a
/// retryable error. Safe for change batches: a throttled or 5xx batch was
/// not applied (Route53 applies a batch whole or not at all), and an
/// ambiguous one (no answer) is resolved by the lease check in
/// [`crate::lease`].
pub(crate) async fn retrying<T, Fut, F>(
    policy: &RetryConfig,
    retries: &Counter,
    operation: &'static str,
    call: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(policy.min_delay_ms))
        .with_max_delay(Duration::from_millis(policy.max_delay_ms))
        .with_max_times(policy.max_retries)
        .with_jitter();
    call.retry(backoff)
        .when(Error::is_retryable)
        .notify(|error: &Error, delay: Duration| {
            retries.inc();
            tracing::warn!(operation, %error, delay_ms = delay.as_millis() as u64, "Route53 call failed; retrying");
        })
        .await
}

/// One TXT record set as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    pub ttl: i64,
    /// Values exactly as Route53 returned them (quoted).
    pub values: Vec<String>,
}

/// What reading the weighted records back found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// All three weights, when all three records exist.
    pub weights: Option<Weights>,
    /// Each record's weight, `None` where it does not exist (yet).
    pub per_target: PerTarget<Option<u8>>,
    /// Records sharing the name and type that are not ours: left alone, but
    /// they take a share of the traffic, so they are reported.
    pub foreign: Vec<String>,
    /// The health check attached to each of our records, as listed (e.g.
    /// by Terraform), so a writer that does not configure one can keep it.
    pub health_checks: PerTarget<Option<String>>,
    /// Our records whose values or TTL differ from the config (it changed
    /// since they were written): rewritten with the next weight batch.
    pub stale: Vec<Target>,
}

impl ReadBack {
    /// The weights as the loop should consider them written: `None` when a
    /// record is stale, so the next batch (same weights) rewrites it.
    pub fn written_weights(&self) -> Option<Weights> {
        if self.stale.is_empty() {
            self.weights
        } else {
            None
        }
    }
}

/// The watchdog's view of its hosted zone.
#[derive(Debug, Clone)]
pub struct Route53 {
    client: Client,
    zone_id: String,
    record_name: String,
    record_type: RecordType,
    ttl: i64,
    values: PerTarget<Vec<String>>,
    set_identifiers: PerTarget<String>,
    health_checks: PerTarget<Option<String>>,
    retry: RetryConfig,
    insync_poll: Duration,
    insync_timeout: Duration,
    retries: Counter,
}

fn rr_type(record_type: RecordType) -> RrType {
    match record_type {
        RecordType::A => RrType::A,
        RecordType::Cname => RrType::Cname,
    }
}

fn build_error(error: aws_sdk_route53::error::BuildError) -> Error {
    Error::Route53 {
        operation: "build request",
        code: None,
        message: error.to_string(),
        status: None,
        retryable: false,
    }
}

impl Route53 {
    /// `retries` counts every retried call (a metric).
    pub fn new(config: &WatchdogConfig, client: Client, retries: Counter) -> Route53 {
        Route53 {
            client,
            zone_id: config.route53.hosted_zone_id.clone(),
            record_name: config.route53.record_name.clone(),
            record_type: config.route53.record_type,
            ttl: config.route53.ttl,
            values: config.targets.map(|_, t| t.values.clone()),
            set_identifiers: config.targets.map(|_, t| t.set_identifier.clone()),
            health_checks: config.targets.map(|_, t| t.health_check_id.clone()),
            retry: config.route53.retry,
            insync_poll: Duration::from_millis(config.route53.insync_poll_ms),
            insync_timeout: Duration::from_millis(config.route53.insync_timeout_ms),
            retries,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Lists the record sets named `name` of type `record_type` (all pages).
    async fn list(&self, name: &str, record_type: RrType) -> Result<Vec<ResourceRecordSet>> {
        let mut found = Vec::new();
        let mut start_identifier: Option<String> = None;
        // Weighted sets of one name and type list together; three of ours
        // plus a few foreign ones fit one page, the loop is for safety.
        for _ in 0..10 {
            let output = retrying(
                &self.retry,
                &self.retries,
                "ListResourceRecordSets",
                || async {
                    self.client
                        .list_resource_record_sets()
                        .hosted_zone_id(&self.zone_id)
                        .start_record_name(name)
                        .start_record_type(record_type.clone())
                        .set_start_record_identifier(start_identifier.clone())
                        .max_items(100)
                        .send()
                        .await
                        .map_err(|e| sdk_error("ListResourceRecordSets", e))
                },
            )
            .await?;
            let mut past_ours = false;
            for set in output.resource_record_sets() {
                if fqdn(set.name()) == name && *set.r#type() == record_type {
                    found.push(set.clone());
                } else {
                    past_ours = true;
                }
            }
            let next_is_ours = output.next_record_name().map(fqdn).as_deref() == Some(name)
                && output.next_record_type() == Some(&record_type);
            if !output.is_truncated() || past_ours || !next_is_ours {
                break;
            }
            start_identifier = output.next_record_identifier().map(str::to_owned);
        }
        Ok(found)
    }

    /// Reads the three weighted records back. A record carrying one of our
    /// set identifiers but no weight is not ours to overwrite: an error.
    pub async fn read_weights(&self) -> Result<ReadBack> {
        let sets = self
            .list(&self.record_name, rr_type(self.record_type))
            .await?;
        let mut read = ReadBack::default();
        for set in &sets {
            let id = set.set_identifier();
            let target = Target::ALL
                .into_iter()
                .find(|&t| Some(self.set_identifiers[t].as_str()) == id);
            let Some(target) = target else {
                read.foreign
                    .push(id.unwrap_or("(no set identifier)").to_owned());
                continue;
            };
            let weight = set
                .weight()
                .and_then(|w| u8::try_from(w).ok())
                .ok_or_else(|| Error::ForeignRecord {
                    name: self.record_name.clone(),
                    record_type: self.record_type.as_str().to_owned(),
                    set_identifier: id.map(str::to_owned),
                    reason: "it has our set identifier but is not a weighted record".to_owned(),
                })?;
            read.per_target[target] = Some(weight);
            read.health_checks[target] = set.health_check_id().map(str::to_owned);
            let value = |v: &str| match self.record_type {
                RecordType::A => v.to_owned(),
                RecordType::Cname => fqdn(v),
            };
            let mut listed: Vec<String> = set
                .resource_records()
                .iter()
                .map(|r| value(r.value()))
                .collect();
            let mut wanted: Vec<String> = self.values[target].iter().map(|v| value(v)).collect();
            listed.sort();
            wanted.sort();
            if listed != wanted || set.ttl() != Some(self.ttl) {
                read.stale.push(target);
            }
        }
        if !read.foreign.is_empty() {
            tracing::warn!(
                name = %self.record_name,
                foreign = ?read.foreign,
                "weighted records not owned by the watchdog share the name and take traffic; left alone"
            );
        }
        let p = read.per_target;
        if let (Some(primary), Some(dr_eks), Some(dr_ecs)) = (p.primary, p.dr_eks, p.dr_ecs) {
            read.weights = Some(Weights::new(primary, dr_eks, dr_ecs));
        }
        Ok(read)
    }

    /// Reads a TXT record set (the lease). `None` when absent.
    pub async fn read_txt(&self, name: &str) -> Result<Option<TxtRecord>> {
        let sets = self.list(name, RrType::Txt).await?;
        Ok(sets.into_iter().next().map(|set| TxtRecord {
            ttl: set.ttl().unwrap_or_default(),
            values: set
                .resource_records()
                .iter()
                .map(|r| r.value().to_owned())
                .collect(),
        }))
    }

    /// The three UPSERTs that set `weights`, with the configured values and
    /// health checks (the watchdog owns these record sets whole).
    pub fn weight_changes(&self, weights: Weights) -> Result<Vec<Change>> {
        Target::ALL
            .into_iter()
            .map(|target| {
                let records = self.values[target]
                    .iter()
                    .map(|value| ResourceRecord::builder().value(value).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(build_error)?;
                let set = ResourceRecordSet::builder()
                    .name(&self.record_name)
                    .r#type(rr_type(self.record_type))
                    .set_identifier(&self.set_identifiers[target])
                    .weight(i64::from(weights.get(target)))
                    .ttl(self.ttl)
                    .set_resource_records(Some(records))
                    .set_health_check_id(self.health_checks[target].clone())
                    .build()
                    .map_err(build_error)?;
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set)
                    .build()
                    .map_err(build_error)
            })
            .collect()
    }

    /// One TXT change (the lease's DELETE or CREATE half).
    pub fn txt_change(
        &self,
        action: ChangeAction,
        name: &str,
        ttl: i64,
        value: &str,
    ) -> Result<Change> {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Txt)
            .ttl(ttl)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(build_error)?,
            )
            .build()
            .map_err(build_error)?;
        Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .map_err(build_error)
    }

    /// Submits one change batch (retrying throttling) and returns the change
    /// id. Route53 applies it atomically: all changes or none.
    pub async fn change(&self, changes: Vec<Change>, comment: &str) -> Result<String> {
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(build_error)?;
        let output = retrying(
            &self.retry,
            &self.retries,
            "ChangeResourceRecordSets",
            || async {
                self.client
                    .change_resource_record_sets()
                    .hosted_zone_id(&self.zone_id)
                    .change_batch(batch.clone())
                    .send()
                    .await
                    .map_err(|e| sdk_error("ChangeResourceRecordSets", e))
            },
        )
        .await?;
        Ok(output
            .change_info()
            .map(|info| info.id().to_owned())
            .unwrap_or_default())
    }

    /// Polls `GetChange` until the change is INSYNC (applied on every
    /// Route53 name server); returns how long that took.
    pub async fn wait_insync(&self, change_id: &str) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let output = retrying(&self.retry, &self.retries, "GetChange", || async {
                self.client
                    .get_change()
                    .id(change_id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("GetChange", e))
            })
            .await?;
            let status = output.change_info().map(|info| info.status().clone());
            if status == Some(ChangeStatus::Insync) {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= self.insync_timeout {
                return Err(Error::InsyncTimeout {
                    change_id: change_id.to_owned(),
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            tokio::time::sleep(self.insync_poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_records_count_as_not_written() {
        let mut read = ReadBack {
            weights: Some(Weights::new(100, 0, 0)),
            ..ReadBack::default()
        };
        assert_eq!(read.written_weights(), Some(Weights::new(100, 0, 0)));
        read.stale.push(Target::DrEcs);
        assert_eq!(read.written_weights(), None);
    }
}
