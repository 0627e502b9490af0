//! `twinkle-operator`: the TicketEvent controller, DR watchdog and CLI.
//!
//! `plan` shows what the controller would create (offline); `run` runs the
//! controller; `dr …` runs or commands the DR watchdog.
#![forbid(unsafe_code)]

mod cli;

use std::io::IsTerminal as _;

use clap::Parser as _;

use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::Plan(args)) => {
            print!("{}", cli::plan(&args)?);
            Ok(())
        }
        Some(Command::Run(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(args)),
        Some(Command::Dr { command }) => {
            init_dr_logging();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(twinkle_operator::dr_cli::run(command))
        }
        None => anyhow::bail!(
            "no subcommand: `run` runs the controller, `plan -f EVENT.yaml` shows what it would \
             create, `dr …` runs or commands the DR watchdog"
        ),
    }
}

/// Logs of the `dr` commands: human text on stderr (stdout carries the
/// command's output, e.g. `-o json`).
fn init_dr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,aws_smithy_runtime=warn,aws_config=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(args: cli::RunArgs) -> anyhow::Result<()> {
    use std::{sync::Arc, time::Duration};

    use anyhow::Context as _;
    use twinkle_operator::controller::{self, Context, Metrics, Settings, WorkloadSettings};

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        // Colour only on a terminal: piped into CloudWatch or a file, ANSI
        // codes are noise.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stdout().is_terminal())
            .init();
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::default());
    let server = tokio::spawn(controller::metrics::serve(
        args.metrics_listen,
        metrics.clone(),
    ));
    let settings = Settings {
        workloads: WorkloadSettings {
            image: args.workload_image,
            token_secret: args.token_secret,
            token_secret_key: args.token_secret_key,
            sell_region: args.sell_region,
            service_account: args.workload_service_account,
            // The in-cluster watchdog reads the same override.
            route53_endpoint: std::env::var("TWINKLE_ROUTE53_ENDPOINT")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        },
        delete_give_up: Duration::from_secs(args.delete_give_up_secs),
        poll: Duration::from_secs(args.poll_secs),
    };
    let ctx = Arc::new(Context::new(client, settings, metrics));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // SIGTERM (Kubernetes stopping the pod) or Ctrl-C: stop the controller
    // and release the Lease so another replica takes over at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    tracing::info!(metrics = %args.metrics_listen, "operator starting");
    controller::leader::run(
        ctx,
        args.watch_namespace,
        &args.lease_namespace,
        &args.lease,
        &args.identity,
        stop_rx,
    )
    .await?;
    server.abort();
    Ok(())
}
