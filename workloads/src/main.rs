//! `twinkle`: the workloads binary.
//!
//! * `twinkle local` — everything in one process with embedded backends (or
//!   real ones with `--kafka`/`--redis`): the README's first command.
//! * `twinkle queue-api` — the queue API (+ admission loop under a lease).
//! * `twinkle queue-consumer` — the assigner (Kafka → Redis sequence numbers).
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use twinkle_domain::EventConfig;
use twinkle_workloads::{
    runtime::{self, Backends, RunOptions},
    web::WebConfig,
};

#[derive(Debug, Parser)]
#[command(name = "twinkle", version, about = "Twinkle Ticket workloads")]
struct Cli {
    /// Log as JSON lines (for log shippers) instead of human text.
    #[arg(long, env = "TWINKLE_LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process (embedded backends unless --kafka/--redis).
    Local {
        /// Address to serve the pages and API on.
        #[arg(long, env = "TWINKLE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve this event (JSON/YAML event config) instead of the demo.
        #[arg(long, env = "TWINKLE_EVENT")]
        event: Option<PathBuf>,
        /// Kafka bootstrap servers (with --redis: real backends).
        #[arg(long, env = "TWINKLE_KAFKA", requires = "redis")]
        kafka: Option<String>,
        /// Redis URL (with --kafka: real backends).
        #[arg(long, env = "TWINKLE_REDIS", requires = "kafka")]
        redis: Option<String>,
    },
    /// The queue API: enter, status, WebSocket, session; runs the admission
    /// loop (only the lease holder advances it).
    QueueApi(ServiceArgs),
    /// The assigner: consumes the queue topic, assigns sequence numbers.
    QueueConsumer(ServiceArgs),
}

#[derive(Debug, Args)]
struct ServiceArgs {
    #[arg(long, env = "TWINKLE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// The event config (the operator mounts it from a ConfigMap).
    #[arg(long, env = "TWINKLE_EVENT")]
    event: PathBuf,
    #[arg(long, env = "TWINKLE_KAFKA")]
    kafka: String,
    #[arg(long, env = "TWINKLE_REDIS")]
    redis: String,
    /// File holding the token signing secret (≥ 32 bytes).
    #[arg(long, env = "TWINKLE_TOKEN_SECRET_FILE")]
    token_secret_file: PathBuf,
    /// Lease identity (defaults to the pod name).
    #[arg(long, env = "POD_NAME", default_value = "twinkle")]
    holder: String,
    /// Kafka consumer group of the assigner.
    #[arg(long, env = "TWINKLE_GROUP", default_value = "twinkle-assigner")]
    group: String,
    /// Trust X-Forwarded-For for client IPs (only behind a trusted LB).
    #[arg(long, env = "TWINKLE_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
}

fn load_event(path: &PathBuf) -> anyhow::Result<EventConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let event: EventConfig = yaml_serde::from_str(&text)
        .with_context(|| format!("{} is not a valid event config", path.display()))?;
    event.validate()?;
    Ok(event)
}

fn read_secret(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let secret = std::fs::read(path)
        .with_context(|| format!("reading the token secret {}", path.display()))?;
    Ok(secret.trim_ascii().to_vec())
}

fn service(args: ServiceArgs, api: bool) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        listen: args.listen,
        events: vec![load_event(&args.event)?],
        backends: Backends::Real {
            kafka: args.kafka,
            redis: args.redis,
        },
        token_secret: read_secret(&args.token_secret_file)?,
        web: WebConfig {
            trust_forwarded_for: args.trust_forwarded_for,
            ..WebConfig::default()
        },
        assigner: !api,
        admission: api,
        holder: args.holder,
        group: args.group,
        queue_topic: None,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let (opts, banner) = match cli.command {
        Command::Local {
            listen,
            event,
            kafka,
            redis,
        } => {
            let events = match event {
                Some(path) => vec![load_event(&path)?],
                None => vec![runtime::demo_event(jiff::Timestamp::now())],
            };
            let backends = match (kafka, redis) {
                (Some(kafka), Some(redis)) => Backends::Real { kafka, redis },
                _ => Backends::Embedded,
            };
            // A fresh secret per run: tickets do not outlive the local process.
            let token_secret: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
            let opts = RunOptions {
                listen,
                events,
                backends,
                token_secret,
                web: WebConfig {
                    cookie_secure: false,
                    ..WebConfig::default()
                },
                assigner: true,
                admission: true,
                holder: format!("local-{}", std::process::id()),
                group: "twinkle-local".to_owned(),
                queue_topic: None,
            };
            (opts, true)
        }
        Command::QueueApi(args) => (service(args, true)?, false),
        Command::QueueConsumer(args) => (service(args, false)?, false),
    };
    let first_event = opts
        .events
        .first()
        .map(|e| e.id.to_string())
        .unwrap_or_default();
    let running = runtime::start(opts).await?;
    if banner {
        println!("Twinkle Ticket local stack: http://{}/", running.addr);
        println!(
            "  event {first_event}: http://{}/api/events/{first_event}",
            running.addr
        );
        println!(
            "  API description: http://{}/api/openapi.json",
            running.addr
        );
    }
    tracing::info!(addr = %running.addr, "serving");
    twinkle_workloads::shutdown::signal().await;
    running.shutdown().await?;
    Ok(())
}
