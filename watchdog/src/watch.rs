//! The watch loop: every interval, probe the three targets, feed the
//! machine, keep the lease, and write the weights when they should change.
//!
//! Only the lease holder writes. A standby runs the same probes and its own
//! machine (so it is ready to take over with fresh evidence) but never
//! writes and never notifies. On taking the lease it adopts the state the
//! previous holder recorded (in the lease record, checked against the
//! weights in Route53) and replays its own recent probe rounds on top, so an
//! operator's override or failback survives a change of holder, and its own
//! evidence is not thrown away.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use twinkle_dr::{Command, FailoverMachine, Millis, RouteState, Step, Weights};

use crate::config::WatchdogConfig;
use crate::lease::{Acquire, Lease, LeaseRecord, unix_ms_now};
use crate::metrics::Metrics;
use crate::owner::{self, OwnerView};
use crate::probe::{ProbeRound, probe_all};
use crate::route53::{Clients, Route53};
use crate::status::{LeaseStatus, WatchdogStatus, WriteRecord};
use crate::webhook::Notifier;
use crate::{Error, Result};

type CommandRequest = (Command, oneshot::Sender<Result<Step>>);

/// The state the records say we are in: the lease record's state when its
/// weights are the ones in Route53 (that keeps an override, whose weights an
/// automatic state shares), else the automatic state with those weights.
/// `None` for missing records or weights no state writes (hand edits).
pub(crate) fn recorded_state(
    lease: Option<&LeaseRecord>,
    weights: Option<Weights>,
) -> Option<RouteState> {
    let weights = weights?;
    lease
        .and_then(|r| r.state)
        .filter(|s| s.weights() == weights)
        .or_else(|| RouteState::from_weights(weights))
}

/// A running watchdog's handle: `run` it on one task, ask it for `status`
/// or give it a `command` from others.
pub struct Watchdog {
    config: Arc<WatchdogConfig>,
    clients: Clients,
    metrics: Metrics,
    status: Arc<Mutex<WatchdogStatus>>,
    commands: mpsc::Sender<CommandRequest>,
    command_rx: tokio::sync::Mutex<mpsc::Receiver<CommandRequest>>,
}

