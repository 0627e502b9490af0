//! The in-cluster DR watchdog (SPEC §4, issue #7): one watchdog task per
//! TicketEvent with `spec.dr`, run by the leader only.
//!
//! * [`Registry`] keeps the tasks, keyed `namespace/name`. The reconcile
//!   calls [`Registry::ensure`] (start; restart when the watchdog config
//!   changes; forward an override or mode change to the running task
//!   without a restart) and the finalizer [`Registry::stop`]. When the
//!   controller stops — leadership lost, or shutdown — `controller::run`
//!   calls [`Registry::stop_all`], so a replica that no longer leads stops
//!   probing and writing at once (and releases each Route53 lease, so the
//!   new leader's watchdogs take over without waiting for expiry). The
//!   Route53 TXT lease is the fence behind that: even a replica that has
//!   not noticed it lost the Kubernetes Lease cannot write weights once
//!   another watchdog holds the TXT lease.
//! * Each task runs a [`twinkle_watchdog::Watchdog`] (probes, machine,
//!   lease, weight writes, webhooks) from [`adapter::from_resource`] and,
//!   alongside it, a control loop that polls the watchdog's snapshot every
//!   [`POLL`]: it applies the resource's override, emits Kubernetes Events
//!   for transitions, writes and alarms, and hands a [`report::DnsReport`]
//!   to the status writer, which applies it at once (see
//!   `controller::writer` for why a direct status write and not a
//!   requeue).
//! * A watchdog that cannot start (Route53 unreachable) is retried with
//!   backoff, and reported as `DnsReady=False Route53Unreachable`
//!   meanwhile.

pub mod adapter;
pub mod report;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Resource as _, ResourceExt as _,
    runtime::events::{Event as KubeEvent, EventType, Recorder},
};
use prometheus_client::{metrics::counter::Counter, registry::Registry as MetricsRegistry};
use tokio::{sync::watch, task::JoinHandle};
use twinkle_crd::{Dr, DrMode, DrTargetName, DrTransitionStatus, TicketEvent};
use twinkle_dr::{Alarm, Command, RouteState, Target, Transition};
use twinkle_watchdog::{Clients, Watchdog, WatchdogConfig, WatchdogStatus, route53::Route53};

use self::{
    adapter::{DrEnv, Pin},
    report::{DnsReport, View},
};
use super::writer::{Dns, StatusWriter};

/// How often a task looks at its watchdog's snapshot: the delay between a
/// transition (or a write, or INSYNC) and the status write that shows it.
pub const POLL: Duration = Duration::from_millis(200);
/// How long stopping a task may take before it is aborted: one probe
/// round in flight plus the lease release (5 s at most).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Backoff between start attempts while Route53 cannot be read.
const START_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// What a replaced task hands to its successor (and what a fresh one
/// reads back from the resource's status).
#[derive(Debug, Clone, Default)]
struct Carry {
    /// The target the operator pinned for the resource.
    applied: Option<Target>,
    last_transition: Option<DrTransitionStatus>,
}

struct Task {
    /// `spec.dr` without what a running task takes live (override, mode):
    /// a change in anything else restarts the watchdog.
    restart_key: Dr,
    epoch: u64,
    pin: watch::Sender<Pin>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    carry: Arc<Mutex<Carry>>,
}

/// The running watchdog tasks of this (leading) replica.
pub struct Registry {
    env: DrEnv,
    recorder: Recorder,
    writer: Arc<StatusWriter>,
    tasks: Mutex<HashMap<String, Task>>,
    epochs: AtomicU64,
}

fn restart_key(dr: &Dr) -> Dr {
    Dr {
        manual_override: None,
        mode: DrMode::Automatic,
        // The deciders' business, not the watchdog's.
        reserve_per_slot: None,
        ..dr.clone()
    }
}

