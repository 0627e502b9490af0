//! `twinkle-operator dr …`: the standalone DR watchdog (SPEC §4) and its
//! one-shot commands. Needs no Kubernetes, so it can run on ECS in Singapore,
//! outside the region it protects; concurrent watchdogs share a Route53 TXT
//! lease, so only one writes weights.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{Json, Router, extract::State, http::header, response::IntoResponse, routing::get};
use clap::{Args, Subcommand, ValueEnum};
use prometheus_client::{encoding::text::encode, registry::Registry};
use serde::Serialize;
use twinkle_dr::{Command, Target};
use twinkle_watchdog::{Clients, StatusReport, Watchdog, WatchdogConfig};

/// Output format of the one-shot commands.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// Human-readable.
    #[default]
    Table,
    Json,
}

/// Which target to pin traffic on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TargetArg {
    /// Seoul EKS.
    Primary,
    /// Singapore EKS.
    DrEks,
    /// Singapore ECS.
    DrEcs,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Primary => Target::Primary,
            TargetArg::DrEks => Target::DrEks,
            TargetArg::DrEcs => Target::DrEcs,
        }
    }
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The watchdog's config file (zone, record, targets, policy, lease).
    #[arg(long, short = 'c', env = "TWINKLE_DR_CONFIG")]
    pub config: PathBuf,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// `dr` subcommands.
#[derive(Debug, Subcommand)]
pub enum DrCommand {
    /// Run the watchdog: probe the targets, decide, and write Route53
    /// weights while holding the lease. Serves /metrics, /healthz, /status.
    Watch {
        #[arg(long, short = 'c', env = "TWINKLE_DR_CONFIG")]
        config: PathBuf,
        #[arg(long, env = "TWINKLE_DR_LISTEN", default_value = "0.0.0.0:9090")]
        listen: SocketAddr,
    },
    /// Current weights, lease holder and one probe round of every target.
    Status(ConfigArg),
    /// Pin all traffic on a target (a manual override, recorded as such).
    Failover {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum)]
        to: TargetArg,
    },
    /// Return traffic to the primary (refused unless it probes healthy).
    Failback(ConfigArg),
    /// Drop a manual override; automatic control resumes from its weights.
    ClearOverride(ConfigArg),
}

/// Reads the config file. `TWINKLE_ROUTE53_ENDPOINT` (what the in-cluster
/// watchdog reads too) fills in an endpoint the file leaves out; one the
/// file names wins.
fn load(path: &PathBuf) -> anyhow::Result<WatchdogConfig> {
    let mut config = WatchdogConfig::load(path)?;
    let from_env = std::env::var("TWINKLE_ROUTE53_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    config.route53.endpoint_url = endpoint(config.route53.endpoint_url.take(), from_env);
    Ok(config)
}

fn endpoint(from_file: Option<String>, from_env: Option<String>) -> Option<String> {
    match (from_file, from_env) {
        (Some(file), Some(env)) if file != env => {
            tracing::warn!(file = %file, env = %env, "route53.endpointUrl in the config file wins over TWINKLE_ROUTE53_ENDPOINT");
            Some(file)
        }
        (file, env) => file.or(env),
    }
}

/// Runs a `dr` subcommand to completion.
pub async fn run(command: DrCommand) -> anyhow::Result<()> {
    match command {
        DrCommand::Watch { config, listen } => watch(load(&config)?, listen).await,
        DrCommand::Status(arg) => {
            let config = load(&arg.config)?;
            let clients = Clients::load(&config).await?;
            let report = twinkle_watchdog::read_status(&config, &clients).await?;
            print(arg.output, &report, human_status)
        }
        DrCommand::Failover { config, to } => {
            manual(config, Command::FailoverTo { target: to.into() }).await
        }
        DrCommand::Failback(arg) => manual(arg, Command::FailbackToPrimary).await,
        DrCommand::ClearOverride(arg) => manual(arg, Command::ClearOverride).await,
    }
}

async fn manual(arg: ConfigArg, command: Command) -> anyhow::Result<()> {
    let config = load(&arg.config)?;
    let clients = Clients::load(&config).await?;
    eprintln!("taking the lease and applying {command:?}…");
    let outcome = twinkle_watchdog::manual_command(&config, &clients, command).await?;
    print(arg.output, &outcome, |o| {
        let w = o.weights;
        let mut text = format!(
            "state {:?}: primary {} / dr-eks {} / dr-ecs {}\n",
            o.state, w.primary, w.dr_eks, w.dr_ecs
        );
        match (&o.change_id, o.insync_ms) {
            (Some(id), Some(ms)) => {
                text.push_str(&format!("written in change {id}, INSYNC after {ms} ms\n"))
            }
            (Some(id), None) => text.push_str(&format!("written in change {id}\n")),
            _ => text.push_str("nothing to write: already in effect\n"),
        }
        if let Some(holder) = &o.previous_holder {
            text.push_str(&format!(
                "preempted lease holder {holder} (it adopts the override)\n"
            ));
        }
        text
    })
}

fn print<T: Serialize>(
    output: Output,
    value: &T,
    human: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => print!("{}", human(value)),
    }
    Ok(())
}

