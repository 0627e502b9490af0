//! A single writer's lease (the decider's, the queue keeper's), kept for a
//! whole session: renewed on a task of its own, so a long replay or restore
//! never lets it lapse (which would let a standby take over and the two
//! fence each other in turn, neither ever writing). The session ends as
//! soon as the lease is seen held by another; the store being unreachable
//! is no reason to stop — the log's fencing, not the lease, keeps two
//! writers apart.

use std::{convert::Infallible, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use tokio::{sync::watch, task::JoinHandle};

use crate::Result;

/// A standby takes over at most this long after the holder died.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews (and a standby asks).
pub const LEASE_RENEW: Duration = Duration::from_secs(1);

/// Takes or renews the lease for [`LEASE_TTL`]: true while it is ours.
pub type Take = Arc<dyn Fn() -> BoxFuture<'static, Result<bool>> + Send + Sync>;

/// Renews the lease until dropped.
#[derive(Debug)]
pub struct LeaseKeeper {
    held: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Waits until `take` succeeds, then keeps renewing it. `what` names
    /// the lease in logs.
    pub async fn acquire(what: String, take: Take) -> Self {
        loop {
            match take().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => tracing::warn!(lease = %what, %err, "taking the lease failed"),
            }
            tokio::time::sleep(LEASE_RENEW / 2).await;
        }
        let (tx, held) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_RENEW).await;
                match take().await {
                    Ok(true) => {}
                    Ok(false) => {
                        let _ = tx.send(false);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(lease = %what, %err, "renewing the lease failed; going on");
                    }
                }
            }
        });
        Self { held, task }
    }

    /// Resolves once another holder has the lease.
    pub async fn lost(&mut self) {
        let _ = self.held.wait_for(|held| !*held).await;
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A session that lasted this long was healthy: the next failure starts
/// its backoff afresh.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// A single writer of an event's log (the decider, the queue keeper): one
/// session at a time, under its lease, fenced by its log.
#[async_trait]
pub trait Writer: Send + Sync {
    /// Its session on the log.
    type Log: ?Sized + Send;
    /// Names it in logs: "decider of EVENT".
    fn name(&self) -> String;
    /// Takes or renews its lease.
    fn lease(&self) -> Take;
    /// Counts its sessions that ended.
    fn sessions_ended(&self) -> Counter;
    /// Writes until it fails (it never ends otherwise).
    async fn session(&self, log: &mut Self::Log) -> crate::Result<Infallible>;
    /// Lets go of the session's clients.
    fn close(log: &mut Self::Log);
}

/// Runs `writer`'s sessions until `stop` resolves: each waits for the
/// lease and writes until it fails or the lease is seen held by another;
/// then the writer backs off and starts again from its log.
pub async fn run_sessions<W: Writer>(writer: &W, log: &mut W::Log, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut backoff = Backoff::new(writer.name());
    loop {
        let started = tokio::time::Instant::now();
        let ended = tokio::select! {
            () = &mut stop => return,
            ended = lead_then_write(writer, log) => ended,
        };
        writer.sessions_ended().inc();
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(backoff.ended(&ended, started)) => {}
        }
    }
}

async fn lead_then_write<W: Writer>(writer: &W, log: &mut W::Log) -> crate::Error {
    let mut lease = LeaseKeeper::acquire(writer.name(), writer.lease()).await;
    let ended = tokio::select! {
        () = lease.lost() => crate::Error::Fenced,
        ended = writer.session(log) => match ended {
            Ok(never) => match never {},
            Err(err) => err,
        },
    };
    W::close(log);
    ended
}

/// The wait between a single writer's sessions: each waits for the lease
/// and writes until it fails; then the writer backs off and starts again
/// from its log.
#[derive(Debug)]
struct Backoff {
    what: String,
    next: Duration,
}

impl Backoff {
    /// `what` names the writer in logs.
    fn new(what: String) -> Self {
        Self {
            what,
            next: FIRST_BACKOFF,
        }
    }

    /// Logs why a session that started at `started` ended; returns how
    /// long to wait before the next.
    fn ended(&mut self, err: &crate::Error, started: tokio::time::Instant) -> Duration {
        match err {
            crate::Error::Fenced => {
                tracing::warn!(writer = %self.what, "a newer session owns the log; standing by");
            }
            err => {
                tracing::warn!(writer = %self.what, %err, backoff = ?self.next,
                    "session ended; starting again from the log");
            }
        }
        if started.elapsed() >= HEALTHY_SESSION {
            self.next = FIRST_BACKOFF;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}