fn carry_from(te: &TicketEvent) -> Carry {
    let dr = te.status.as_ref().and_then(|s| s.dr.as_ref());
    Carry {
        applied: dr.and_then(|d| d.pinned_by_spec).map(|t| match t {
            DrTargetName::Primary => Target::Primary,
            DrTargetName::DrEks => Target::DrEks,
            DrTargetName::DrEcs => Target::DrEcs,
        }),
        last_transition: dr.and_then(|d| d.last_transition.clone()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    pub fn new(env: DrEnv, recorder: Recorder, writer: Arc<StatusWriter>) -> Registry {
        Registry {
            env,
            recorder,
            writer,
            tasks: Mutex::default(),
            epochs: AtomicU64::new(1),
        }
    }

    /// Makes the running task match `te.spec.dr`; says what the status
    /// should show for DNS until the task reports.
    pub async fn ensure(&self, te: &TicketEvent) -> Dns {
        let key = super::key(te);
        let Some(dr) = &te.spec.dr else {
            self.stop(&key).await;
            return Dns::NotManaged;
        };
        let namespace = te.namespace().unwrap_or_default();
        let config = match adapter::from_resource(&namespace, &te.name_any(), dr, &self.env) {
            Ok(config) => config,
            Err(e) => {
                self.stop(&key).await;
                return Dns::Invalid(e.0);
            }
        };
        let pin = adapter::desired_pin(dr);
        let restart = restart_key(dr);
        // Reconciles of one object never run concurrently, so the lock
        // can be let go between the check and the insert below.
        let previous = {
            let mut tasks = lock(&self.tasks);
            if let Some(task) = tasks.get(&key)
                && task.restart_key == restart
                && !task.handle.is_finished()
            {
                task.pin.send_if_modified(|p| {
                    let changed = *p != pin;
                    *p = pin;
                    changed
                });
                return Dns::Managed;
            }
            tasks.remove(&key)
        };
        let carry = match &previous {
            Some(p) => {
                tracing::info!(event = %key, "spec.dr changed: restarting the DR watchdog");
                let _ = p.stop.send(true);
                self.writer.end(&key, p.epoch).await;
                p.carry.clone()
            }
            None => {
                tracing::info!(event = %key, "starting the DR watchdog");
                Arc::new(Mutex::new(carry_from(te)))
            }
        };
        // From here on only the new task's reports reach the status.
        let epoch = self.epochs.fetch_add(1, Ordering::Relaxed);
        self.writer.begin(&key, epoch).await;
        let (pin_tx, pin_rx) = watch::channel(pin);
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = TaskCtx {
            key: key.clone(),
            epoch,
            object: te.object_ref(&()),
            config,
            pin: pin_rx,
            stop: stop_rx,
            stop_tx: stop_tx.clone(),
            carry: carry.clone(),
            recorder: self.recorder.clone(),
            writer: self.writer.clone(),
        };
        let previous = previous.map(|p| p.handle);
        let handle = tokio::spawn(async move {
            if let Some(handle) = previous {
                // The old watchdog releases its lease first.
                let _ = tokio::time::timeout(STOP_TIMEOUT, handle).await;
            }
            run_task(ctx).await;
        });
        lock(&self.tasks).insert(
            key,
            Task {
                restart_key: restart,
                epoch,
                pin: pin_tx,
                stop: stop_tx,
                handle,
                carry,
            },
        );
        Dns::Managed
    }

    /// Stops the event's task (if any) and waits until it wrote its last:
    /// after this returns, it makes no Route53 call.
    pub async fn stop(&self, key: &str) {
        let task = lock(&self.tasks).remove(key);
        if let Some(task) = task {
            tracing::info!(event = %key, "stopping the DR watchdog");
            stop_task(&self.writer, key, task).await;
        }
    }

    /// Stops every task (leadership lost, or shutdown).
    pub async fn stop_all(&self) {
        let tasks: Vec<(String, Task)> = lock(&self.tasks).drain().collect();
        if !tasks.is_empty() {
            tracing::info!(count = tasks.len(), "stopping every DR watchdog");
        }
        futures::future::join_all(
            tasks
                .into_iter()
                .map(|(key, task)| async move { stop_task(&self.writer, &key, task).await }),
        )
        .await;
    }
}

async fn stop_task(writer: &StatusWriter, key: &str, task: Task) {
    let _ = task.stop.send(true);
    writer.end(key, task.epoch).await;
    let abort = task.handle.abort_handle();
    if tokio::time::timeout(STOP_TIMEOUT, task.handle)
        .await
        .is_err()
    {
        // Dropping the task drops its watchdog and any Route53 call in
        // flight: nothing more is written.
        abort.abort();
        tracing::warn!(event = %key, "DR watchdog did not stop in time; aborted");
    }
}

/// What one task works with.
struct TaskCtx {
    key: String,
    epoch: u64,
    object: ObjectReference,
    config: WatchdogConfig,
    pin: watch::Receiver<Pin>,
    stop: watch::Receiver<bool>,
    /// To stop itself when the resource is gone.
    stop_tx: watch::Sender<bool>,
    carry: Arc<Mutex<Carry>>,
    recorder: Recorder,
    writer: Arc<StatusWriter>,
}

impl TaskCtx {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Publishes an Event. kube's recorder folds Events with the same
    /// type, reason and action into one series that keeps the first note,
    /// so `action` must tell apart what deserves its own note (a different
    /// transition, another write).
    async fn event(&self, type_: EventType, reason: &str, action: String, note: String) {
        let mut action = action;
        action.truncate(128);
        let event = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(note),
            action,
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &self.object).await {
            tracing::warn!(%error, reason, "cannot record a Kubernetes Event");
        }
    }

    /// Hands a report to the status writer; false when the resource is
    /// gone or the report was not written (retry later).
    async fn write(&self, report: DnsReport) -> bool {
        match self.writer.write_dr(&self.key, self.epoch, report).await {
            Ok(_) => true,
            Err(crate::Error::Kube(kube::Error::Api(status))) if status.code == 404 => {
                tracing::info!(event = %self.key, "TicketEvent gone: stopping its DR watchdog");
                let _ = self.stop_tx.send(true);
                false
            }
            Err(error) => {
                tracing::warn!(event = %self.key, %error, "cannot write the DR status; retrying");
                false
            }
        }
    }
}

/// The control loop's memory across polls (and across restarts of the
/// watchdog within the task).
struct Control {
    start_error: Option<String>,
    last_sent: Option<DnsReport>,
    next_write: Instant,
    last_seen: Option<Transition>,
    /// The watchdog's write count when last announced.
    writes_seen: u64,
    alarms: Vec<Alarm>,
    next_command: Instant,
}

async fn run_task(mut ctx: TaskCtx) {
    let mut control = Control {
        start_error: None,
        last_sent: None,
        next_write: Instant::now(),
        last_seen: None,
        writes_seen: 0,
        alarms: Vec::new(),
        next_command: Instant::now(),
    };
    let mut backoff = START_BACKOFF.0;
    while !ctx.stopped() {
        match run_watchdog(&mut ctx, &mut control).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(event = %ctx.key, %error, ?backoff, "DR watchdog cannot start; retrying");
                control.start_error = Some(error);
                report(&ctx, &mut control, None).await;
                let mut stop = ctx.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                backoff = (backoff * 2).min(START_BACKOFF.1);
            }
        }
    }
    tracing::info!(event = %ctx.key, "DR watchdog stopped");
}