fn human_status(r: &StatusReport) -> String {
    let mut text = format!(
        "record {}  state {}  selling region {}\n\n{:<10} {:>6}  {:<8} {:>7}  {}\n",
        r.record_name,
        r.state
            .map_or_else(|| "unknown".to_owned(), |s| format!("{s:?}")),
        r.ownership,
        "TARGET",
        "WEIGHT",
        "PROBE",
        "LATENCY",
        "DETAIL"
    );
    for (target, weight) in r.per_target.iter() {
        let probe = &r.probes.results[target];
        let detail = probe
            .error
            .clone()
            .or_else(|| probe.status.map(|s| format!("HTTP {s}")))
            .unwrap_or_default();
        text.push_str(&format!(
            "{:<10} {:>6}  {:<8} {:>5}ms  {}\n",
            format!("{target:?}"),
            weight.map_or_else(|| "-".to_owned(), |w| w.to_string()),
            if probe.healthy { "healthy" } else { "DOWN" },
            probe.latency_ms,
            detail
        ));
    }
    match &r.lease.record {
        Some(lease) => text.push_str(&format!(
            "\nlease {}: held by {} until {} (unix ms)\n",
            r.lease.name, lease.holder, lease.expires_unix_ms
        )),
        None => text.push_str(&format!("\nlease {}: free\n", r.lease.name)),
    }
    if !r.foreign_records.is_empty() {
        text.push_str(&format!(
            "records under the name not managed here: {}\n",
            r.foreign_records.join(", ")
        ));
    }
    text
}

#[derive(Clone)]
struct Shared {
    watchdog: Arc<Watchdog>,
    registry: Arc<Registry>,
}

async fn watch(config: WatchdogConfig, listen: SocketAddr) -> anyhow::Result<()> {
    let clients = Clients::load(&config).await?;
    let mut registry = Registry::with_prefix("twinkle");
    let watchdog = Arc::new(Watchdog::new(config, clients, &mut registry)?);
    let shared = Shared {
        watchdog: watchdog.clone(),
        registry: Arc::new(registry),
    };
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/status",
            get(|State(s): State<Shared>| async move { Json(s.watchdog.status()) }),
        )
        .route("/metrics", get(metrics))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "DR watchdog serving /metrics /healthz /status");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(wait_stop(stop_rx.clone()))
            .into_future(),
    );
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    // Runs until the signal; a graceful stop releases the lease.
    watchdog.run(wait_stop(stop_rx)).await?;
    server.await??;
    Ok(())
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let mut text = String::new();
    if let Err(err) = encode(&mut text, &s.registry) {
        tracing::error!(%err, "encoding metrics failed");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// SIGTERM (what ECS and Kubernetes send) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn the_environment_fills_in_a_missing_route53_endpoint() {
        let moto = || Some("http://127.0.0.1:5000".to_owned());
        assert_eq!(endpoint(None, moto()), moto());
        assert_eq!(endpoint(moto(), None), moto());
        assert_eq!(
            endpoint(Some("http://file".into()), moto()).as_deref(),
            Some("http://file")
        );
        assert_eq!(endpoint(None, None), None);
    }
}
