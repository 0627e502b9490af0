//! May this region's decider decide? The ownership record says which region
//! sells (the DR watchdog moves it with the Route53 weights); a
//! [`twinkle_dr::OwnerGate`] fed with reads of it answers on this process's
//! monotonic clock.
//!
//! A decider not in a DR pair runs without a watch and always decides.
//! With one, it decides only while the gate says [`Verdict::Owner`] with at
//! least [`DECIDE_BUDGET`] to spare, so a batch read, decided and committed
//! within the budget is committed while ownership is proven; requests that
//! arrive meanwhile wait in the log.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use twinkle_dr::{Millis, OwnerGate, Ownership, OwnershipTiming, Region, Verdict};

use crate::{Error, Result};

/// Time a batch needs from the ownership check to its commit: one read
/// wait plus a slow transaction commit.
pub const DECIDE_BUDGET: Duration = Duration::from_secs(2);

/// How often the record is read: ten reads per default lease, so nine may
/// fail before deciding stops (0.5 Route53 requests per second per event
/// per region: well under the account's 5 per second).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// A decider in a DR pair: its region and where ownership is read.
#[derive(Clone)]
pub struct OwnershipSettings {
    pub region: Region,
    pub source: Arc<dyn OwnershipSource>,
    pub timing: OwnershipTiming,
    pub poll: Duration,
}

impl std::fmt::Debug for OwnershipSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnershipSettings")
            .field("region", &self.region)
            .field("timing", &self.timing)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// Where the ownership record is read from.
#[async_trait::async_trait]
pub trait OwnershipSource: Send + Sync + 'static {
    /// The record now (absent: [`Ownership::INITIAL`]).
    async fn read(&self) -> Result<Ownership>;
}

/// The record in Route53: a TXT record beside the weighted records.
#[derive(Debug, Clone)]
pub struct Route53Ownership {
    client: aws_sdk_route53::Client,
    zone_id: String,
    name: String,
}

impl Route53Ownership {
    /// Credentials from the default chain (IRSA, ECS task role,
    /// environment); `endpoint` overrides Route53's (moto in tests).
    pub async fn load(zone_id: String, name: String, endpoint: Option<String>) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            // Route53 is global and signs in us-east-1.
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        let mut builder = aws_sdk_route53::config::Builder::from(&sdk);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_route53::Client::from_conf(builder.build()),
            zone_id,
            name: fqdn(&name),
        }
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

#[async_trait::async_trait]
impl OwnershipSource for Route53Ownership {
    async fn read(&self) -> Result<Ownership> {
        use aws_sdk_route53::types::RrType;
        let listed = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .start_record_name(&self.name)
            .start_record_type(RrType::Txt)
            .send()
            .await
            .map_err(|err| {
                Error::Ownership(format!(
                    "reading {}: {}",
                    self.name,
                    aws_sdk_route53::error::DisplayErrorContext(err)
                ))
            })?;
        let Some(set) = listed
            .resource_record_sets()
            .iter()
            .find(|s| fqdn(s.name()) == self.name && s.r#type() == &RrType::Txt)
        else {
            return Ok(Ownership::INITIAL);
        };
        match set.resource_records() {
            [one] => Ownership::parse_txt(one.value()).ok_or_else(|| {
                Error::Ownership(format!(
                    "{} holds {:?}, not an ownership record",
                    self.name,
                    one.value()
                ))
            }),
            other => Err(Error::Ownership(format!(
                "{} holds {} values, not one ownership record",
                self.name,
                other.len()
            ))),
        }
    }
}

/// The gate kept current by a polling task; cheap to ask.
#[derive(Clone)]
pub struct OwnershipWatch {
    gate: Arc<Mutex<OwnerGate>>,
    origin: Instant,
}

impl std::fmt::Debug for OwnershipWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnershipWatch")
            .field("region", &self.lock().region())
            .finish_non_exhaustive()
    }
}

impl OwnershipWatch {
    /// Starts polling `source` every `poll` for `region`'s deciders; the
    /// task ends when the last watch is dropped.
    pub fn spawn(settings: &OwnershipSettings) -> Result<OwnershipWatch> {
        let OwnershipSettings {
            region,
            source,
            timing,
            poll,
        } = settings.clone();
        // A batch is started only with DECIDE_BUDGET of the lease to spare:
        // a lease no longer than that would never let one start.
        if u128::from(timing.lease.0) <= DECIDE_BUDGET.as_millis() + poll.as_millis() {
            return Err(Error::Ownership(format!(
                "an ownership lease of {:?} leaves no time to decide: it must exceed the {DECIDE_BUDGET:?} a batch needs plus one poll ({poll:?})",
                timing.lease
            )));
        }
        let gate = OwnerGate::new(region, timing).map_err(|e| Error::Ownership(e.to_string()))?;
        let watch = OwnershipWatch {
            gate: Arc::new(Mutex::new(gate)),
            origin: Instant::now(),
        };
        let weak = Arc::downgrade(&watch.gate);
        let origin = watch.origin;
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let started = Instant::now();
                let read = source.read().await;
                let Some(gate) = weak.upgrade() else { break };
                match read {
                    Ok(record) => {
                        if failing {
                            tracing::info!(%region, %record, "ownership record readable again");
                            failing = false;
                        }
                        let mut gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
                        let before = gate.last_read();
                        gate.observe(
                            millis(origin, started),
                            millis(origin, Instant::now()),
                            record,
                        );
                        if before != Some(record) {
                            tracing::info!(%region, %record, previous = ?before, "ownership record read");
                        }
                    }
                    Err(err) if !failing => {
                        tracing::warn!(%region, %err, "cannot read the ownership record; deciding stops once the last confirmation runs out");
                        failing = true;
                    }
                    Err(_) => {}
                }
                drop(gate);
                tokio::time::sleep(poll.saturating_sub(started.elapsed())).await;
            }
        });
        Ok(watch)
    }

    /// The region this watch decides for.
    pub fn region(&self) -> Region {
        self.lock().region()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OwnerGate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The gate's verdict now.
    pub fn verdict(&self) -> Verdict {
        self.lock().verdict(millis(self.origin, Instant::now()))
    }

    /// Deciding one more batch is allowed: owner, with the budget to spare.
    pub fn may_decide_batch(&self) -> (bool, Verdict) {
        let now = millis(self.origin, Instant::now());
        let verdict = self.lock().verdict(now);
        let ok = match verdict {
            Verdict::Owner { until, .. } => {
                until.since(now)
                    >= Millis(u64::try_from(DECIDE_BUDGET.as_millis()).unwrap_or(u64::MAX))
            }
            _ => false,
        };
        (ok, verdict)
    }
}

fn millis(origin: Instant, at: Instant) -> Millis {
    Millis(u64::try_from(at.duration_since(origin).as_millis()).unwrap_or(u64::MAX))
}