/// Starts the watchdog and runs it with the control loop until stopped.
/// `Err`: it could not start (Route53 unreadable).
async fn run_watchdog(ctx: &mut TaskCtx, control: &mut Control) -> Result<(), String> {
    let mut config = ctx.config.clone();
    let clients = Clients::load(&config).await.map_err(|e| e.to_string())?;
    // The watchdog UPSERTs whole record sets. Health checks someone
    // attached to our records (Terraform's route53-dr module does) are not
    // in the resource: keep them, or the first write would detach them.
    // Few retries here: an unreachable Route53 is reported within a couple
    // of seconds, and the task's own backoff retries the start.
    let mut quick = config.clone();
    quick.route53.retry.max_retries = quick.route53.retry.max_retries.min(2);
    let read = Route53::new(&quick, clients.route53.clone(), Counter::default())
        .read_weights()
        .await
        .map_err(|e| e.to_string())?;
    for (target, id) in read.health_checks.iter() {
        let t = &mut config.targets[target];
        if t.health_check_id.is_none() {
            t.health_check_id.clone_from(id);
        }
    }
    // Per-event watchdog metrics are not exported by the operator (one
    // registry per event would need labels and unregistering).
    let watchdog = Watchdog::new(config, clients.clone(), &mut MetricsRegistry::default())
        .map_err(|e| e.to_string())?;
    let done = AtomicBool::new(false);
    let mut stop = ctx.stop.clone();
    let run = async {
        let result = watchdog
            .run(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        done.store(true, Ordering::SeqCst);
        result
    };
    // Both futures in one task (not spawned): aborting the task drops the
    // watchdog mid-call, and commands sent from the control loop are
    // answered because `join` keeps polling the loop meanwhile.
    let (result, ()) = tokio::join!(run, control_loop(ctx, control, &watchdog, &clients, &done));
    result.map_err(|e| e.to_string())
}

async fn control_loop(
    ctx: &mut TaskCtx,
    control: &mut Control,
    watchdog: &Watchdog,
    clients: &Clients,
    done: &AtomicBool,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => {}
            changed = ctx.pin.changed() => if changed.is_err() { return },
        }
        if done.load(Ordering::SeqCst) || ctx.stopped() {
            return;
        }
        let snapshot = watchdog.status();
        if snapshot.machine.is_none() {
            // Still reading Route53 at start-up.
            continue;
        }
        control.start_error = None;
        announce(ctx, control, &snapshot).await;
        if apply_pin(ctx, watchdog, clients, &snapshot, control).await {
            // The command's transition is announced before the status
            // shows its outcome.
            announce(ctx, control, &watchdog.status()).await;
        }
        report(ctx, control, Some(&watchdog.status())).await;
    }
}

