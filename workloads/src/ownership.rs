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

/// What ownership allows a single writer (decider, queue keeper) next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// This region owns the sale at `epoch` (0 outside a DR pair): write
    /// the next batch.
    Write { epoch: u64 },
    /// Not now: what arrives waits in the log.
    Wait,
}

/// Which owner a session's replayed state is the whole history for. The
/// replay at the session's start covers what had reached the log by then;
/// once another region has owned the sale since, its writes keep arriving
/// by replication, and the state is only good again after a fresh replay.
#[derive(Debug, Clone, Copy)]
enum Basis {
    /// Replayed at the session's start; no owner seen yet.
    Replayed,
    /// Another region has owned the sale since the replay.
    Foreign,
    /// This region has written at this owner epoch.
    Epoch(u64),
}

impl Basis {
    fn stale_for(self, epoch: u64) -> bool {
        match self {
            Self::Replayed => false,
            Self::Foreign => true,
            Self::Epoch(e) => e != epoch,
        }
    }
}

/// One writer session's view of ownership: asks the watch before each
/// batch, logs each change of verdict, and ends the session
/// ([`Error::OwnershipMoved`]) when this region becomes the owner after
/// another region wrote since the session's replay.
#[derive(Debug)]
pub struct Turns {
    watch: Option<OwnershipWatch>,
    writer: String,
    basis: Basis,
    was: Option<Verdict>,
}

impl Turns {
    /// For one session of `writer` (its name in logs); no watch: always
    /// [`Turn::Write`] at epoch 0.
    pub fn new(watch: Option<OwnershipWatch>, writer: String) -> Self {
        Self {
            watch,
            writer,
            basis: Basis::Replayed,
            was: None,
        }
    }

    /// Whether the next batch may be written; `owner` is set to 1 while it
    /// may, else 0.
    pub fn next(&mut self, owner: &prometheus_client::metrics::gauge::Gauge) -> Result<Turn> {
        let Some(watch) = &self.watch else {
            owner.set(1);
            return Ok(Turn::Write { epoch: 0 });
        };
        let (ok, verdict) = watch.may_decide_batch();
        owner.set(i64::from(ok));
        self.log_change(verdict);
        match verdict {
            Verdict::Owner { epoch, .. } if ok => {
                if self.basis.stale_for(epoch) {
                    // Another region wrote since this session replayed: its
                    // writes reached our log by replication after the
                    // replay. Start again from the log first.
                    return Err(Error::OwnershipMoved { epoch });
                }
                self.basis = Basis::Epoch(epoch);
                Ok(Turn::Write { epoch })
            }
            Verdict::NotOwner { .. } | Verdict::Handover { .. } => {
                self.basis = Basis::Foreign;
                Ok(Turn::Wait)
            }
            Verdict::Owner { .. } | Verdict::Unconfirmed => Ok(Turn::Wait),
        }
    }

    fn log_change(&mut self, verdict: Verdict) {
        let kind = |v: &Verdict| std::mem::discriminant(v);
        if self.was.as_ref().map(kind) != Some(kind(&verdict)) {
            let writer = &self.writer;
            match verdict {
                Verdict::Owner { epoch, .. } => {
                    tracing::info!(%writer, epoch, "this region owns the sale: writing");
                }
                Verdict::NotOwner { owner } => {
                    tracing::info!(%writer, %owner, "another region owns the sale: what arrives waits in the log");
                }
                Verdict::Handover { epoch, .. } => {
                    tracing::info!(%writer, epoch, "ownership moved here: waiting out the previous owner's lease");
                }
                Verdict::Unconfirmed => {
                    tracing::warn!(%writer, "ownership not confirmed recently: not writing");
                }
            }
        }
        self.was = Some(verdict);
    }
}