fn lock(status: &Mutex<WatchdogStatus>) -> MutexGuard<'_, WatchdogStatus> {
    // A panic while holding the lock leaves a snapshot, not an invariant.
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watchdog {
    /// Validates `config` and registers the metrics into `registry`.
    pub fn new(
        mut config: WatchdogConfig,
        clients: Clients,
        registry: &mut Registry,
    ) -> Result<Watchdog> {
        config.normalize_and_validate()?;
        let (commands, command_rx) = mpsc::channel(8);
        let status = WatchdogStatus {
            holder_id: config.holder_id(),
            lease: LeaseStatus {
                name: config.lease_record_name(),
                ..LeaseStatus::default()
            },
            ..WatchdogStatus::default()
        };
        Ok(Watchdog {
            config: Arc::new(config),
            clients,
            metrics: Metrics::register(registry),
            status: Arc::new(Mutex::new(status)),
            commands,
            command_rx: tokio::sync::Mutex::new(command_rx),
        })
    }

    pub fn config(&self) -> &WatchdogConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A snapshot: weights, state, lease, recent probes and transitions.
    pub fn status(&self) -> WatchdogStatus {
        let mut status = lock(&self.status).clone();
        // Judged now, not when the loop last published: a stalled or
        // crashed loop's lease stops counting as held when it expires.
        let margin = self.config.lease.clock_skew_margin_ms;
        let now = unix_ms_now();
        status.lease.held &= status
            .lease
            .record
            .as_ref()
            .is_some_and(|r| now.saturating_add(margin) < r.expires_unix_ms);
        status
    }

    /// Applies an operator command through the running loop (which has the
    /// probe history a failback needs) and writes at once. Refused unless
    /// this watchdog holds the lease; [`crate::manual_command`] preempts
    /// whoever does.
    pub async fn command(&self, command: Command) -> Result<Step> {
        if !lock(&self.status).running {
            return Err(Error::Stopped);
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((command, reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Runs until `stop` completes, then releases the lease if held so a
    /// standby takes over at once rather than after expiry. Runs once per
    /// `Watchdog`. Fails only at start-up (Route53 unreadable, a foreign
    /// lease record); later errors are logged, kept in the status, and
    /// retried on the next round.
    pub async fn run(&self, stop: impl Future<Output = ()>) -> Result<()> {
        let mut commands = self
            .command_rx
            .try_lock()
            .map_err(|_| Error::AlreadyRunning)?;
        if commands.is_closed() {
            return Err(Error::AlreadyRunning);
        }
        let result = self.run_loop(&mut commands, stop).await;
        // Run once: later commands fail fast instead of waiting forever.
        commands.close();
        while let Ok((_, reply)) = commands.try_recv() {
            let _ = reply.send(Err(Error::Stopped));
        }
        result
    }

    async fn run_loop(
        &self,
        commands: &mut mpsc::Receiver<CommandRequest>,
        stop: impl Future<Output = ()>,
    ) -> Result<()> {
        let mut runner = Runner::start(self).await?;
        runner.publish();
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(self.config.probe.interval());
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some((command, reply)) = commands.recv() => {
                    let result = runner.command(command).await;
                    let _ = reply.send(result);
                }
                _ = ticker.tick() => runner.round().await,
            }
            runner.publish();
        }
        runner.shutdown().await;
        Ok(())
    }
}

/// One remembered probe round.
struct Round {
    at: Millis,
    at_unix_ms: u64,
    probes: ProbeRound,
}

/// The loop's state; lives only inside [`Watchdog::run`].
struct Runner<'a> {
    config: &'a WatchdogConfig,
    clients: &'a Clients,
    metrics: &'a Metrics,
    status: &'a Arc<Mutex<WatchdogStatus>>,
    route53: Route53,
    lease: Lease,
    notifier: Notifier,
    notifier_task: Option<JoinHandle<()>>,
    machine: FailoverMachine,
    clock: Instant,
    /// Probe rounds with their machine and wall-clock time, for replay on
    /// adoption.
    history: VecDeque<Round>,
    route53_weights: Option<Weights>,
    /// The ownership record as last read or written; `None` = must be read
    /// before the next weight write (after a refused batch).
    owner: Option<OwnerView>,
    /// Since when the machine has wanted weights not yet written.
    pending_since: Option<Instant>,
    /// Lease taken but Route53 not read back yet: the previous record.
    readback: Option<Option<LeaseRecord>>,
    was_holder: bool,
}

impl<'a> Runner<'a> {
    /// Reads Route53 and the lease, and resumes the machine in the state
    /// they record, so a restart never snaps traffic back to normal.
    async fn start(watchdog: &'a Watchdog) -> Result<Runner<'a>> {
        let config = &*watchdog.config;
        let route53 = Route53::new(
            config,
            watchdog.clients.route53.clone(),
            watchdog.metrics.route53_retries.clone(),
        );
        let mut lease = Lease::new(config);
        let read = route53.read_weights().await?;
        let lease_view = lease.refresh(&route53).await?.clone();
        let owner = owner::read(&route53, &config.owner_record_name()).await?;
        watchdog.metrics.set_ownership(owner.ownership());
        let state = match recorded_state(lease_view.record(), read.weights) {
            Some(state) => state,
            None => {
                if read.weights.is_some() {
                    tracing::warn!(weights = ?read.weights, "Route53 weights match no DR state (edited by hand?); starting as normal and overwriting them once holding the lease");
                }
                RouteState::Normal
            }
        };
        let machine = FailoverMachine::resume(config.failover.clone(), state, Millis::ZERO)?;
        if let Some(weights) = read.weights {
            watchdog.metrics.set_weights(weights);
        }
        let (notifier, notifier_task) = Notifier::spawn(
            &config.webhooks,
            &config.route53.record_name,
            watchdog.clients.webhook.clone(),
        );
        tracing::info!(
            holder = %lease.holder_id(),
            record = %config.route53.record_name,
            %state,
            weights = ?read.weights,
            stale = ?read.stale,
            ownership = %owner.ownership(),
            lease_holder = ?lease_view.record().map(|r| &r.holder),
            "DR watchdog started"
        );
        lock(&watchdog.status).running = true;
        Ok(Runner {
            config,
            clients: &watchdog.clients,
            metrics: &watchdog.metrics,
            status: &watchdog.status,
            route53,
            lease,
            notifier,
            notifier_task,
            machine,
            clock: Instant::now(),
            history: VecDeque::new(),
            route53_weights: read.written_weights(),
            owner: Some(owner),
            pending_since: None,
            readback: None,
            was_holder: false,
        })
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn holds(&self) -> bool {
        self.lease.holds(unix_ms_now())
    }

    fn note_error(&self, error: &Error) {
        let mut status = lock(self.status);
        status.last_error = Some(error.to_string());
        if error.is_route53_side() {
            status.route53_error = Some(error.to_string());
        }
    }

    /// A Route53 call of the loop got its answer: Route53 is reachable.
    fn route53_ok(&self) {
        lock(self.status).route53_error = None;
    }

    /// One probe round, one machine step, then lease and weights.
    async fn round(&mut self) {
        let round = probe_all(self.config, &self.clients.probe, &self.clients.route53).await;
        let now = self.now();
        for (target, result) in round.results.iter() {
            if !result.healthy {
                self.metrics.probe_failed(target);
                tracing::debug!(%target, error = ?result.error, "probe failed");
            }
        }
        let observations = round.observations();
        self.remember(now, round);
        match self.machine.observe(now, &observations) {
            Ok(step) => self.record_step(&step),
            Err(error) => {
                tracing::error!(%error, "state machine refused the observations");
                self.note_error(&error.into());
            }
        }
        self.sync().await;
    }

    fn remember(&mut self, now: Millis, round: ProbeRound) {
        let keep = self.config.history;
        let mut status = lock(self.status);
        status.probes.push_back(round.clone());
        while status.probes.len() > keep {
            status.probes.pop_front();
        }
        drop(status);
        self.history.push_back(Round {
            at: now,
            at_unix_ms: unix_ms_now(),
            probes: round,
        });
        while self.history.len() > keep {
            self.history.pop_front();
        }
    }

    /// Logs, counts and announces a step's transitions and alarms. Only the
    /// holder announces: a standby's machine is a shadow until it writes.
    fn record_step(&mut self, step: &Step) {
        let holder = self.holds();
        for transition in &step.transitions {
            tracing::info!(
                from = %transition.from,
                to = %transition.to,
                weights = %transition.weights,
                manual = transition.manual,
                reason = ?transition.reason,
                health = ?transition.health,
                lease_holder = holder,
                "DR transition"
            );
            self.metrics
                .record_transition(transition.from, transition.to, transition.manual);
            let mut status = lock(self.status);
            status.transitions.push_back(transition.clone());
            while status.transitions.len() > self.config.history {
                status.transitions.pop_front();
            }
            drop(status);
            if holder {
                self.notifier.transition(transition);
            }
        }
        if step.weights_changed && self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        for &alarm in &step.alarms_raised {
            tracing::warn!(?alarm, weights = %step.weights, "DR alarm raised");
            self.metrics.set_alarm(alarm, true);
            if holder {
                self.notifier.alarm(alarm, true);
            }
        }
        for &alarm in &step.alarms_cleared {
            tracing::info!(?alarm, "DR alarm cleared");
            self.metrics.set_alarm(alarm, false);
            if holder {
                self.notifier.alarm(alarm, false);
            }
        }
    }

    /// Takes the lease when free, writes weights that differ from Route53's,
    /// renews at half time.
    async fn sync(&mut self) {
        if let Err(error) = self.try_acquire().await {
            tracing::warn!(%error, "lease check failed");
            self.note_error(&error);
        }
        if self.holds() && self.readback.is_some() {
            self.read_back().await;
        }
        if self.holds() && self.readback.is_none() {
            if self.route53_weights != Some(self.machine.weights()) {
                if let Err(error) = self.write_weights().await {
                    self.note_error(&error);
                }
            } else if self.lease.needs_renewal(unix_ms_now())
                || self.lease.known().and_then(|r| r.state) != Some(self.machine.state())
            {
                self.renew().await;
            }
        }
        let held = self.holds();
        if self.was_holder && !held {
            tracing::warn!(lease = %self.lease.name(), "no longer holding the lease: not writing weights");
        }
        self.was_holder = held;
        self.metrics.set_lease_held(held);
    }

    async fn try_acquire(&mut self) -> Result<()> {
        if !self.lease.should_try(unix_ms_now()) {
            return Ok(());
        }
        let acquired = self
            .lease
            .acquire(
                &self.route53,
                self.machine.state(),
                false,
                Vec::new(),
                "twinkle DR lease take",
            )
            .await;
        match acquired {
            Ok(Acquire::Acquired { previous, .. }) => {
                self.route53_ok();
                self.on_acquired(previous).await;
                Ok(())
            }
            Ok(Acquire::HeldBy(record)) => {
                self.route53_ok();
                tracing::debug!(holder = %record.holder, expires_unix_ms = record.expires_unix_ms, "lease held by another watchdog; standing by");
                Ok(())
            }
            Err(Error::NotLeaseHolder { holder }) => {
                self.route53_ok();
                tracing::info!(?holder, "lost the race for the lease; standing by");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Just became the holder: before writing anything, learn what is in
    /// Route53 and adopt the state the previous holder recorded.
    async fn on_acquired(&mut self, previous: Option<LeaseRecord>) {
        tracing::info!(
            holder = %self.lease.holder_id(),
            previous = ?previous.as_ref().map(|r| &r.holder),
            "lease acquired"
        );
        self.readback = Some(previous);
        self.read_back().await;
    }

    /// The read-back after taking the lease. Until it succeeds nothing is
    /// written: writing our weights blind could undo an operator's override
    /// the previous holder recorded.
    async fn read_back(&mut self) {
        let Some(previous) = self.readback.clone() else {
            return;
        };
        let read = match self.route53.read_weights().await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, "cannot read weights after taking the lease; not writing until it works");
                self.note_error(&error);
                return;
            }
        };
        let owner = match owner::read(&self.route53, &self.config.owner_record_name()).await {
            Ok(owner) => owner,
            Err(error) => {
                tracing::warn!(%error, "cannot read the ownership record after taking the lease; not writing until it works");
                self.note_error(&error);
                return;
            }
        };
        self.metrics.set_ownership(owner.ownership());
        self.owner = Some(owner);
        self.readback = None;
        self.route53_ok();
        self.route53_weights = read.written_weights();
        if let Some(weights) = read.weights {
            self.metrics.set_weights(weights);
        }
        if let Some(state) = recorded_state(previous.as_ref(), read.weights)
            && state != self.machine.state()
            && let Err(error) =
                self.adopt(state, previous.as_ref().and_then(|r| r.since_for(state)))
        {
            tracing::error!(%error, "cannot adopt the recorded state");
            self.note_error(&error);
        }
    }

    /// Restarts the machine in `state` and replays into it the probe rounds
    /// taken after `since` (when the state was decided; all rounds when
    /// unknown): earlier rounds are evidence that decision already answered.
    fn adopt(&mut self, state: RouteState, since: Option<u64>) -> Result<()> {
        let after = |round: &&Round| since.is_none_or(|since| round.at_unix_ms > since);
        let start = self
            .history
            .iter()
            .find(after)
            .map_or(self.now(), |round| round.at);
        let mut machine = FailoverMachine::resume(self.config.failover.clone(), state, start)?;
        let mut steps = Vec::with_capacity(self.history.len());
        for round in self.history.iter().filter(after) {
            steps.push(machine.observe(round.at, &round.probes.observations())?);
        }
        tracing::info!(
            ours = %self.machine.state(),
            recorded = %state,
            recorded_since_unix_ms = ?since,
            after_replay = %machine.state(),
            rounds = steps.len(),
            "adopted the state the previous lease holder recorded"
        );
        self.machine = machine;
        self.pending_since = None;
        for step in &steps {
            self.record_step(step);
        }
        Ok(())
    }

    /// Writes the machine's weights in one batch fenced by the lease.
    async fn write_weights(&mut self) -> Result<()> {
        let weights = self.machine.weights();
        let state = self.machine.state();
        let now = unix_ms_now();
        // Right before the write: a lease we cannot prove is ours is not
        // used, even though the batch's DELETE would catch it too.
        if !self.lease.holds(now) {
            return Err(Error::NotLeaseHolder {
                holder: self.lease.known().map(|r| r.holder.clone()),
            });
        }
        let owner_name = self.config.owner_record_name();
        let owner_view = match self.owner.clone() {
            Some(view) => view,
            None => owner::read(&self.route53, &owner_name).await?,
        };
        let before = owner_view.ownership();
        let (owner_after, owner_changes) =
            owner_view.moved_by(&self.route53, &owner_name, state)?;
        let ownership = owner_after.ownership();
        self.owner = Some(owner_view);
        let mut changes = self.route53.weight_changes(weights)?;
        changes.extend(owner_changes);
        let new = self.lease.next_record(now, state);
        let started = Instant::now();
        let comment = format!(
            "twinkle DR: {state} ({weights}) by {}",
            self.lease.holder_id()
        );
        match self
            .lease
            .compare_and_set(&self.route53, &new, changes, &comment)
            .await
        {
            Ok(change_id) => {
                let call_ms = millis(started.elapsed());
                let decided_to_written_ms = self
                    .pending_since
                    .take()
                    .map_or(call_ms, |since| millis(since.elapsed()));
                self.route53_weights = Some(weights);
                self.owner = Some(owner_after);
                self.metrics.route53_writes.inc();
                self.metrics.set_weights(weights);
                self.metrics.set_ownership(ownership);
                tracing::info!(%weights, %state, ?change_id, call_ms, decided_to_written_ms, "Route53 weights written");
                if ownership != before {
                    tracing::info!(from = %before, to = %ownership, ?change_id, "selling region moved with the weights");
                }
                let record = WriteRecord {
                    weights,
                    state,
                    change_id: change_id.clone(),
                    at_unix_ms: unix_ms_now(),
                    decided_to_written_ms,
                    call_ms,
                    insync_ms: None,
                };
                {
                    let mut status = lock(self.status);
                    status.last_write = Some(record);
                    status.writes += 1;
                    status.last_error = None;
                    status.route53_error = None;
                }
                if let Some(change_id) = change_id {
                    self.watch_insync(change_id);
                }
                Ok(())
            }
            Err(error) => {
                // The ownership record may be why the batch was refused:
                // read it again before the next attempt.
                self.owner = None;
                match &error {
                    Error::NotLeaseHolder { holder } => {
                        tracing::warn!(
                            ?holder,
                            "lease lost: weight batch rejected, nothing written"
                        )
                    }
                    _ => {
                        tracing::warn!(%error, %weights, "weight write failed; retrying next round")
                    }
                }
                Err(error)
            }
        }
    }

    /// Confirms INSYNC off the loop: real Route53 takes up to a minute, and
    /// probing and lease renewal must go on meanwhile.
    fn watch_insync(&self, change_id: String) {
        let route53 = self.route53.clone();
        let status = Arc::clone(self.status);
        tokio::spawn(async move {
            match route53.wait_insync(&change_id).await {
                Ok(took) => {
                    tracing::info!(%change_id, insync_ms = millis(took), "Route53 change INSYNC");
                    let mut status = lock(&status);
                    if let Some(write) = status.last_write.as_mut()
                        && write.change_id.as_deref() == Some(change_id.as_str())
                    {
                        write.insync_ms = Some(millis(took));
                    }
                }
                Err(error) => {
                    tracing::warn!(%change_id, %error, "Route53 change not confirmed INSYNC")
                }
            }
        });
    }

    async fn renew(&mut self) {
        match self.lease.renew(&self.route53, self.machine.state()).await {
            Ok(()) => {
                self.route53_ok();
                tracing::debug!(lease = %self.lease.name(), "lease renewed");
            }
            Err(Error::NotLeaseHolder { holder }) => {
                self.route53_ok();
                tracing::warn!(?holder, "lease renewal lost: another holder took it");
            }
            Err(error) => {
                tracing::warn!(%error, "lease renewal failed; holding until expiry");
                self.note_error(&error);
            }
        }
    }

    /// An operator command through the loop: needs the lease, writes at once.
    async fn command(&mut self, command: Command) -> Result<Step> {
        self.try_acquire().await?;
        if self.holds() && self.readback.is_some() {
            self.read_back().await;
        }
        if !self.holds() || self.readback.is_some() {
            return Err(Error::NotLeaseHolder {
                holder: self.lease.known().map(|r| r.holder.clone()),
            });
        }
        let step = self.machine.command(self.now(), command)?;
        tracing::info!(?command, state = %step.state, "operator command applied");
        self.record_step(&step);
        if self.route53_weights != Some(self.machine.weights()) {
            self.write_weights().await?;
        } else if self.lease.known().and_then(|r| r.state) != Some(self.machine.state()) {
            // Same weights, new state (an override): record it in the lease.
            self.lease
                .renew(&self.route53, self.machine.state())
                .await?;
        }
        Ok(step)
    }

    /// Copies the loop's view into the shared status.
    fn publish(&self) {
        let known = self.lease.known().cloned();
        let mut status = lock(self.status);
        status.machine = Some(self.machine.status());
        status.route53_weights = self.route53_weights;
        if let Some(owner) = &self.owner {
            status.ownership = Some(owner.ownership());
        }
        status.lease.held = self.holds();
        status.lease.record = known;
    }

    /// Hands the lease back and lets queued notifications go out.
    async fn shutdown(mut self) {
        if self.holds() {
            let release = self.lease.release(&self.route53, self.machine.state());
            match tokio::time::timeout(Duration::from_secs(5), release).await {
                Ok(Ok(())) => tracing::info!(lease = %self.lease.name(), "lease released"),
                Ok(Err(error)) => tracing::warn!(%error, "lease release failed; it will expire"),
                Err(_) => tracing::warn!("lease release timed out; it will expire"),
            }
        }
        self.metrics.set_lease_held(false);
        self.publish();
        lock(self.status).running = false;
        drop(self.notifier);
        if let Some(task) = self.notifier_task.take()
            && tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
        {
            tracing::warn!("pending webhooks abandoned at shutdown");
        }
        tracing::info!("DR watchdog stopped");
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