/// Events for new transitions, weight writes and alarms.
async fn announce(ctx: &TaskCtx, control: &mut Control, s: &WatchdogStatus) {
    let fresh: Vec<Transition> =
        report::new_transitions(s.transitions.iter(), control.last_seen.as_ref())
            .into_iter()
            .cloned()
            .collect();
    if let Some(last) = s.transitions.back() {
        control.last_seen = Some(last.clone());
    }
    for t in &fresh {
        // A standby's machine is a shadow: only the holder's transitions
        // move traffic (the watchdog notifies webhooks by the same rule).
        if !s.lease.held {
            tracing::debug!(event = %ctx.key, from = %t.from, to = %t.to, "standby transition (not announced)");
            continue;
        }
        record_transition(ctx, t).await;
    }
    if let Some(write) = &s.last_write
        && s.writes != control.writes_seen
    {
        control.writes_seen = s.writes;
        ctx.event(
            EventType::Normal,
            "DnsWeightsWritten",
            format!("Write {} at {}", write.weights, write.at_unix_ms),
            format!(
                "Route53 weights {} ({}) written in change {}, {} ms after the decision",
                write.weights,
                write.state,
                write.change_id.as_deref().unwrap_or("?"),
                write.decided_to_written_ms
            ),
        )
        .await;
    }
    if let Some(machine) = &s.machine {
        let weights = s
            .route53_weights
            .map_or_else(|| "none".to_owned(), |w| w.to_string());
        for alarm in machine
            .alarms
            .iter()
            .filter(|a| !control.alarms.contains(a))
        {
            let note = match alarm {
                Alarm::NoHealthyTarget => {
                    format!("no target is healthy: keeping weights {weights} (static stability)")
                }
                Alarm::OverrideTargetDown { target } => {
                    format!("the override pins all traffic on {target}, which is down")
                }
            };
            ctx.event(
                EventType::Warning,
                "DrAlarm",
                format!("Raise {alarm:?}"),
                note,
            )
            .await;
        }
        for alarm in control
            .alarms
            .iter()
            .filter(|a| !machine.alarms.contains(a))
        {
            ctx.event(
                EventType::Normal,
                "DrAlarmCleared",
                format!("Clear {alarm:?}"),
                format!("cleared: {alarm:?}"),
            )
            .await;
        }
        control.alarms.clone_from(&machine.alarms);
    }
}

async fn record_transition(ctx: &TaskCtx, t: &Transition) {
    let status = report::transition_status(t, Timestamp::now());
    tracing::info!(event = %ctx.key, message = %status.message, "DR transition");
    let type_ = if matches!(t.reason, twinkle_dr::TransitionReason::TargetDown { .. }) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let action = format!("{} {} -> {}", status.reason, status.from, status.to);
    ctx.event(type_, "DrTransition", action, status.message.clone())
        .await;
    lock(&ctx.carry).last_transition = Some(status);
}

/// The routing state the records are in, as this watchdog knows it.
fn routed_state(s: &WatchdogStatus) -> Option<RouteState> {
    let machine = s.machine.as_ref()?.state;
    if s.lease.held {
        return Some(machine);
    }
    let weights = s.route53_weights?;
    s.lease
        .record
        .as_ref()
        .and_then(|r| r.state)
        .filter(|st| st.weights() == weights)
        .or_else(|| RouteState::from_weights(weights))
}

/// Brings the routing to what the resource's override and mode ask;
/// true when a command was applied.
async fn apply_pin(
    ctx: &TaskCtx,
    watchdog: &Watchdog,
    clients: &Clients,
    s: &WatchdogStatus,
    control: &mut Control,
) -> bool {
    let Some(state) = routed_state(s) else {
        return false;
    };
    let pin = *ctx.pin.borrow();
    let applied = lock(&ctx.carry).applied;
    // Someone else moved the pin (e.g. `dr failover` from the CLI): it is
    // theirs now, and not ours to clear.
    if let Some(ours) = applied
        && state.pinned_target() != Some(ours)
        && s.lease.held
        && pin == Pin::None
    {
        lock(&ctx.carry).applied = None;
    }
    let applied = lock(&ctx.carry).applied;
    let Some(command) = adapter::pin_command(pin, applied, state) else {
        return false;
    };
    if Instant::now() < control.next_command {
        return false;
    }
    let now = twinkle_watchdog::lease::unix_ms_now();
    let other_holder = s
        .lease
        .record
        .as_ref()
        .filter(|r| r.holder != s.holder_id && r.expires_unix_ms > now)
        .map(|r| r.holder.clone());
    let result = if s.lease.held {
        watchdog.command(command).await.map(|step| step.transitions)
    } else if let Some(holder) = other_holder {
        // Another watchdog holds the lease: the override preempts it (as
        // `twinkle-operator dr failover` does); it adopts the pin.
        tracing::info!(event = %ctx.key, %holder, ?command, "applying the override over the lease holder");
        match twinkle_watchdog::manual_command(watchdog.config(), clients, command).await {
            Ok(outcome) => {
                for t in &outcome.transitions {
                    record_transition(ctx, t).await;
                }
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    } else {
        // Taking the lease: the next round holds it.
        return false;
    };
    match result {
        Ok(_) => {
            let target = match command {
                Command::FailoverTo { target } => Some(target),
                _ => None,
            };
            lock(&ctx.carry).applied = target;
            let why = match pin {
                Pin::Target(_) => "spec.dr.manualOverride",
                Pin::HoldCurrent => "spec.dr.mode Manual",
                Pin::None | Pin::Unsupported(_) => "spec.dr.manualOverride removed",
            };
            tracing::info!(event = %ctx.key, ?command, why, "override applied");
            true
        }
        Err(error) => {
            tracing::warn!(event = %ctx.key, ?command, %error, "cannot apply the override yet");
            control.next_command = Instant::now()
                + watchdog
                    .config()
                    .probe
                    .interval()
                    .max(Duration::from_secs(2));
            false
        }
    }
}

/// Maps the snapshot to the status and hands it to the writer when it
/// changed (or a failed write is due for a retry).
async fn report(ctx: &TaskCtx, control: &mut Control, snapshot: Option<&WatchdogStatus>) {
    let carry = lock(&ctx.carry).clone();
    let view = View {
        snapshot,
        start_error: control.start_error.as_deref(),
        record_name: &ctx.config.route53.record_name,
        pin: *ctx.pin.borrow(),
        applied: carry.applied,
        last_transition: carry.last_transition.as_ref(),
        now_unix_ms: twinkle_watchdog::lease::unix_ms_now(),
    };
    let report = report::report(&view);
    if control
        .last_sent
        .as_ref()
        .is_some_and(|last| last.same_as(&report))
        || Instant::now() < control.next_write
    {
        return;
    }
    if report.cond.reason != control.last_sent.as_ref().map_or("", |r| r.cond.reason) {
        tracing::info!(event = %ctx.key, ok = report.cond.ok, reason = report.cond.reason, message = %report.cond.message, "DnsReady");
    }
    if ctx.write(report.clone()).await {
        control.last_sent = Some(report);
    } else {
        control.next_write = Instant::now() + Duration::from_secs(2);
    }
}
